"""Converted rows are scorable: the real verifiers score a right answer 1 and a wrong one 0
for rows of the math, IF, code and SWE adapters (hand-written rows in the released layouts)."""

from __future__ import annotations

import base64
import json
import pickle
import zlib

import pytest

from cascade.data.adapters import ADAPTERS
from cascade.data.io import RowPlace
from cascade.verifiers import get_verifier

PLACE = RowPlace("rl.jsonl", line=1)


def scores(fmt, row, right, wrong):
    record = ADAPTERS[fmt].convert(row, PLACE, "prompt")
    verifier = get_verifier(record["verifier"])
    good, bad = verifier.verify(right, record), verifier.verify(wrong, record)
    return (good.score, good.passed), (bad.score, bad.passed), (good, bad)


def test_math_rows_score_right_and_wrong():
    row = {"problem": "What is 6 times 7?", "answer": "42", "source": "AceReason-Math"}
    good, bad, _ = scores("nemotron_math", row, "<think>6*7</think>So \\boxed{42}.", "<think>x</think>\\boxed{41}")
    assert good == (1.0, True) and bad == (0.0, False)
    gym = {"responses_create_params": {"input": [{"role": "user", "content": "1/2 + 1/2? Box it."}]},
           "expected_answer": "1", "dataset": "acereason"}
    good, bad, _ = scores("nemo_gym", gym, "\\boxed{\\frac{2}{2}}", "\\boxed{2}")
    assert good == (1.0, True) and bad == (0.0, False)


NEMOTRON_IF = {
    "prompt": [{"role": "user", "content": "Write about the sun with a title in <<>>, no commas, under 20 words."}],
    "instruction_id_list": ["detectable_format:title", "punctuation:no_comma", "length_constraints:number_words"],
    "kwargs": [{"num_words": None, "relation": None}, None, {"num_words": 20, "relation": "less than"}],
    "index": 0,
}


def test_if_rows_with_null_kwargs_score_right_and_wrong():
    right = "<think>plan</think><<Sun>>\nThe sun warms the quiet fields."
    wrong = "<<Sun>>\nThe sun, bright and warm, rises."
    good, bad, (_, result) = scores("nemotron_if", NEMOTRON_IF, right, wrong)
    assert good == (1.0, True) and bad == (0.0, False)
    assert result.details["strict"] == [True, False, True]


def test_allenai_func_name_row_scores_right_and_wrong():
    truth = json.dumps({"func_name": "verify_bullet_points", "N": 2, "quantifier": None, "word": None})
    row = {"messages": [{"role": "user", "content": "Give two bullet points."}], "ground_truth": truth,
           "dataset": "ifeval", "constraint_type": "bullets"}
    good, bad, _ = scores("allenai_if", row, "* one\n* two", "* one\n* two\n* three")
    assert good == (1.0, True) and bad == (0.0, False)


def fenced(code):
    return f"<think>easy</think>\n```python\n{code}\n```"


def test_lcb_row_scores_with_its_compressed_private_tests():
    private = base64.b64encode(zlib.compress(pickle.dumps(json.dumps(
        [{"input": "5 5\n", "output": "10\n", "testtype": "stdin"}])))).decode()
    row = {"question_content": "Print a+b.", "question_id": "abc1_a", "starter_code": "", "metadata": "{}",
           "public_test_cases": json.dumps([{"input": "1 2\n", "output": "3\n", "testtype": "stdin"}]),
           "private_test_cases": private, "contest_date": "2023-01-01T00:00:00"}
    right = fenced("a, b = map(int, input().split())\nprint(a + b)")
    wrong = fenced("print(3)")  # passes the public test only: the private test must be what fails it
    good, bad, (_, result) = scores("lcb", row, right, wrong)
    assert good == (1.0, True) and bad == (0.0, False)
    assert result.details["failed_test"] == 1


def test_taco_function_row_scores_right_and_wrong():
    row = {"question": "Return twice x.", "starter_code": "def double(x):\n\t",
           "input_output": json.dumps({"fn_name": "double", "inputs": [[2], [5]], "outputs": [[4], [10]]})}
    good, bad, _ = scores("taco", row, fenced("def double(x):\n    return 2 * x"), fenced("def double(x):\n    return x + 2"))
    assert good == (1.0, True) and bad == (0.0, False)


ORIGINAL = "def add(a, b):\n    return a - b\n"
GOLD = "--- a/pkg/calc.py\n+++ b/pkg/calc.py\n@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n+    return a + b\n"


def edit(replacement):
    return ("<think>look</think>\n```diff\n### pkg/calc.py\n<<<<<<< SEARCH\n    return a - b\n=======\n"
            f"{replacement}\n>>>>>>> REPLACE\n```")


def test_swe_row_scores_gold_edit_one_and_other_edit_below_one():
    row = {"source": "s", "instance_id": "pkg__calc-1", "prompt": "Fix add().", "golden_patch": GOLD,
           "relevant_file_contents": [{"file_path": "pkg/calc.py", "content": ORIGINAL}]}
    good, bad, _ = scores("nemotron_swe", row, edit("    return a + b"), edit("    return b - a"))
    assert good == (1.0, True)
    assert bad[1] is False and bad[0] < 1.0


@pytest.mark.parametrize("answer, expected", [("\\boxed{C}", (1.0, True)), ("\\boxed{A}", (0.0, False))])
def test_gym_mcqa_row_scores(answer, expected):
    row = {"responses_create_params": {"input": "Pick one."}, "expected_answer": "C",
           "options": [{"A": "one"}, {"B": "two"}, {"C": "three"}]}
    record = ADAPTERS["nemo_gym"].convert(row, PLACE, "prompt")
    result = get_verifier("mcq").verify(answer, record)
    assert (result.score, result.passed) == expected

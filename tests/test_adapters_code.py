"""Code-problem adapters: LiveCodeBench code_generation_lite (with compressed private tests),
TACO/APPS ``input_output`` and DeepCoder's per-subset test layouts."""

from __future__ import annotations

import base64
import json
import pickle
import zlib

import pytest

from cascade.data.adapters import ADAPTERS, AdapterRowError
from cascade.data.io import RowPlace
from cascade.data.records import record_model
from cascade.verifiers.code import parse_ground_truth

PLACE = RowPlace("problems.jsonl", line=2)


def convert(fmt, row):
    record = ADAPTERS[fmt].convert(row, PLACE, "prompt")
    record_model("prompt").model_validate(record)
    parse_ground_truth(record["ground_truth"])  # the code verifier accepts it
    return record


def problems(fmt, row):
    with pytest.raises(AdapterRowError) as info:
        ADAPTERS[fmt].convert(row, PLACE, "prompt")
    return info.value


def lcb_encode(tests):
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(tests)))).decode()


def lcb_row(**fields):
    row = {"question_title": "Sum", "question_content": "Read a and b; print a+b.", "platform": "atcoder",
           "question_id": "abc999_a", "contest_id": "abc999", "contest_date": "2024-09-01T00:00:00",
           "starter_code": "", "difficulty": "easy",
           "public_test_cases": json.dumps([{"input": "1 2\n", "output": "3\n", "testtype": "stdin"}]),
           "private_test_cases": lcb_encode([{"input": "5 5\n", "output": "10\n", "testtype": "stdin"}]),
           "metadata": "{}"}
    return {**row, **fields}


def test_lcb_stdin_row_joins_public_and_private_tests():
    record = convert("lcb", lcb_row())
    assert record["id"] == "abc999_a" and record["verifier"] == "code"
    assert record["ground_truth"] == {"style": "stdin", "tests": [{"input": "1 2\n", "output": "3\n"},
                                                                   {"input": "5 5\n", "output": "10\n"}]}
    assert record["meta"]["private_tests"] == 1 and record["meta"]["contest_date"].startswith("2024-09-01")
    assert "standard input" in record["messages"][0]["content"]


def test_lcb_functional_row_uses_metadata_func_name_and_starter_code():
    tests = [{"input": "[1, 2]\n3", "output": "[0, 1]", "testtype": "functional"}]
    row = lcb_row(platform="leetcode", starter_code="class Solution:\n    def twoSum(self, nums, target):\n        ",
                  public_test_cases=json.dumps(tests), private_test_cases=json.dumps(tests),
                  metadata=json.dumps({"func_name": "twoSum"}))
    record = convert("lcb", row)
    assert record["ground_truth"]["style"] == "call" and record["ground_truth"]["fn_name"] == "twoSum"
    assert len(record["ground_truth"]["tests"]) == 2
    assert "class Solution" in record["messages"][0]["content"]


def test_lcb_bad_row_lists_every_bad_field():
    row = lcb_row(question_content=None, private_test_cases="%%%", metadata="[1]")
    fields = [f for f, _ in problems("lcb", row).problems]
    assert fields == ["question_content", "private_test_cases", "metadata"]


def test_taco_stdin_with_line_lists_and_call_with_wrapped_outputs():
    stdin = convert("taco", {"question": "Echo.", "input_output": json.dumps({"inputs": [["1", "2"]], "outputs": [["1", "2"]]}),
                             "difficulty": "EASY", "source": "codeforces"})
    assert stdin["ground_truth"] == {"style": "stdin", "tests": [{"input": "1\n2", "output": "1\n2"}]}
    assert stdin["meta"] == {"difficulty": "EASY", "source": "codeforces"}
    call = convert("taco", {"question": "Double it.", "starter_code": "def double(x):\n\t",
                            "input_output": json.dumps({"fn_name": "double", "inputs": [[2], [[1]]], "outputs": [[4], [[1, 1]]]})})
    assert call["ground_truth"] == {"style": "call", "fn_name": "double",
                                    "tests": [{"input": [2], "output": 4}, {"input": [[1]], "output": [1, 1]}]}


def test_taco_bad_row():
    error = problems("taco", {"question": "", "input_output": json.dumps({"inputs": ["1"], "outputs": []})})
    assert [f for f, _ in error.problems] == ["question", "input_output"]
    assert "1 inputs but 0 outputs" in str(error)


@pytest.mark.parametrize("tests, metadata, expected", [
    # lcbv5
    ([{"input": "[3]", "output": "6", "testtype": "functional"}], {"func_name": "f"},
     {"style": "call", "fn_name": "f", "tests": [{"input": "[3]", "output": "6"}]}),
    # primeintellect
    ([{"input": "2\n", "output": "4\n", "type": "stdin_stdout"}], None,
     {"style": "stdin", "tests": [{"input": "2\n", "output": "4\n"}]}),
    ([{"input": [2], "output": [4], "type": "function_call", "fn_name": "g"}], None,
     {"style": "call", "fn_name": "g", "tests": [{"input": [2], "output": 4}]}),
    # taco
    ({"inputs": ["1\n"], "outputs": ["1\n"]}, None, {"style": "stdin", "tests": [{"input": "1\n", "output": "1\n"}]}),
    # codeforces
    ([{"input": "7\n", "output": "8\n"}], None, {"style": "stdin", "tests": [{"input": "7\n", "output": "8\n"}]}),
])
def test_deepcoder_test_layouts(tests, metadata, expected):
    row = {"problem": "Solve it.", "tests": json.dumps(tests)}
    if metadata:
        row["metadata"] = metadata
    assert convert("deepcoder", row)["ground_truth"] == expected


def test_deepcoder_leetcode_functional_runs_as_asserts_with_leetcode_imports():
    from cascade.data.adapters.code_truth import LEETCODE_PRELUDE

    check = "def check(candidate):\n    assert candidate([1, 2]) == 3\n\ncheck(Solution().total)\n"
    truth = convert("deepcoder", {"problem": "Sum a list.", "tests": {"functional": check}})["ground_truth"]
    assert truth == {"style": "assert", "functional": check, "prelude": LEETCODE_PRELUDE}


def test_deepcoder_bad_row():
    error = problems("deepcoder", {"problem": 5, "tests": "[{"})
    assert [f for f, _ in error.problems] == ["problem", "tests"]


def test_deepcoder_rows_of_the_shared_rllm_files_convert(shared_data):
    """The rllm test files have the DeepCoder row shape; every row converts and parses."""
    folder = shared_data / "code_samples" / "rllm_deepcoder_test"
    for name in ("code_contests.json", "codeforces.json", "leetcode.json"):
        rows = json.loads((folder / name).read_text())
        for index, row in enumerate(rows[:25]):
            record = ADAPTERS["deepcoder"].convert(row, RowPlace(name, row=index), "prompt")
            parse_ground_truth(record["ground_truth"])


def test_lcb_adapter_agrees_with_the_eval_loader_on_the_shared_file(shared_data):
    """Differential: on the code_generation_lite-layout file in ../shared/data, the adapter
    gives the same ground truth per problem as ``cascade eval``'s LiveCodeBench loader."""
    from cascade.data.io import iter_rows
    from cascade.eval.benchmarks.code import load_livecodebench

    path = shared_data / "livecodebench" / "lcb_format_public_tests_derived.jsonl"
    # The eval loader adds LiveCodeBench's runner settings (import prelude, comparison, time
    # limits) for the benchmark's official scoring; the problems and tests must agree.
    shared = ("style", "fn_name", "tests")
    loaded = {r["id"]: {k: r["ground_truth"].get(k) for k in shared} for r in load_livecodebench(path)}
    adapted = {}
    for place, row in iter_rows(path):
        record = ADAPTERS["lcb"].convert(row, place, "prompt")
        adapted[record["id"]] = {k: record["ground_truth"].get(k) for k in shared}
    assert len(adapted) == len(loaded) == 279
    assert adapted == loaded

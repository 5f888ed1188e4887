"""LiveCodeBench graded as its own runner grades it (lcb_runner/evaluation/testing_util.py at
LiveCodeBench commit 28fef95): the import block, the stdin comparison, the functional call and
its comparison, the per-test time, the compressed private tests of code_generation_lite
release files and the date windows.

The expected verdicts in the comparison tables are the official functions' own outputs
(``get_stripped_lines`` + ``convert_line_to_decimals`` for stdin, ``prediction == gt_out``
after tuple-to-list for functional tests), run once on each case; where our tolerant RL
comparison differs it is said per case.
"""

from __future__ import annotations

import base64
import json
import pickle
import zlib
from pathlib import Path

import pytest

from cascade.errors import CascadeError
from cascade.eval.benchmarks import get_benchmark
from cascade.data.adapters import decode_lcb_private_tests
from cascade.eval.benchmarks.code import load_livecodebench
from cascade.verifiers.code import outputs_match, parse_ground_truth, verify_many
from cascade.verifiers.lcb_official import LCB_IMPORT_BLOCK, LCB_TIME_LIMIT, lcb_outputs_match, lcb_values_match

# (printed, expected, LiveCodeBench's verdict, the tolerant RL comparison's verdict)
STDIN_CASES = [
    ("3\n", "3", True, True),
    ("  3\n\n", "3", True, True),
    ("1.0\n", "1", True, True),  # equal as decimals
    ("1e3", "1000", True, True),
    ("0.33333333", "0.3333333", False, True),  # no tolerance in LCB; 1e-6 in ours
    ("0.1000001", "0.1", False, True),
    ("1.000000001", "1.0", False, True),
    ("50000000000000001", "50000000000000000", False, False),
    ("Yes", "yes", False, False),
    ("1 2  3", "1 2 3", True, True),
    ("1\n2", "1 2", False, False),
    ("1\n\n2", "1\n2", False, False),  # inner blank lines count
    ("a b\n", "a  b", False, True),  # LCB: not equal text and not numbers; ours splits tokens
    ("NaN", "nan", False, False),
    ("-0", "0", True, False),  # equal decimals; ours compares integers as text
    ("+5", "5", True, False),
    ("1.5 abc", "1.50 abc", False, True),  # one token is not a number, so LCB needs equal text
    ("2\n", "2\r\n", True, True),
    ("\n", "", True, True),
]


@pytest.mark.parametrize("printed,expected,lcb,tolerant", STDIN_CASES)
def test_stdin_comparison_matches_the_runner(printed, expected, lcb, tolerant):
    assert lcb_outputs_match(printed, expected) is lcb
    assert outputs_match(printed, expected) is tolerant


# (returned value after the sandbox's JSON encoding, expected JSON value, LCB's verdict on the
# value the method really returned, ours)
CALL_CASES = [
    ([1, 2], [1, 2], True, True),
    (1.0, 1, True, True),
    (0.30000000000000004, 0.3, False, False),
    (True, 1, True, True),  # Python: True == 1
    ([[1, 2]], [[1, 2]], True, True),
]


@pytest.mark.parametrize("got,expected,lcb,ours", CALL_CASES)
def test_call_comparison_is_python_equality(got, expected, lcb, ours):
    assert lcb_values_match(got, expected) is ours
    assert ours is lcb


def test_known_disagreements_of_the_functional_comparison():
    """The sandbox returns values as JSON, so two things the runner fails pass here:
    a tuple nested in a list ([(1, 2)] != [[1, 2]] in the runner) and a set (the runner compares
    {1, 2} == [1, 2], False; the sandbox encodes a set as its sorted list). Both are answers of
    the wrong type that carry the right values; LCB problems' expected outputs are lists."""
    assert lcb_values_match((1, 2), [1, 2])  # a top-level tuple: the runner converts it too
    assert [(1, 2)] != [[1, 2]]  # what the runner computes for a nested tuple
    assert lcb_values_match(json.loads(json.dumps([(1, 2)])), [[1, 2]])  # what we compute


def test_import_block_is_the_runners():
    lines = LCB_IMPORT_BLOCK.splitlines()
    assert lines[0] == "from string import *" and lines[-1] == "sys.setrecursionlimit(50000)"
    assert {"from typing import *", "from collections import *", "from builtins import *", "import json"} <= set(lines)
    assert len(lines) == 18 + 16 + 1
    assert LCB_TIME_LIMIT == 6.0


def compressed(tests: list[dict]) -> str:
    """The encoding of code_generation_lite release files: base64(zlib(pickle(json text)))."""
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(tests)))).decode()


def lite_row(qid: str, date: str, public: list[dict], private: list[dict] | None, func_name: str | None) -> dict:
    row = {"question_title": qid, "question_content": f"problem {qid}", "platform": "leetcode" if func_name else "atcoder",
           "question_id": qid, "contest_id": "c1", "contest_date": date, "starter_code": "",
           "difficulty": "easy", "public_test_cases": json.dumps(public),
           "metadata": json.dumps({"func_name": func_name} if func_name else {})}
    if private is not None:
        row["private_test_cases"] = compressed(private)
    return row


def fn_test(args: list, out) -> dict:
    return {"input": "\n".join(json.dumps(a) for a in args), "output": json.dumps(out), "testtype": "functional"}


def io_test(inp: str, out: str) -> dict:
    return {"input": inp, "output": out, "testtype": "stdin"}


# Uses List and Counter without importing them, as LeetCode solutions do: only the runner's
# import block makes it run.
TWO_SUM = """class Solution:
    def pairs(self, nums: List[int], target: int) -> int:
        seen = Counter()
        count = 0
        for x in nums:
            count += seen[target - x]
            seen[x] += 1
        return count
"""
# Right on small inputs, wrong once a number repeats (only a private test has repeats).
TWO_SUM_NO_DUPLICATES = TWO_SUM.replace("seen[x] += 1", "seen[x] = 1")
SUM_PROGRAM = "n = int(input())\nprint(sum(map(int, input().split())) / n)\n"


@pytest.fixture
def lite_file(tmp_path: Path) -> Path:
    rows = [
        lite_row("pairs", "2024-09-01T00:00:00", [fn_test([[1, 2, 3], 4], 1)],
                 [fn_test([[2, 2, 2], 4], 3), fn_test([[5], 10], 0)], "pairs"),
        lite_row("mean", "2025-03-01T00:00:00", [io_test("2\n1 2\n", "1.5\n")], [io_test("3\n1 1 2\n", "1.3333333333333333\n")],
                 None),
        lite_row("old", "2024-07-31T23:59:59", [io_test("1\n1\n", "1\n")], [], None),
        lite_row("edge", "2025-02-01T00:00:00", [io_test("1\n1\n", "1.0\n")], None, None),
    ]
    path = tmp_path / "test.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def fenced(code: str) -> str:
    return f"```python\n{code}```"


def test_compressed_private_tests_are_decoded_and_used(lite_file):
    records = {r["id"]: r for r in load_livecodebench(lite_file, window="lcb_v6")}
    pairs = records["pairs"]
    assert len(pairs["ground_truth"]["tests"]) == 3 and pairs["meta"]["tests"] == "public+private"
    assert records["edge"]["meta"]["tests"] == "public_only"
    right, wrong = verify_many([pairs, pairs], [fenced(TWO_SUM), fenced(TWO_SUM_NO_DUPLICATES)], workers=1)
    assert right.details["verdict"] == "pass", right.details
    # Passes the public test; a private test (index 1) catches it.
    assert wrong.details["verdict"] == "wrong_answer" and wrong.details["failed_test"] == 1


def test_solution_using_list_without_import_passes_with_the_runners_block(lite_file):
    record = {r["id"]: r for r in load_livecodebench(lite_file, window="lcb_v5")}["pairs"]
    assert verify_many([record], [fenced(TWO_SUM)])[0].passed
    bare = {**record, "ground_truth": {k: v for k, v in record["ground_truth"].items() if k != "prelude"}}
    result = verify_many([bare], [fenced(TWO_SUM)])[0]
    assert result.details["verdict"] == "runtime_error" and "List" in result.details["error"]


def test_official_comparison_fails_an_answer_the_tolerant_one_passes(lite_file):
    record = {r["id"]: r for r in load_livecodebench(lite_file)}["mean"]
    rounded = "n = int(input())\nprint(f'{sum(map(int, input().split())) / n:.7f}')\n"
    exact, approx = verify_many([record, record], [fenced(SUM_PROGRAM), fenced(rounded)])
    assert exact.passed and not approx.passed
    tolerant = {r["id"]: r for r in load_livecodebench(lite_file, compare="tolerant")}["mean"]
    assert verify_many([tolerant], [fenced(rounded)])[0].passed


def test_windows_follow_the_problem_dates(lite_file):
    v5 = [r["id"] for r in load_livecodebench(lite_file, window="lcb_v5")]
    v6 = {r["id"]: r["meta"]["lcb_part"] for r in load_livecodebench(lite_file, window="lcb_v6")}
    assert v5 == ["pairs"]  # 2024-07-31 is before the window; 2025-02-01 starts the second part
    assert v6 == {"pairs": "v5", "mean": "2502_2505", "edge": "2502_2505"}


def test_a_pickle_that_names_a_class_is_refused(tmp_path):
    evil = base64.b64encode(zlib.compress(pickle.dumps(Path("/etc/passwd")))).decode()
    with pytest.raises(CascadeError, match="pickle"):
        decode_lcb_private_tests(evil)
    row = lite_row("x", "2024-09-01T00:00:00", [io_test("1", "1")], None, None)
    row["private_test_cases"] = evil
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(CascadeError, match="private_test_cases"):
        load_livecodebench(path)
    assert decode_lcb_private_tests(json.dumps([io_test("1", "2")])) == [io_test("1", "2")]


def test_shared_livecodebench_is_public_tests_only_and_graded_officially(shared_data):
    records = get_benchmark("lcb_v5").load(shared_data)
    assert {r["meta"]["tests"] for r in records} == {"public_only"}
    assert all(r["ground_truth"]["compare"] == "lcb" and r["ground_truth"]["prelude"] == LCB_IMPORT_BLOCK
               for r in records)
    assert all(parse_ground_truth(r["ground_truth"]).time_limit == 6.0 for r in records)


def test_a_problem_with_many_tests_gets_the_runners_whole_problem_budget(tmp_path):
    """The runner allows (6 + 1) s per test + 5 s for a whole problem; the sandbox's default cap
    (120 s) would cut a slow but correct solution of a problem with many private tests."""
    from cascade.eval.runner import _code_seconds
    from cascade.verifiers.code import problem_wall_seconds

    tests = [io_test(f"{i}\n", f"{i}\n") for i in range(40)]
    path = tmp_path / "many.jsonl"
    path.write_text(json.dumps(lite_row("many", "2024-09-01T00:00:00", tests[:1], tests[1:], None)) + "\n")
    record = load_livecodebench(path)[0]
    assert record["ground_truth"]["max_problem_seconds"] == 7 * 40 + 5
    problem = parse_ground_truth(record["ground_truth"])
    assert problem_wall_seconds(problem) == 6 * 40 + 5  # 6 s per test, under the runner's bound
    assert problem_wall_seconds(parse_ground_truth({"style": "stdin", "tests": tests})) == 120 + 5
    assert _code_seconds(record) == 6 * 40 + 5 + 10  # the batch timeout never cuts it first

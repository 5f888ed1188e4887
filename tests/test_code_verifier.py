"""The "code" verifier: extraction, comparison rules, ground-truth formats, real benchmark data.

The loaders' light conversions of the shared data into the documented ground-truth
formats are spelled out here (``*_record`` helpers), so the tests show that the formats
cover the data as-is.
"""

from __future__ import annotations

import gzip
import os
import json
import re
from pathlib import Path

import pytest

from cascade.data.adapters.code_truth import LEETCODE_PRELUDE
from cascade.errors import CascadeError
from cascade.sandbox import sandbox_mode
from cascade.verifiers import get_verifier
from cascade.verifiers.code import (
    CodeProblem,
    extract_code,
    judge,
    outputs_match,
    parse_ground_truth,
    values_match,
    verify_many,
)


@pytest.fixture(autouse=True)
def _a_sandbox_that_runs_here(monkeypatch):
    """Where no strong sandbox can start, these tests exercise the weak mode by name
    (as a user would have to) rather than fail on SandboxUnavailable."""
    from cascade.sandbox.modes import STRONG_MODES, available_modes

    if not set(STRONG_MODES) & set(available_modes()) and not os.environ.get("CASCADE_SANDBOX"):
        monkeypatch.setenv("CASCADE_SANDBOX", "rlimit")


def fenced(code: str, lang: str = "python") -> str:
    return f"Here is my solution.\n```{lang}\n{code}\n```\n"


# --- loaders' conversions -------------------------------------------------------------

def humaneval_rows(shared: Path) -> list[dict]:
    with gzip.open(shared / "humaneval" / "HumanEval.jsonl.gz", "rt") as handle:
        return [json.loads(line) for line in handle]


def humaneval_record(row: dict, time_limit: float = 6.0) -> dict:
    return {"ground_truth": {"style": "assert", "test": row["test"], "entry_point": row["entry_point"],
                             "time_limit": time_limit}}


def mbpp_record(row: dict) -> dict:
    return {"ground_truth": {"style": "assert", "test_list": row["test_list"],
                             "test_setup_code": row.get("test_setup_code", ""),
                             "test_imports": row.get("test_imports", [])}}


def lcb_record(tests: list[dict], func_name: str | None) -> dict:
    if func_name:
        return {"ground_truth": {"style": "call", "fn_name": func_name, "prelude": LEETCODE_PRELUDE,
                                 "tests": [{"input": t["input"], "output": t["output"]} for t in tests]}}
    return {"ground_truth": {"style": "stdin", "tests": [{"input": t["input"], "output": t["output"]} for t in tests]}}


# --- extraction -----------------------------------------------------------------------

def test_extract_takes_the_last_python_block():
    answer = "```python\nfirst\n```\ntext\n```cpp\nint main(){}\n```\n```python\nsecond\n```\n```\nbare\n```"
    assert extract_code(answer) == "second\n"


def test_extract_falls_back_to_py_then_bare_fence():
    assert extract_code("```py\nshort\n```\n```\nbare\n```") == "short\n"
    assert extract_code("```\nbare one\n```\n```\nbare two\n```") == "bare two\n"
    assert extract_code("```Python3\nx = 1\n```") == "x = 1\n"


def test_extract_ignores_other_languages_and_prose():
    assert extract_code("```cpp\nint main(){}\n```") is None
    assert extract_code("print(1)") is None


# --- comparison rules (hand-computed cases) ---------------------------------------------

@pytest.mark.parametrize(("got", "expected", "same"), [
    ("3\n", "3", True),
    ("1 2  3   \n\n", "1 2 3", True),               # whitespace inside and around lines
    ("0.3333333\n", "0.333333333", True),          # within 1e-6
    ("0.3334\n", "0.3333", False),
    ("1e-9", "0", True),                           # absolute tolerance
    ("1000000000000000001", "1000000000000000000", False),  # integers stay exact
    ("YES", "yes", False),
    ("1\n2", "1 2", False),                        # line structure matters
    ("", "", True),
    ("nan", "0.5", False),
])
def test_outputs_match(got, expected, same):
    assert outputs_match(got, expected) is same


@pytest.mark.parametrize(("got", "expected", "same"), [
    ([1, 2], (1, 2), True),
    (True, 1, False),                              # bool is not an int answer
    (1, 1.0000000001, True),
    (2, 3, False),
    ({"a": [0.1 + 0.2]}, {"a": [0.3]}, True),
    ("abc", "abc", True),
    ([[1], [2, 3]], [[1], [2]], False),
    (None, None, True),
])
def test_values_match(got, expected, same):
    assert values_match(got, expected) is same


# --- ground-truth parsing and bad input -----------------------------------------------

def test_lcb_functional_input_is_one_json_value_per_line():
    problem = parse_ground_truth({"style": "call", "fn_name": "f", "tests": [
        {"input": "\"10101\"\n1", "output": "12"}, {"input": [[1, 2], "x"], "output": "plain text"}]})
    assert problem.tests == [["10101", 1], [[1, 2], "x"]]
    assert problem.expected == [12, "plain text"]


def test_ground_truth_may_be_json_text():
    problem = parse_ground_truth(json.dumps({"style": "stdin", "tests": [{"input": "1", "output": "1"}]}))
    assert (problem.style, problem.tests, problem.expected) == ("stdin", ["1"], ["1"])


def test_humaneval_test_gets_check_call_appended():
    problem = parse_ground_truth({"style": "assert", "test": "def check(c):\n    pass\n", "entry_point": "f"})
    assert problem.tests == ["def check(c):\n    pass\n\ncheck(f)\n"]


@pytest.mark.parametrize(("ground_truth", "field"), [
    ({"tests": []}, "ground_truth.style"),
    ({"style": "stdin", "tests": []}, "ground_truth.tests"),
    ({"style": "stdin", "tests": [{"input": "1"}]}, "ground_truth.tests[0].output"),
    ({"style": "stdin", "tests": [{"input": 5, "output": "1"}]}, "ground_truth.tests[0].input"),
    ({"style": "call", "tests": [{"input": [], "output": 1}]}, "ground_truth.fn_name"),
    ({"style": "call", "fn_name": "not valid", "tests": [{"input": [], "output": 1}]}, "ground_truth.fn_name"),
    ({"style": "call", "fn_name": "f", "tests": [{"input": "[1,", "output": 1}]}, "ground_truth.tests[0].input"),
    ({"style": "assert", "test_list": ["assert f(1) ==", "assert True"]}, "ground_truth.test_list[0]"),
    ({"style": "assert", "test": "def check(c):\n  pass", "entry_point": "a b"}, "ground_truth.entry_point"),
    ({"style": "stdin", "tests": [{"input": "1", "output": "1"}], "time_limit": "fast"}, "ground_truth.time_limit"),
    ("{not json", "ground_truth"),
])
def test_bad_ground_truth_names_the_field(ground_truth, field):
    with pytest.raises(CascadeError) as info:
        parse_ground_truth(ground_truth)
    assert info.value.field == field


def test_registered_and_reasoning_is_stripped():
    verifier = get_verifier("code")
    record = {"ground_truth": {"style": "stdin", "tests": [{"input": "2 3\n", "output": "5\n"}]}}
    code = "a, b = map(int, input().split())\nprint(a + b)"
    thinking = "<think>\n```python\nprint(0)\n```\n</think>\n" + fenced(code)
    result = verifier.verify(thinking, record)
    assert (result.score, result.passed, result.details["verdict"]) == (1.0, True, "pass")
    assert result.details["mode"] == sandbox_mode()
    unfinished = verifier.verify("<think>\n" + fenced(code), record)
    assert not unfinished.passed and unfinished.error.startswith("no_answer")


def test_no_code_and_compile_error_verdicts():
    verifier = get_verifier("code")
    record = {"ground_truth": {"style": "stdin", "tests": [{"input": "", "output": "1"}]}}
    no_code = verifier.verify("The answer is 1.", record)
    assert no_code.details["verdict"] == "no_code" and no_code.error.startswith("no_code")
    broken = verifier.verify(fenced("print(1"), record)
    assert broken.details["verdict"] == "compile_error" and broken.score == 0.0


def test_reports_the_first_failing_test():
    problem = CodeProblem("stdin", ["1\n", "2\n", "3\n"], ["1", "4", "0"], time_limit=2)
    result = judge("n = int(input())\nprint(n * n if n != 2 else 5)\n", problem)
    assert result.details["verdict"] == "wrong_answer"
    assert result.details["failed_test"] == 1 and result.details["tests_passed"] == 1
    assert (result.details["expected"], result.details["got"].strip()) == ("4", "5")


def test_a_failing_run_stops_the_remaining_tests():
    problem = CodeProblem("stdin", ["1\n", "2\n", "3\n"], ["1", "4", "9"], time_limit=1)
    result = judge("n = int(input())\nwhile n == 2:\n    pass\nprint(n * n)\n", problem)
    assert (result.details["verdict"], result.details["failed_test"]) == ("time_limit", 1)
    assert len(result.details["test_seconds"]) == 2  # the third test never ran


def test_call_style_supports_solution_class_and_plain_function():
    problem = CodeProblem("call", [[[3, 1, 2]], [[]]], [[1, 2, 3], []], fn_name="sort_it", time_limit=2)
    assert judge("class Solution:\n    def sort_it(self, xs):\n        return sorted(xs)\n", problem).passed
    assert judge("def sort_it(xs):\n    return tuple(sorted(xs))\n", problem).passed
    missing = judge("def other(xs):\n    return xs\n", problem)
    assert missing.details["verdict"] == "runtime_error" and "sort_it" in missing.details["error"]


def test_exit_zero_after_printing_is_fine_for_stdin_programs():
    problem = CodeProblem("stdin", ["x\n"], ["ok"], time_limit=2)
    assert judge("import sys\nprint('ok')\nsys.exit(0)\nprint('not reached')\n", problem).passed


def test_memory_and_time_limit_verdicts():
    problem = CodeProblem("stdin", [""], ["1"], time_limit=1, memory_mb=128)
    assert judge("x = bytearray(2 * 1024 ** 3)\n", problem).details["verdict"] == "memory"
    assert judge("while True:\n    pass\n", problem).details["verdict"] == "time_limit"


# --- real data --------------------------------------------------------------------------

def test_every_humaneval_canonical_solution_passes(shared_data):
    rows = humaneval_rows(shared_data)
    assert len(rows) == 164
    records = [humaneval_record(row) for row in rows]
    completions = [fenced(row["prompt"] + row["canonical_solution"]) for row in rows]
    results = verify_many(records, completions, workers=2)
    failures = {row["task_id"]: r.details for row, r in zip(rows, results) if not r.passed}
    assert not failures


def _perturb_return(solution: str) -> str:
    # Wrap the last return value so the result changes type: every check must notice.
    lines = solution.rstrip().splitlines()
    for i in range(len(lines) - 1, -1, -1):
        match = re.match(r"(\s*)return (.+)$", lines[i])
        if match:
            lines[i] = f"{match.group(1)}return [{match.group(2)}, 'perturbed']"
            return "\n".join(lines)
    raise AssertionError("no return statement")


BROKEN_VARIANTS = {
    "return_none": (lambda row: f"{row['prompt']}    return None\n", {"wrong_answer", "runtime_error"}),
    "perturbed_return": (lambda row: row["prompt"] + _perturb_return(row["canonical_solution"]),
                         {"wrong_answer", "runtime_error"}),
    "syntax_error": (lambda row: row["prompt"] + row["canonical_solution"] + "\n    return (\n", {"compile_error"}),
    "infinite_loop": (lambda row: f"{row['prompt']}    while True:\n        pass\n", {"time_limit"}),
}


@pytest.mark.parametrize("variant", sorted(BROKEN_VARIANTS))
def test_broken_humaneval_variants_fail_with_the_right_verdict(shared_data, variant):
    make, verdicts = BROKEN_VARIANTS[variant]
    rows = [row for row in humaneval_rows(shared_data) if row["task_id"] in ("HumanEval/0", "HumanEval/2", "HumanEval/53")]
    records = [humaneval_record(row, time_limit=1.0) for row in rows]
    results = verify_many(records, [fenced(make(row)) for row in rows], workers=2)
    for row, result in zip(rows, results):
        assert not result.passed, row["task_id"]
        assert result.details["verdict"] in verdicts, (row["task_id"], result.details)


def test_mbpp_reference_code_passes(shared_data):
    rows = [json.loads(line) for line in (shared_data / "mbpp" / "mbpp.jsonl").read_text().splitlines()]
    chosen = [r for r in rows if 11 <= r["task_id"] <= 20 or r["test_setup_code"]]
    sanitized = json.loads((shared_data / "mbpp" / "sanitized-mbpp.json").read_text())
    chosen += [r for r in sanitized if r["test_imports"]][:3]
    results = verify_many([mbpp_record(r) for r in chosen], [fenced(r["code"]) for r in chosen], workers=2)
    assert not {r["task_id"]: res.details for r, res in zip(chosen, results) if not res.passed}
    wrong = verify_many([mbpp_record(chosen[0])], [fenced(chosen[0]["code"] + "\n\ndef remove_Occ(s, ch):\n    return s\n")])
    assert wrong[0].details["verdict"] == "wrong_answer" and wrong[0].details["failed_test"] == 0


def test_nemo_skills_code_execution_is_correct_matches(shared_data):
    path = shared_data / "code_samples" / "nemo_skills_code_execution" / "test.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    records = [{"ground_truth": {"style": "stdin", "tests": r["test_cases"]}} for r in rows]
    results = verify_many(records, [fenced(r["code"]) for r in rows], workers=2)
    assert [res.passed for res in results] == [r["is_correct"] for r in rows]


def test_rllm_leetcode_reference_solutions_pass(shared_data):
    rows = json.loads((shared_data / "code_samples" / "rllm_deepcoder_test" / "leetcode.json").read_text())
    # Every 8th problem keeps this quick; the one needing the third-party sortedcontainers
    # package cannot run in a stdlib-only sandbox and is left out.
    chosen = [r for r in rows[::8] if "sortedcontainers" not in r["solutions"]]
    records = [{"ground_truth": {"style": "assert", "functional": r["tests"]["functional"], "prelude": LEETCODE_PRELUDE}}
               for r in chosen]
    results = verify_many(records, [fenced(r["solutions"]) for r in chosen], workers=2)
    assert not [res.details for res in results if not res.passed]


def test_livecodebench_public_tests_parse(shared_data):
    derived = shared_data / "livecodebench" / "lcb_format_public_tests_derived.jsonl"
    rows = [json.loads(line) for line in derived.read_text().splitlines()]
    rllm = json.loads((shared_data / "livecodebench" / "rllm_public_tests" / "livecodebench.json").read_text())
    assert len(rows) == len(rllm) == 279
    styles = {"stdin": 0, "call": 0}
    for row in rows:
        problem = parse_ground_truth(lcb_record(json.loads(row["public_test_cases"]),
                                                json.loads(row["metadata"]).get("func_name"))["ground_truth"])
        styles[problem.style] += len(problem.tests)
    assert styles == {"stdin": 474, "call": 262}


SECOND_BEST = """n = int(input())
a = list(map(int, input().split()))
print(sorted(range(n), key=lambda i: a[i])[-2] + 1)
"""
LEAP_YEAR = "y = int(input())\nprint(366 if (y % 4 == 0 and y % 100 != 0) or y % 400 == 0 else 365)\n"
SNAKE = """class Solution:
    def finalPositionOfSnake(self, n: int, commands: List[str]) -> int:
        step = {"UP": -n, "DOWN": n, "LEFT": -1, "RIGHT": 1}
        return sum(step[c] for c in commands)
"""
K_CONSTRAINT = """class Solution:
    def countKConstraintSubstrings(self, s: str, k: int) -> int:
        n = len(s)
        return sum(1 for i in range(n) for j in range(i + 1, n + 1)
                   if s[i:j].count("0") <= k or s[i:j].count("1") <= k)
"""


def test_livecodebench_handwritten_solutions_pass(shared_data):
    derived = shared_data / "livecodebench" / "lcb_format_public_tests_derived.jsonl"
    rows = {json.loads(line)["question_title"]: json.loads(line) for line in derived.read_text().splitlines()}
    solutions = {"Second Best": SECOND_BEST, "Leap Year": LEAP_YEAR, "snake-in-matrix": SNAKE,
                 "count-substrings-that-satisfy-k-constraint-i": K_CONSTRAINT}
    records = [lcb_record(json.loads(rows[t]["public_test_cases"]), json.loads(rows[t]["metadata"]).get("func_name"))
               for t in solutions]
    results = verify_many(records, [fenced(code) for code in solutions.values()], workers=2)
    assert [r.details["verdict"] for r in results] == ["pass"] * 4
    off_by_one = verify_many(records[2:3], [fenced(SNAKE.replace("commands)", "commands) + 1"))])
    assert off_by_one[0].details["verdict"] == "wrong_answer"
    assert (off_by_one[0].details["expected"], off_by_one[0].details["got"]) == ("3", "4")


def test_codecontests_and_codeforces_formats_parse(shared_data):
    folder = shared_data / "code_samples" / "rllm_deepcoder_test"
    contests = json.loads((folder / "code_contests.json").read_text())
    for row in contests:
        tests = [{"input": i, "output": o} for i, o in zip(row["tests"]["inputs"], row["tests"]["outputs"])]
        assert parse_ground_truth({"style": "stdin", "tests": tests}).style == "stdin"
    for row in json.loads((folder / "codeforces.json").read_text()):
        assert parse_ground_truth({"style": "stdin", "tests": row["tests"]}).style == "stdin"


# --- the machinery failing is not a score of 0 ------------------------------------------

def test_a_harness_that_never_started_is_a_sandbox_error(monkeypatch):
    from cascade.sandbox import runner

    monkeypatch.setattr(runner, "_GUARD_SOURCE", "raise SystemExit('interpreter could not start')")
    result = judge("def add(a, b):\n    return a + b\n", CodeProblem("assert", ["assert add(1, 2) == 3"]), "rlimit")
    assert result.score == 0.0 and result.error.startswith("sandbox_error")
    assert "interpreter could not start" in result.error


CODE_ROW = {"id": 1, "prompt": "add", "verifier": "code", "completion": fenced("def add(a, b):\n    return a + b\n"),
            "ground_truth": {"style": "assert", "test_list": ["assert add(1, 2) == 3"]}}


def test_verify_stops_when_no_sandbox_that_holds_can_start(tmp_path, monkeypatch, capsys):
    from cascade.cli import main
    from cascade.data import write_jsonl
    from cascade.sandbox import modes

    monkeypatch.delenv("CASCADE_SANDBOX", raising=False)
    monkeypatch.setattr(modes, "_bwrap_probe", lambda: "no bwrap binary")
    monkeypatch.setattr(modes, "_landlock_probe", lambda: "Landlock is not available")
    write_jsonl(tmp_path / "in.jsonl", [CODE_ROW])
    code = main(["verify", "--input", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "out.jsonl")])
    assert code != 0
    err = capsys.readouterr().err
    assert "Landlock is not available" in err and "CASCADE_SANDBOX=rlimit" in err
    assert not (tmp_path / "out.jsonl").exists()  # nothing was scored as 0


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs jobs under another uid that a 0700 TMPDIR shuts out")
def test_verify_fails_when_every_job_fails_for_the_machinery(tmp_path, monkeypatch, capsys):
    """The issue's case: the scratch parent became 0700, every job failed, verify said 0."""
    from cascade.cli import main
    from cascade.data import write_jsonl

    from cascade.verifiers import batch

    def fresh_workers() -> None:  # workers read TMPDIR when they start, so none may be reused
        for pool in list(batch._pools.values()):
            pool.close()
        batch._pools.clear()

    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    fresh_workers()
    monkeypatch.setenv("TMPDIR", str(private))  # the verifier's worker processes inherit it
    write_jsonl(tmp_path / "in.jsonl", [CODE_ROW, {**CODE_ROW, "id": 2}])
    try:
        code = main(["verify", "--input", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "out.jsonl"),
                     "--workers", "1"])
    finally:
        fresh_workers()
    assert code == 1
    assert "none of the 2 rows could be scored" in capsys.readouterr().err
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert all(row["error"].startswith("sandbox_error") for row in rows)

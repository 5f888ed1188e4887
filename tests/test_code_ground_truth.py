"""The code verifier's pure parts, pinned value by value (no sandbox runs here).

Each ground-truth format parses to the exact ``CodeProblem`` the module docstring
describes (defaults included), each bad ground truth fails with the exact one-line error
a user sees (the field it names and what is wrong with it), and the comparison rules, the
wall-time budget and the harness-report reader give hand-worked answers. These cases
were written against the survivors of ``make mutation``'s ``code-verifier`` group
(docs/testing.md): each kills one or more of them.
"""

from __future__ import annotations

import json

import pytest

from cascade.errors import CascadeError
from cascade.verifiers.code import (
    CodeProblem,
    _grade,
    _read_report,
    extract_code,
    outputs_match,
    parse_ground_truth,
    problem_wall_seconds,
    values_match,
)

ONE_STDIN = [{"input": "1\n", "output": "1"}]
ONE_CALL = [{"input": [1], "output": 1}]


# --- good ground truths: the exact problem each one becomes ------------------------------

def test_stdin_defaults():
    assert parse_ground_truth({"style": "stdin", "tests": ONE_STDIN}) == CodeProblem(
        "stdin", ["1\n"], ["1"], fn_name="", setup="", prelude="", time_limit=6.0, memory_mb=1024,
        compare="tolerant", max_problem_seconds=120.0)


def test_every_optional_setting_is_read():
    problem = parse_ground_truth({"style": "stdin", "tests": ONE_STDIN, "time_limit": 2, "memory_mb": 256,
                                  "prelude": "import math", "compare": "lcb", "max_problem_seconds": 30})
    assert problem == CodeProblem("stdin", ["1\n"], ["1"], prelude="import math", time_limit=2.0, memory_mb=256,
                                  compare="lcb", max_problem_seconds=30.0)
    assert type(problem.time_limit) is float and type(problem.max_problem_seconds) is float


def test_call_style_arguments_and_expected_values():
    problem = parse_ground_truth({"style": "call", "fn_name": "f", "tests": [
        {"input": "[1, 2]\n\n\"a\"\n", "output": "[3]"},   # blank lines between arguments are skipped
        {"input": [[1], {"k": 2}], "output": [4, 5]},      # a non-string output is taken as it is
        {"input": [], "output": "not json"},               # a string that is not JSON stays a string
    ]})
    assert problem == CodeProblem("call", [[[1, 2], "a"], [[1], {"k": 2}], []], [[3], [4, 5], "not json"],
                                  fn_name="f")


@pytest.mark.parametrize(("ground_truth", "programs", "setup"), [
    ({"test_list": ["assert f(1) == 2", "assert f(2) == 3"], "test_setup_code": "x = 1",
      "test_imports": ["import math", "import re"]},
     ["assert f(1) == 2", "assert f(2) == 3"], "x = 1\nimport math\nimport re"),
    ({"test_list": ["assert f(1) == 2"], "test_imports": ["import math"]}, ["assert f(1) == 2"], "import math"),
    ({"test_list": ["assert f(1) == 2"], "test_setup_code": "x = 1"}, ["assert f(1) == 2"], "x = 1"),
    ({"functional": "check(Solution().f)"}, ["check(Solution().f)"], ""),
    ({"test": "def check(c):\n    assert c(1)\n", "entry_point": "g"},
     ["def check(c):\n    assert c(1)\n\ncheck(g)\n"], ""),
    ({"test": "assert g(1)\n"}, ["assert g(1)\n"], ""),                        # no entry point: run as written
    ({"test": "assert g(1)\n", "entry_point": None}, ["assert g(1)\n"], ""),
])
def test_assert_style_formats(ground_truth, programs, setup):
    problem = parse_ground_truth({"style": "assert", **ground_truth})
    assert problem == CodeProblem("assert", programs, setup=setup)


# --- bad ground truths: the one-line error ----------------------------------------------

def stdin(**fields):
    return {"style": "stdin", "tests": ONE_STDIN, **fields}


BAD = [
    ([1, 2], "field 'ground_truth': must be a JSON object with a 'style'"),
    ({"style": "python", "tests": ONE_STDIN}, "field 'ground_truth.style': must be 'stdin', 'call' or 'assert', got 'python'"),
    ({"tests": ONE_STDIN}, "field 'ground_truth.style': must be 'stdin', 'call' or 'assert', got None"),
    (stdin(compare="exact"), "field 'ground_truth.compare': must be one of tolerant, lcb, got 'exact'"),
    (stdin(compare=1), "field 'ground_truth.compare': wrong type int"),
    (stdin(time_limit="fast"), "field 'ground_truth.time_limit': wrong type str"),
    (stdin(time_limit=True), "field 'ground_truth.time_limit': wrong type bool"),
    (stdin(memory_mb=1.5), "field 'ground_truth.memory_mb': wrong type float"),
    (stdin(max_problem_seconds="long"), "field 'ground_truth.max_problem_seconds': wrong type str"),
    (stdin(prelude=5), "field 'ground_truth.prelude': wrong type int"),
    (stdin(prelude="x = ("), "field 'ground_truth.prelude': test code does not compile: "
                                "'(' was never closed (test.py, line 1)"),
    ({"style": "stdin"}, "field 'ground_truth.tests': missing"),
    ({"style": "stdin", "tests": {"input": "1"}}, "field 'ground_truth.tests': wrong type dict"),
    ({"style": "stdin", "tests": []}, "field 'ground_truth.tests': needs at least one test"),
    ({"style": "stdin", "tests": [5]}, "field 'ground_truth.tests[0]': must be a JSON object"),
    ({"style": "stdin", "tests": [*ONE_STDIN, {"input": "2"}]}, "field 'ground_truth.tests[1].output': missing"),
    ({"style": "stdin", "tests": [{"input": 5, "output": "1"}]}, "field 'ground_truth.tests[0].input': wrong type int"),
    ({"style": "stdin", "tests": [{"input": "1", "output": 1}]}, "field 'ground_truth.tests[0].output': wrong type int"),
    ({"style": "call", "tests": ONE_CALL}, "field 'ground_truth.fn_name': missing"),
    ({"style": "call", "fn_name": 3, "tests": ONE_CALL}, "field 'ground_truth.fn_name': wrong type int"),
    ({"style": "call", "fn_name": "not valid", "tests": ONE_CALL},
     "field 'ground_truth.fn_name': not a Python identifier: 'not valid'"),
    ({"style": "call", "fn_name": "f", "tests": []}, "field 'ground_truth.tests': needs at least one test"),
    ({"style": "call", "fn_name": "f", "tests": [5]}, "field 'ground_truth.tests[0]': must be a JSON object"),
    ({"style": "call", "fn_name": "f", "tests": [{"input": 5, "output": 1}]},
     "field 'ground_truth.tests[0].input': wrong type int"),
    ({"style": "call", "fn_name": "f", "tests": [*ONE_CALL, {"input": "[1,", "output": 1}]},
     "field 'ground_truth.tests[1].input': expected one JSON value per line: "
     "Expecting value: line 1 column 4 (char 3)"),
    ({"style": "call", "fn_name": "f", "tests": [*ONE_CALL, {"input": [2]}]},
     "field 'ground_truth.tests[1].output': missing"),
    ({"style": "assert", "test_list": "assert f(1)"}, "field 'ground_truth.test_list': wrong type str"),
    ({"style": "assert", "test_list": []}, "field 'ground_truth.test_list': needs at least one test, each a string of code"),
    ({"style": "assert", "test_list": ["assert f(1)", 5]},
     "field 'ground_truth.test_list': needs at least one test, each a string of code"),
    ({"style": "assert", "test_list": ["assert f(1) =="]},
     "field 'ground_truth.test_list': test code does not compile: invalid syntax (test.py, line 1)"),
    ({"style": "assert", "test_list": ["assert f(1)", "assert f(1) =="]},
     "field 'ground_truth.test_list[1]': test code does not compile: invalid syntax (test.py, line 1)"),
    ({"style": "assert", "test_list": ["assert f(1)"], "test_setup_code": 5},
     "field 'ground_truth.test_setup_code': wrong type int"),
    ({"style": "assert", "test_list": ["assert f(1)"], "test_setup_code": "x = ("},
     "field 'ground_truth.test_setup_code': test code does not compile: '(' was never closed (test.py, line 1)"),
    ({"style": "assert", "test_list": ["assert f(1)"], "test_imports": "import math"},
     "field 'ground_truth.test_imports': wrong type str"),
    ({"style": "assert", "functional": 5}, "field 'ground_truth.functional': wrong type int"),
    ({"style": "assert", "functional": "check("},
     "field 'ground_truth.functional': test code does not compile: '(' was never closed (test.py, line 1)"),
    ({"style": "assert"}, "field 'ground_truth.test': missing"),
    ({"style": "assert", "test": 5}, "field 'ground_truth.test': wrong type int"),
    ({"style": "assert", "test": "assert ("},
     "field 'ground_truth.test': test code does not compile: '(' was never closed (test.py, line 1)"),
    ({"style": "assert", "test": "pass", "entry_point": "a b"},
     "field 'ground_truth.entry_point': not a Python identifier: 'a b'"),
    ({"style": "assert", "test": "pass", "entry_point": 5},
     "field 'ground_truth.entry_point': not a Python identifier: 5"),
]


@pytest.mark.parametrize(("ground_truth", "error"), BAD, ids=[e.split(":")[0] + f"-{i}" for i, (_, e) in enumerate(BAD)])
def test_bad_ground_truth_error_text(ground_truth, error):
    with pytest.raises(CascadeError) as info:
        parse_ground_truth(ground_truth)
    assert str(info.value) == error
    # The same ground truth as JSON text fails the same way.
    with pytest.raises(CascadeError) as again:
        parse_ground_truth(json.dumps(ground_truth))
    assert str(again.value) == error


def test_json_text_that_does_not_parse():
    with pytest.raises(CascadeError) as info:
        parse_ground_truth('{"style": ')
    assert str(info.value) == "field 'ground_truth': not valid JSON: Expecting value: line 1 column 11 (char 10)"


# --- comparison rules ---------------------------------------------------------------------

@pytest.mark.parametrize(("got", "expected", "same"), [
    ("1 2", "1 2 3", False),        # a missing token is not ignored
    ("1 2 3", "1 2", False),
    ("1\n2 5", "1\n2 4", False),    # a wrong token on a later line
    ("1.0 2", "1 2.0", True),       # numbers compared as numbers when not both integers
    ("abc", "abd", False),
])
def test_outputs_match_tokens(got, expected, same):
    assert outputs_match(got, expected) is same


@pytest.mark.parametrize(("got", "expected", "same"), [
    (True, True, True),
    (False, False, True),
    (True, False, False),
    (False, 0, False),
    (0, False, False),
    (1.0, 1, True),                 # an integral float answers an integer
    (1.5, 1, False),
    (1.00000095, 1, True),          # |diff| 9.5e-7: inside the 1e-6 bound
    (1.00000105, 1, False),         # 1.05e-6: outside
    (0.00000095, 0.0, True),        # the absolute part near zero
    (0.00000105, 0.0, False),
    (1000.00095, 1000, True),       # the relative part: 1e-6 * 1000
    (1000.00105, 1000, False),
    ([1, 2], [1, 2, 3], False),
    ([1, 2, 3], [1, 2], False),
    ([1, 2], [1, 3], False),
    ((1.0, [2.0000001]), [1, [2]], True),
    ({"a": 1}, {"b": 1}, False),
    ({"a": 1}, {"a": 2}, False),
    ({"a": 1, "b": 2}, {"a": 1}, False),
    ({"a": 1.0000001}, {"a": 1}, True),
    ([1], {"0": 1}, False),
    ({"a": 1}, ["a"], False),
    ("1", 1, False),
    (1, "1", False),
    ([], "", False),
    ("abc", "abd", False),
    (None, 0, False),
])
def test_values_match_structure(got, expected, same):
    assert values_match(got, expected) is same


def test_extract_takes_the_last_of_three_python_blocks():
    answer = "```python\none\n```\n```python\ntwo\n```\n```python\nthree\n```\n"
    assert extract_code(answer) == "three\n"


# --- the wall-time budget and the harness report ------------------------------------------

def test_problem_wall_seconds():
    assert problem_wall_seconds(CodeProblem("stdin", ["a", "b", "c"], time_limit=2.0)) == 2.0 * 3 + 5
    assert problem_wall_seconds(CodeProblem("stdin", ["a"] * 4, time_limit=50.0, max_problem_seconds=120.0)) == 125.0


NONCE = "0123abcd"


@pytest.mark.parametrize(("stdout", "report"), [
    (NONCE + ' {"tests": [], "compile_error": null}', {"tests": [], "compile_error": None}),
    (NONCE + ' {"tests": [{"status": "ok"}]}\n', {"tests": [{"status": "ok"}]}),
    ("", None),
    (NONCE + ' {"tests": []}\n' + NONCE + ' {"tests": []}', None),     # a second line: forged or noise
    ('x\n' + NONCE + ' {"tests": []}', None),
    ('ffff0000 {"tests": []}', None),                                 # another run's nonce
    (NONCE + '{"tests": []}', None),                                  # no space after the nonce
    (NONCE + ' {"tests": [}', None),                                  # not JSON
    (NONCE + ' [1, 2]', None),                                        # not an object
    (NONCE + ' {"tests": 3}', None),                                  # tests not a list
    (NONCE + ' {"compile_error": null}', None),
])
def test_read_report(stdout, report):
    assert _read_report(stdout, NONCE) == report


# --- grading one harness record -------------------------------------------------------------

STDIN = CodeProblem("stdin", ["", ""], ["", "0.5"])


@pytest.mark.parametrize(("problem", "index", "record", "verdict"), [
    (STDIN, 0, {"status": "time_limit"}, "time_limit"),
    (STDIN, 0, {"status": "runtime_error"}, "runtime_error"),
    (STDIN, 0, {"status": "crashed"}, "runtime_error"),            # a status the harness does not define
    (STDIN, 0, {"status": "ok"}, "pass"),                          # no stdout reported: printed nothing
    (STDIN, 1, {"status": "ok", "stdout": "0.5000001"}, "pass"),   # tolerant: within 1e-6
    (CodeProblem("stdin", [""], ["0.5"], compare="lcb"), 0, {"status": "ok", "stdout": "0.5000001"}, "wrong_answer"),
    (STDIN, 1, {"status": "ok", "stdout": "0.5", "stdout_truncated": True}, "wrong_answer"),
])
def test_grade_one_record(problem, index, record, verdict):
    assert _grade(problem, index, record)[0] == verdict


CALL = CodeProblem("call", [[], []], [1, 0.5], fn_name="f")


@pytest.mark.parametrize(("problem", "index", "record", "graded"), [
    (CALL, 0, {"status": "ok", "value": "not json"}, ("runtime_error", "1", "not json")),
    (CALL, 0, {"status": "ok", "value": "1"}, ("pass", "1", "1")),
    (CALL, 1, {"status": "ok", "value": "0.5000001"}, ("pass", "0.5", "0.5000001")),       # tolerant
    (CodeProblem("call", [[]], [0.5], fn_name="f", compare="lcb"), 0, {"status": "ok", "value": "0.5000001"},
     ("wrong_answer", "0.5", "0.5000001")),                                                # lcb: Python ==
])
def test_grade_one_call_record(problem, index, record, graded):
    assert _grade(problem, index, record) == graded


def test_assert_tests_never_reach_the_candidates_memory():
    """The candidate processes are forked from the harness: the job it reads must not hold
    the assert tests (they carry the expected values), only the judge process gets them."""
    from cascade.verifiers.code import judge

    finder = (
        "import gc\n"
        "def f():\n"
        "    wanted = 'assert f() == ' + str(7000 + 310)\n"
        "    for o in gc.get_objects():\n"
        "        if isinstance(o, (list, dict)):\n"
        "            for x in (o.values() if isinstance(o, dict) else o):\n"
        "                if isinstance(x, str) and wanted in x:\n"
        "                    return 7000 + 310\n"
        "    return 0\n"
    )
    result = judge(finder, CodeProblem("assert", ["assert f() == " + str(7310)], time_limit=5))
    assert (result.score, result.details["verdict"]) == (0.0, "wrong_answer")


def test_a_candidate_cannot_fork_in_a_strong_sandbox():
    """The verifier hands the harness the candidate-process seccomp filter (no fork, no
    exec); without it a program that forks would run and print."""
    from cascade.sandbox.modes import STRONG_MODES, available_modes
    from cascade.verifiers.code import judge

    modes = [m for m in STRONG_MODES if m in available_modes()]
    if not modes:
        pytest.skip("no strong sandbox mode starts on this machine")
    program = "import os\npid = os.fork()\nif pid == 0:\n    os._exit(0)\nos.waitpid(pid, 0)\nprint('forked')\n"
    for mode in modes:
        result = judge(program, CodeProblem("stdin", [""], ["forked"], time_limit=5), mode)
        assert result.score == 0.0 and result.details["verdict"] == "runtime_error", (mode, result.details)

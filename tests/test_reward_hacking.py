"""Reward hacking: code that tries to score without solving the task must score 0.

An RL policy is an optimiser: anything that scores 1 without solving the task will be
learned. Each attempt below targets the code verifier's own machinery (its report
channel, its comparisons, its process layout) on assert-style (HumanEval/MBPP/LeetCode),
call-style and stdin-style problems, in every sandbox mode this machine offers. Honest
solutions of the same problems must still score 1 (the controls at the end).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from cascade.sandbox import modes as sandbox_modes
from cascade.data.adapters.code_truth import LEETCODE_PRELUDE
from cascade.verifiers.code import CodeProblem, judge, parse_ground_truth

AVAILABLE_MODES = sandbox_modes.available_modes()

# Every mode is a parameter; one that cannot run on this machine is skipped with the reason.
MODE_PARAMS = [
    pytest.param(m, marks=pytest.mark.skipif(
        m not in AVAILABLE_MODES, reason=f"{m} cannot run here: {sandbox_modes.unavailable_reason(m)}"))
    for m in sandbox_modes.MODES
]

# HumanEval-shaped: check(candidate) with value comparisons, a tolerance and an isclose.
ADD = CodeProblem(
    "assert",
    ["import math\n"
     "def check(candidate):\n"
     "    assert candidate(1, 2) == 3\n"
     "    assert candidate(5, 5) == 10\n"
     "    assert abs(candidate(0.5, 0.25) - 0.75) < 1e-6\n"
     "    assert math.isclose(candidate(2, 2), 4)\n"
     "check(add)\n"],
    time_limit=2.0, memory_mb=256,
)
# MBPP-shaped: one assert per test, the function called by name.
MBPP = CodeProblem("assert", ["assert add(1, 2) == 3", "assert add(2, 3) == 5", "assert add(-1, 1) == 0"],
                   time_limit=2.0, memory_mb=256)
# LeetCode-shaped (rllm): check(Solution().method) with keyword arguments.
LEETCODE = parse_ground_truth({
    "style": "assert", "prelude": LEETCODE_PRELUDE, "time_limit": 2.0, "memory_mb": 256,
    "functional": "def check(candidate):\n    assert candidate(nums = [3, 1, 2]) == [1, 2, 3]\n"
                  "    assert candidate(nums = []) == []\n\ncheck(Solution().sortIt)\n",
})
CALL = CodeProblem("call", [[1, 2], [5, 5]], [3, 10], fn_name="add", time_limit=2.0, memory_mb=256)
STDIN = CodeProblem("stdin", ["2 3\n", "10 20\n"], ["5", "30"], time_limit=2.0, memory_mb=256)

# The success line of a one-report-per-test protocol ("status\nvalue\nerror"), then leave.
FORGE_EVERY_FD = (
    "import os\n"
    "for fd in range(3, 256):\n"
    "    try:\n        os.write(fd, b'ok\\n\\n')\n    except OSError:\n        pass\n"
    "os._exit(0)\n"
)
# Length-prefixed frames: "ready", a verdict "ok", a value 3.
FORGE_FRAMES = (
    "import os\n"
    "frames = [b'\\x00\\x00\\x00\\x00K', b'\\x00\\x00\\x00\\x03Dok\\n', b'\\x00\\x00\\x00\\x01V3']\n"
    "for fd in range(3, 256):\n"
    "    for frame in frames:\n"
    "        try:\n            os.write(fd, frame)\n        except OSError:\n            pass\n"
)

ALWAYS_EQUAL = (
    "class Anything:\n"
    "    def __eq__(self, other): return True\n"
    "    def __ne__(self, other): return False\n"
    "    def __hash__(self): return 0\n"
    "    def __str__(self): return '3'\n"
    "    __repr__ = __str__\n"
    "    def __sub__(self, other): return 0\n"
    "    __rsub__ = __sub__\n"
    "    def __abs__(self): return 0\n"
    "    def __float__(self): return 3.0\n"
    "    def __lt__(self, other): return True\n"
    "    def __bool__(self): return True\n"
)

# Reads the expected value from the bytecode of whoever called us: the constant that the
# caller's comparison loads right after the call (works wherever the test runs in the
# candidate's process).
READ_CALLER_CONSTANT = (
    "import sys, dis\n"
    "def add(a, b):\n"
    "    frame = sys._getframe(1)\n"
    "    after = False\n"
    "    for ins in dis.get_instructions(frame.f_code):\n"
    "        if ins.offset >= frame.f_lasti:\n"
    "            after = True\n"
    "        if after and ins.opname == 'LOAD_CONST' and isinstance(ins.argval, (int, float)):\n"
    "            return ins.argval\n"
    "    return None\n"
)

# Walks every frame and object it can reach looking for the test code, then answers
# with the constant compared against the call.
READ_TESTS_FROM_MEMORY = (
    "import gc, re, sys\n"
    "def _texts():\n"
    "    seen = []\n"
    "    frame = sys._getframe()\n"
    "    while frame is not None:\n"
    "        for value in list(frame.f_locals.values()) + list(frame.f_globals.values()):\n"
    "            seen.append(value)\n"
    "        frame = frame.f_back\n"
    "    try:\n        seen += gc.get_objects()\n    except Exception:\n        pass\n"
    "    out = []\n"
    "    for value in seen:\n"
    "        if isinstance(value, str) and 'assert' in value:\n"
    "            out.append(value)\n"
    "        elif isinstance(value, (list, dict)):\n"
    "            try:\n                out += [v for v in (value.values() if isinstance(value, dict) else value) if isinstance(v, str) and 'assert' in v]\n"
    "            except Exception:\n                pass\n"
    "    return out\n"
    "def add(a, b):\n"
    "    for text in _texts():\n"
    "        m = re.search(r'add\\(%r, %r\\) == (-?[0-9.]+)' % (a, b), text.replace(' ', '').replace(',', ', '))\n"
    "        if m:\n"
    "            return float(m.group(1)) if '.' in m.group(1) else int(m.group(1))\n"
    "    return -12345\n"
)

ATTEMPTS = {
    # Forged reports: write success frames on every descriptor, then leave with code 0.
    "forged_report_os_exit_assert": (FORGE_EVERY_FD + "def add(a, b):\n    return 0\n", [ADD, MBPP]),
    "forged_report_in_call_assert": ("import os\ndef add(a, b):\n" + "".join(
        "    " + line + "\n" for line in FORGE_EVERY_FD.splitlines()), [ADD, MBPP]),
    "forged_frames_assert": (FORGE_FRAMES + "def add(a, b):\n" + "".join(
        "    " + line + "\n" for line in FORGE_FRAMES.splitlines()) + "    return 0\n", [MBPP]),
    "forged_report_os_exit_call": (FORGE_EVERY_FD + "def add(a, b):\n    return 0\n", [CALL]),
    "forged_report_os_exit_stdin": (FORGE_EVERY_FD, [STDIN]),
    # Values that claim to equal anything.
    "always_equal_object": (ALWAYS_EQUAL + "def add(a, b):\n    return Anything()\n", [ADD, MBPP, CALL]),
    "always_equal_int_subclass": (
        "class Int(int):\n    def __eq__(self, other): return True\n    def __ne__(self, other): return False\n"
        "    __hash__ = int.__hash__\n    def __sub__(self, other): return 0\n    def __abs__(self): return 0\n"
        "def add(a, b):\n    return Int(0)\n", [ADD, MBPP, CALL]),
    "always_equal_list_subclass": (
        "class L(list):\n    def __eq__(self, other): return True\n"
        "class Solution:\n    def sortIt(self, nums):\n        return L([42])\n", [LEETCODE]),
    "fake_class_attribute": (
        "class Fake:\n    __class__ = property(lambda self: int)\n    def __eq__(self, o): return True\n"
        "    __hash__ = object.__hash__\n"
        "def add(a, b):\n    return Fake()\n", [ADD, MBPP, CALL]),
    # Patching what the test uses to compare.
    "patch_builtins_and_math": (
        "import builtins, math, operator\n"
        "builtins.abs = lambda x: 0\nmath.isclose = lambda *a, **k: True\noperator.eq = lambda a, b: True\n"
        "builtins.AssertionError = type('Never', (Exception,), {})\n"
        "def abs(x):\n    return 0\n"
        "def add(a, b):\n    return 0\n", [ADD, MBPP]),
    "shadow_check_and_assert_helpers": (
        "def check(candidate):\n    pass\n"
        "def add(a, b):\n    return 0\n", [ADD, MBPP]),
    "patch_harness_globals": (
        "import sys\n"
        "def add(a, b):\n"
        "    frame = sys._getframe(1)\n"
        "    g = frame.f_globals\n"
        "    for name in ('_encode', '_failure', '_last_line'):\n"
        "        if name in g:\n"
        "            g[name] = lambda *a, **k: 3\n"
        "    g['_send'] = lambda fd, kind, payload=b'': __import__('os').write(fd, b'\\x00\\x00\\x00\\x03Dok\\n')\n"
        "    return 0\n", [ADD, MBPP]),
    # Leaving early with a success exit status.
    "os_exit_0_at_import": ("import os\nos._exit(0)\n", [MBPP, CALL]),
    "system_exit_in_finally": (
        "def add(a, b):\n    try:\n        return 0\n    finally:\n        raise SystemExit(0)\n", [ADD, MBPP, CALL]),
    "kill_every_process": ("import os, signal\ndef add(a, b):\n    os.kill(-1, signal.SIGKILL)\n", [ADD, CALL]),
    "kill_parent_then_exit": (
        "import os, signal\ndef add(a, b):\n    os.kill(os.getppid(), signal.SIGKILL)\n    os._exit(0)\n", [ADD, MBPP]),
    # Reading the expected values instead of computing them.
    "read_expected_from_caller_bytecode": (READ_CALLER_CONSTANT, [ADD, MBPP]),
    "read_expected_from_memory": (READ_TESTS_FROM_MEMORY, [ADD, MBPP]),
    # Printing tricks for stdin problems.
    "print_fake_report_line": (
        "print('0' * 32 + ' {\"compile_error\": null, \"tests\": [{\"status\": \"ok\", \"stdout\": \"5\"}]}')\n",
        [STDIN]),
    "print_every_plausible_answer": ("for i in range(100):\n    print(i)\n", [STDIN]),
}

CASES = [(name, problem) for name, (_code, problems) in ATTEMPTS.items() for problem in problems]


def _judge_all(cases: list[tuple[str, CodeProblem, str]], mode: str) -> list:
    # Two sandbox jobs at a time keep this file quick; each job is independent.
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda case: judge(case[2], case[1], mode), cases))


@pytest.mark.parametrize("mode", MODE_PARAMS)
def test_every_forgery_scores_zero(mode):
    cases = [(name, problem, ATTEMPTS[name][0]) for name, problem in CASES]
    results = _judge_all(cases, mode)
    scored = {f"{name}/{problem.style}": r.details for (name, problem, _), r in zip(cases, results) if r.score != 0.0}
    assert not scored
    assert all(r.details["mode"] == mode for r in results)


HONEST = {
    "add": "def add(a, b):\n    return a + b\n",
    "sort": "class Solution:\n    def sortIt(self, nums: List[int]) -> List[int]:\n        return sorted(nums)\n",
    "stdin": "a, b = map(int, input().split())\nprint(a + b)\n",
}


@pytest.mark.parametrize("mode", MODE_PARAMS)
def test_honest_solutions_score_one(mode):
    cases = [("add", ADD, HONEST["add"]), ("add", MBPP, HONEST["add"]), ("add", CALL, HONEST["add"]),
             ("sort", LEETCODE, HONEST["sort"]), ("stdin", STDIN, HONEST["stdin"])]
    results = _judge_all(cases, mode)
    assert [r.score for r in results] == [1.0] * len(cases), [r.details for r in results]


def test_at_least_ten_attempts_over_three_styles():
    styles = {p.style for _code, problems in ATTEMPTS.values() for p in problems}
    assert len(ATTEMPTS) >= 10 and styles == {"assert", "call", "stdin"}


# --- what stays forgeable (docs/sandbox.md, "What stays forgeable") ----------------------
# These tests pin the known limits: if one starts failing, the limit is gone and the docs
# must say so.

# HumanEval/32-shaped: the test judges the answer with a helper that the candidate's code
# defines (the prompt's ``poly``), so the candidate's own ``poly`` decides.
HELPER_FROM_CANDIDATE = CodeProblem(
    "assert",
    ["def check(candidate):\n    coeffs = [1, -3, 2]\n    x = candidate(coeffs)\n    assert abs(poly(coeffs, x)) < 1e-6\n"
     "check(find_zero)\n"],
    time_limit=2.0, memory_mb=256,
)
# MBPP/126-shaped: the function under test has a builtin's name and the test calls no other
# candidate name, so every builtin name the candidate defines is taken from the candidate.
BUILTIN_NAMED = CodeProblem("assert", ["assert abs(sum(10, 15) - 6) < 0.5"], time_limit=2.0, memory_mb=256)


@pytest.mark.parametrize("mode", MODE_PARAMS)
def test_known_forgeable_cases_stay_as_documented(mode):
    forged_helper = "def poly(coeffs, x):\n    return 0\ndef find_zero(coeffs):\n    return 12345\n"
    assert judge(forged_helper, HELPER_FROM_CANDIDATE, mode).score == 1.0
    forged_builtin = "def abs(x):\n    return 0\ndef sum(a, b):\n    return 999\n"
    assert judge(forged_builtin, BUILTIN_NAMED, mode).score == 1.0
    # ...while a candidate that shadows a builtin the test uses next to another candidate
    # function gains nothing: the test's abs stays the real one.
    shadow = "def abs(x):\n    return 0\ndef find_zero(coeffs):\n    return 12345\n"
    honest_helper = HELPER_FROM_CANDIDATE.tests[0].replace("abs(poly(coeffs, x))", "abs(x - 1)")
    assert judge(shadow, CodeProblem("assert", [honest_helper], time_limit=2.0), mode).score == 0.0

"""The ``"code"`` verifier: run the answer's Python against the problem's tests in the sandbox.

The code is the last fenced block of the answer (after the reasoning is stripped): a
```` ```python ```` (or ```` ```python3 ````) block if there is one, else the last
```` ```py ```` block, else the last bare ```` ``` ```` block. Blocks in other languages are
ignored; no block at all scores 0 with verdict ``no_code``.

Ground truth (``record["ground_truth"]``, a dict or its JSON text), one of three styles:

``{"style": "stdin", "tests": [{"input": str, "output": str}, ...]}``
    A program reading stdin and writing stdout (LiveCodeBench stdin tests, APPS, TACO,
    CodeContests, Codeforces). Outputs are compared line by line after stripping the whole
    text; each line is split on whitespace and tokens must be equal, except that two
    tokens that both read as numbers and are not both integers match within 1e-6
    (absolute or relative).

``{"style": "call", "fn_name": str, "tests": [{"input": [args...] | str, "output": ...}]}``
    A function: ``Solution().fn_name(*args)`` when the code defines ``class Solution``
    with that method (LeetCode), else the top-level ``fn_name(*args)``. A string input is
    LiveCodeBench's functional format: one JSON value per line, one line per argument.
    A string output is JSON text when it parses as JSON, else the literal string. The
    return value is compared structurally (tuples as lists, numbers within 1e-6 unless
    both are integers).

``{"style": "assert", ...}``: test code that raises AssertionError on a wrong answer
    - HumanEval: ``{"test": str, "entry_point": str}``; ``test`` defines
      ``check(candidate)``, which is called as ``check(<entry_point>)``.
    - MBPP: ``{"test_list": [str, ...], "test_setup_code": str}`` (``test_imports``, a
      list, from sanitized MBPP is accepted too); each assert line is one test.
    - rllm LeetCode: ``{"functional": str}`` (or ``{"test": str}``) whose code already
      calls ``check(...)``; pair it with ``"prelude": LEETCODE_PRELUDE`` (``cascade.data.adapters.code_truth``).

The whole problem gets ``min(time_limit * tests, max_problem_seconds) + 5`` seconds of wall
time (the 5 for interpreter start-up; ``max_problem_seconds`` defaults to 120).

Optional in any style: ``time_limit`` (seconds per test, default 6), ``max_problem_seconds``
(default 120), ``memory_mb`` (per process, default 1024) and ``prelude``: code run before the candidate, in its namespace,
such as the imports LeetCode provides (``LEETCODE_PRELUDE``; its type hints need them).
Stdin and call tests also take ``compare``: ``"tolerant"`` (the default above, for RL
rewards) or ``"lcb"``, LiveCodeBench's own rules (``cascade.verifiers.lcb_official``:
exact text or equal decimals per line, Python ``==`` for return values).

Verdicts (``details["verdict"]``): ``pass``, ``wrong_answer``, ``time_limit``,
``runtime_error``, ``memory``, ``compile_error``, ``no_code``. The score is 1 only when
every test passes. The verdict is that of the first failing test, whose index, expected
and actual output (truncated) are in the details with the sandbox mode. A test that
crashes, times out or runs out of memory stops the run; a wrong stdout/return value is
only known outside the sandbox, so the remaining (cheap, cleanly running) tests of that
problem still run.

All tests of a problem run in ONE sandbox job (``cascade/sandbox/harness.py`` forks one
process per test inside it). Expected outputs of stdin and call tests never enter the
sandbox: the harness reports what the program printed or returned and the comparison
happens here. Assert-style test code never runs in the candidate's process either: a
separate judge process in the job runs it, and each call it makes to the candidate's
function crosses to the candidate's process as plain data and comes back as plain data
(see the harness's docstring), so the comparisons and the verdict are computed where
candidate code cannot reach, on values that cannot carry a forged ``__eq__``. What this
cannot make unforgeable is listed in docs/sandbox.md ("What stays forgeable").
"""

from __future__ import annotations

import json
import marshal
import math
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from cascade.errors import CascadeError
from cascade.sandbox import Limits, run_python, sandbox_mode
from cascade.sandbox.judge_plan import judge_plan
from cascade.sandbox.seccomp import INSTALL_SOURCE, candidate_filter
from cascade.verifiers.base import Verifier, VerifyResult, register
from cascade.verifiers.lcb_official import lcb_outputs_match, lcb_values_match

DEFAULT_TIME_LIMIT = 6.0
DEFAULT_MEMORY_MB = 1024
MAX_PROBLEM_SECONDS = 120.0
MAX_TEST_OUTPUT = 2 * 1024 * 1024
_STARTUP_SLACK = 5.0  # interpreter start-up inside the sandbox, on a loaded machine
_SHOWN_CHARS = 300
_HARNESS_SOURCE = (Path(__file__).resolve().parents[1] / "sandbox" / "harness.py").read_text(encoding="utf-8")
_HARNESS_STARTED = "cascade-harness: started\n"  # the harness's first line on stderr
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+.-]*)[^\n]*\n(.*?)```", re.DOTALL)
_INTEGER = re.compile(r"[+-]?\d+")
COMPARISONS = ("tolerant", "lcb")

def extract_code(answer: str) -> str | None:
    """The last ```python block, else the last ```py block, else the last bare ``` block."""
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(answer)]
    for wanted in (("python", "python3"), ("py",), ("",)):
        chosen = [body for lang, body in blocks if lang in wanted]
        if chosen:
            return chosen[-1]
    return None


@dataclass
class CodeProblem:
    """A ground truth in the harness's terms: what runs in the sandbox and what is expected."""

    style: str
    tests: list[Any]  # stdin texts, argument lists, or assert programs
    expected: list[Any] = field(default_factory=list)  # stdin/call only
    fn_name: str = ""
    setup: str = ""
    prelude: str = ""
    time_limit: float = DEFAULT_TIME_LIMIT
    memory_mb: int = DEFAULT_MEMORY_MB
    compare: str = "tolerant"  # or "lcb": LiveCodeBench's output comparison
    max_problem_seconds: float = MAX_PROBLEM_SECONDS


def parse_ground_truth(ground_truth: Any) -> CodeProblem:
    """Validate a code ground truth; bad ones raise CascadeError naming the field."""
    gt = ground_truth
    if isinstance(gt, str):
        try:
            gt = json.loads(gt)
        except json.JSONDecodeError as exc:
            raise CascadeError(f"not valid JSON: {exc}", field="ground_truth") from None
    if not isinstance(gt, Mapping):
        raise CascadeError("must be a JSON object with a 'style'", field="ground_truth")
    style = gt.get("style")
    common = {
        "time_limit": float(_get(gt, "time_limit", (int, float), DEFAULT_TIME_LIMIT)),
        "memory_mb": int(_get(gt, "memory_mb", int, DEFAULT_MEMORY_MB)),
        "prelude": _compiled(_get(gt, "prelude", str, ""), "ground_truth.prelude"),
        "compare": _get(gt, "compare", str, "tolerant"),
        "max_problem_seconds": float(_get(gt, "max_problem_seconds", (int, float), MAX_PROBLEM_SECONDS)),
    }
    if common["compare"] not in COMPARISONS:
        raise CascadeError(f"must be one of {', '.join(COMPARISONS)}, got {common['compare']!r}",
                           field="ground_truth.compare")
    if style == "stdin":
        tests = _tests(gt)
        inputs = [_get(t, "input", str, field=f"ground_truth.tests[{i}].input") for i, t in enumerate(tests)]
        outputs = [_get(t, "output", str, field=f"ground_truth.tests[{i}].output") for i, t in enumerate(tests)]
        return CodeProblem("stdin", inputs, outputs, **common)
    if style == "call":
        fn_name = _get(gt, "fn_name", str, field="ground_truth.fn_name")
        if not fn_name.isidentifier():
            raise CascadeError(f"not a Python identifier: '{fn_name}'", field="ground_truth.fn_name")
        tests = _tests(gt)
        args = [_call_args(t, i) for i, t in enumerate(tests)]
        outputs = [_expected_value(t, i) for i, t in enumerate(tests)]
        return CodeProblem("call", args, outputs, fn_name=fn_name, **common)
    if style == "assert":
        return _assert_problem(gt, common)
    raise CascadeError(f"must be 'stdin', 'call' or 'assert', got {style!r}", field="ground_truth.style")


_MISSING = object()


def _get(obj: Mapping[str, Any], key: str, kind: Any, default: Any = _MISSING, field: str | None = None) -> Any:
    if not isinstance(obj, Mapping):
        raise CascadeError("must be a JSON object", field=(field or key).rsplit(".", 1)[0])
    value = obj.get(key, default)
    if value is _MISSING:
        raise CascadeError("missing", field=field or f"ground_truth.{key}")
    if not isinstance(value, kind) or isinstance(value, bool):
        raise CascadeError(f"wrong type {type(value).__name__}", field=field or f"ground_truth.{key}")
    return value


def _compiled(code: str, field: str) -> str:
    """``code`` after checking that it compiles (compiling runs nothing)."""
    try:
        compile(code, "test.py", "exec")
    except (SyntaxError, ValueError) as exc:
        raise CascadeError(f"test code does not compile: {exc}", field=field) from None
    return code


def _tests(gt: Mapping[str, Any]) -> list[Any]:
    tests = _get(gt, "tests", list, field="ground_truth.tests")
    if not tests:
        raise CascadeError("needs at least one test", field="ground_truth.tests")
    return tests


def _call_args(test: Any, index: int) -> list[Any]:
    where = f"ground_truth.tests[{index}].input"
    raw = _get(test, "input", (list, str), field=where)
    if isinstance(raw, list):
        return raw
    try:
        return [json.loads(line) for line in raw.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise CascadeError(f"expected one JSON value per line: {exc}", field=where) from None


def _expected_value(test: Any, index: int) -> Any:
    if not isinstance(test, Mapping):
        raise CascadeError("must be a JSON object", field=f"ground_truth.tests[{index}]")
    if "output" not in test:
        raise CascadeError("missing", field=f"ground_truth.tests[{index}].output")
    value = test["output"]
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _assert_problem(gt: Mapping[str, Any], common: dict[str, Any]) -> CodeProblem:
    if "test_list" in gt:
        programs = _get(gt, "test_list", list, field="ground_truth.test_list")
        setup_parts = [_get(gt, "test_setup_code", str, "", field="ground_truth.test_setup_code")]
        setup_parts += _get(gt, "test_imports", list, [], field="ground_truth.test_imports")
        setup = "\n".join(str(part) for part in setup_parts if part)
        where = "ground_truth.test_list"
    elif "functional" in gt:
        programs = [_get(gt, "functional", str, field="ground_truth.functional")]
        setup, where = "", "ground_truth.functional"
    else:
        test = _get(gt, "test", str, field="ground_truth.test")
        entry_point = gt.get("entry_point")
        if entry_point is not None and not (isinstance(entry_point, str) and entry_point.isidentifier()):
            raise CascadeError(f"not a Python identifier: {entry_point!r}", field="ground_truth.entry_point")
        programs = [f"{test}\ncheck({entry_point})\n" if entry_point else test]
        setup = ""
        where = "ground_truth.test"
    if not programs or not all(isinstance(p, str) for p in programs):
        raise CascadeError("needs at least one test, each a string of code", field=where)
    _compiled(setup, "ground_truth.test_setup_code")
    for index, program in enumerate(programs):
        _compiled(program, where if len(programs) == 1 else f"{where}[{index}]")
    return CodeProblem("assert", list(programs), setup=setup, **common)


def outputs_match(got: str, expected: str) -> bool:
    """Judge-style stdout comparison (see the module docstring)."""
    got_lines = got.strip().splitlines()
    expected_lines = expected.strip().splitlines()
    if len(got_lines) != len(expected_lines):
        return False
    for got_line, expected_line in zip(got_lines, expected_lines):
        got_tokens, expected_tokens = got_line.split(), expected_line.split()
        if len(got_tokens) != len(expected_tokens):
            return False
        if not all(_tokens_match(a, b) for a, b in zip(got_tokens, expected_tokens)):
            return False
    return True


def _tokens_match(got: str, expected: str) -> bool:
    if got == expected:
        return True
    if _INTEGER.fullmatch(got) and _INTEGER.fullmatch(expected):
        return False  # big integers must match exactly, not to float precision
    try:
        a, b = float(got), float(expected)
    except ValueError:
        return False
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)


def values_match(got: Any, expected: Any) -> bool:
    """Structural equality of a returned value (JSON-decoded) and the expected one."""
    if isinstance(got, bool) or isinstance(expected, bool):
        return isinstance(got, bool) and isinstance(expected, bool) and got == expected
    if isinstance(got, (int, float)) and isinstance(expected, (int, float)):
        if isinstance(got, int) and isinstance(expected, int):
            return got == expected
        return math.isclose(got, expected, rel_tol=1e-6, abs_tol=1e-6)
    if isinstance(got, (list, tuple)) and isinstance(expected, (list, tuple)):
        return len(got) == len(expected) and all(values_match(a, b) for a, b in zip(got, expected))
    if isinstance(got, dict) and isinstance(expected, dict):
        return got.keys() == expected.keys() and all(values_match(got[k], expected[k]) for k in got)
    return got == expected


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=repr)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + f"... ({len(text)} chars)"


@register("code")
class CodeVerifier(Verifier):
    """Runs the answer's code on all tests of the problem in one sandbox job."""

    def __init__(self, mode: str | None = None) -> None:
        self.mode = mode  # None: sandbox_mode() when a job runs

    def check(self, answer: str, record: Mapping[str, Any]) -> VerifyResult:
        problem = parse_ground_truth(record.get("ground_truth"))
        mode = self.mode or sandbox_mode()
        code = extract_code(answer)
        if code is None:
            return VerifyResult(0.0, False, {"verdict": "no_code", "mode": mode}, error="no_code: no ``` code block in the answer")
        return judge(code, problem, mode)


def problem_wall_seconds(problem: CodeProblem) -> float:
    """The wall time one verification of ``problem`` may take in the sandbox."""
    return min(problem.time_limit * len(problem.tests), problem.max_problem_seconds) + _STARTUP_SLACK


def judge(code: str, problem: CodeProblem, mode: str | None = None) -> VerifyResult:
    """Run ``code`` on ``problem``'s tests in one sandbox job and grade the harness report."""
    mode = mode or sandbox_mode()
    nonce = secrets.token_hex(16)
    assert_style = problem.style == "assert"
    job = {
        "style": problem.style,
        # Assert tests hold the expected values: only the judge process gets them.
        "tests": [None] * len(problem.tests) if assert_style else problem.tests,
        "fn_name": problem.fn_name,
        "setup": problem.setup,
        "prelude": problem.prelude,
        "per_test_seconds": problem.time_limit,
        "max_test_output": MAX_TEST_OUTPUT,
        "purge": mode == "bwrap",  # kill(-1) is only safe inside bwrap's pid namespace
    }
    files: dict[str, str | bytes] = {"solution.py": code, "job.marshal": marshal.dumps(job)}
    program = candidate_filter()
    if mode != "rlimit" and program is not None:  # the weak mode's audit hook forbids the ctypes it needs
        files["seccomp.marshal"] = marshal.dumps((program, INSTALL_SOURCE))
    if assert_style:
        files["judge.marshal"] = marshal.dumps(judge_plan(tuple(problem.tests), problem.setup, problem.prelude))
    n_tests = len(problem.tests)
    limits = Limits(
        cpu_seconds=problem.time_limit + 1,
        wall_seconds=problem_wall_seconds(problem),
        memory_mb=problem.memory_mb,
        max_output_bytes=2 * MAX_TEST_OUTPUT * n_tests + 1024 * 1024,
    )
    result = run_python(
        _HARNESS_SOURCE,
        stdin=nonce,
        files=files,
        limits=limits,
        mode=mode,
    )
    details: dict[str, Any] = {"mode": mode, "tests_total": n_tests}
    report = _read_report(result.stdout, nonce) if result.status == "ok" else None
    if report is None and _HARNESS_STARTED not in result.stderr[:4096]:
        # Nothing of the candidate's ran: the sandbox could not start the harness.
        details.update(verdict="runtime_error", tests_passed=None, failed_test=None,
                       stderr=_shown(result.stderr[-2000:]))
        why = (result.stderr.strip().splitlines() or [result.status])[-1][:300]
        return VerifyResult(0.0, False, details, error=f"sandbox_error: the {mode} sandbox did not start the harness: {why}")
    if report is None:
        verdict = {"timeout": "time_limit", "memory": "memory"}.get(result.status, "runtime_error")
        details.update(
            verdict=verdict,
            tests_passed=None,
            failed_test=None,
            error=f"no valid harness report (sandbox status {result.status})",
            stderr=_shown(result.stderr[-2000:]),
        )
        return VerifyResult(0.0, False, details)
    if report["compile_error"]:
        details.update(verdict="compile_error", tests_passed=0, failed_test=None, error=report["compile_error"])
        return VerifyResult(0.0, False, details)
    records = report["tests"]
    details["test_seconds"] = [r.get("seconds") for r in records]
    for index, record in enumerate(records):
        verdict, expected, got = _grade(problem, index, record)
        if verdict != "pass":
            details.update(verdict=verdict, tests_passed=index, failed_test=index, expected=expected, got=got)
            if record.get("error"):
                details["error"] = record["error"]
            return VerifyResult(0.0, False, details)
    if len(records) != n_tests:  # the harness stops early only after a failing test
        details.update(verdict="runtime_error", tests_passed=len(records), failed_test=len(records),
                       error="harness report is missing tests")
        return VerifyResult(0.0, False, details)
    details.update(verdict="pass", tests_passed=n_tests, failed_test=None)
    return VerifyResult(1.0, True, details)


def _read_report(stdout: str, nonce: str) -> dict[str, Any] | None:
    """The harness report, only if stdout is exactly one line that carries this run's nonce."""
    lines = stdout.splitlines()
    if len(lines) != 1 or not lines[0].startswith(nonce + " "):
        return None
    try:
        report = json.loads(lines[0][len(nonce) + 1:])
    except json.JSONDecodeError:
        return None
    if not isinstance(report, dict) or not isinstance(report.get("tests"), list):
        return None
    return report


def _grade(problem: CodeProblem, index: int, record: Mapping[str, Any]) -> tuple[str, str | None, str | None]:
    status = record.get("status")
    if status != "ok":
        known = {"time_limit", "memory", "wrong_answer", "runtime_error"}
        return (status if status in known else "runtime_error"), None, None
    if problem.style == "stdin":
        expected, got = problem.expected[index], str(record.get("stdout", ""))
        same = lcb_outputs_match if problem.compare == "lcb" else outputs_match
        ok = not record.get("stdout_truncated") and same(got, expected)
        return ("pass" if ok else "wrong_answer"), _shown(expected), _shown(got)
    if problem.style == "call":
        expected = problem.expected[index]
        try:
            got = json.loads(record.get("value", ""))
        except (json.JSONDecodeError, TypeError):
            return "runtime_error", _shown(expected), _shown(str(record.get("value")))
        equal = lcb_values_match if problem.compare == "lcb" else values_match
        return ("pass" if equal(got, expected) else "wrong_answer"), _shown(expected), _shown(got)
    return "pass", None, None


def _verify_pair(args: tuple[CodeVerifier, Mapping[str, Any], str]) -> VerifyResult:
    verifier, record, completion = args
    return verifier.verify(completion, record)


def verify_many(
    records: Sequence[Mapping[str, Any]],
    completions: Sequence[str],
    workers: int = 2,
    mode: str | None = None,
) -> list[VerifyResult]:
    """Verify completions[i] against records[i], ``workers`` sandbox jobs at a time."""
    if len(records) != len(completions):
        raise CascadeError(f"{len(records)} records but {len(completions)} completions", field="completions")
    verifier = CodeVerifier(mode or sandbox_mode())
    jobs = [(verifier, record, completion) for record, completion in zip(records, completions)]
    if workers <= 1 or len(jobs) <= 1:
        return [_verify_pair(job) for job in jobs]
    # Threads suffice: each job's time is spent in its sandbox process, not under the GIL.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_verify_pair, jobs))

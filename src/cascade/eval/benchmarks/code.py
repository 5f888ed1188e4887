"""Code benchmarks: LiveCodeBench (release files + date windows), HumanEval and MBPP."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from cascade.data.adapters import decode_lcb_private_tests
from cascade.errors import CascadeError
from cascade.eval.benchmarks.base import read_jsonl, require, user
from cascade.verifiers.lcb_official import LCB_IMPORT_BLOCK, LCB_TIME_LIMIT

STDIN_INSTRUCTION = ("Read the input from standard input, solve the problem, and print the answer to "
                     "standard output. Put your complete Python program in one ```python block.")
STARTER_INSTRUCTION = "Complete the following starter code and put the whole solution in one ```python block:"

# The windows the model card reports (paper arXiv 2512.13607 App. B): v5 = problems dated
# 2024-08-01..2025-02-01 (279), v6 = 2024-08-01..2025-05-01 (454), reported as the weighted
# union (v5 x 279 + Feb-May 2025 part x 175) / 454, which is the plain mean over the 454.
# A window includes its start and excludes its end, so the two parts do not overlap.
LCB_WINDOWS = {
    "lcb_v5": (datetime(2024, 8, 1), datetime(2025, 2, 1)),
    "lcb_v6": (datetime(2024, 8, 1), datetime(2025, 5, 1)),
}
LCB_PARTS = (("v5", datetime(2024, 8, 1), datetime(2025, 2, 1)),
             ("2502_2505", datetime(2025, 2, 1), datetime(2025, 5, 1)))
LCB_WINDOW_SIZES = {"lcb_v5": 279, "lcb_v6": 454}


def _lcb_tests(r: dict[str, Any], path: Path, n: int) -> tuple[list[dict[str, Any]], bool]:
    """Public + private tests of one row (the official runner uses both) and whether the
    private ones were there."""
    try:
        tests = json.loads(require(r, "public_test_cases", path, n))
    except json.JSONDecodeError as exc:
        raise CascadeError(f"not valid JSON: {exc.msg}", file=str(path), line=n, field="public_test_cases") from None
    n_public = len(tests) if isinstance(tests, list) else 0
    private = r.get("private_test_cases")
    has_private = private not in (None, "", "[]")
    if has_private:
        try:
            # JSON text, or base64(zlib(pickle(JSON text))) in the release files; the pickle is
            # parsed, never run.
            tests = list(tests) + decode_lcb_private_tests(private)
        except CascadeError as exc:
            raise CascadeError(exc.message, file=str(path), line=n, field="private_test_cases") from None
    if not isinstance(tests, list):
        raise CascadeError("expected a JSON list of tests", file=str(path), line=n, field="public_test_cases")
    for i, t in enumerate(tests):
        if not isinstance(t, dict) or not isinstance(t.get("input"), str) or not isinstance(t.get("output"), str):
            where = "public_test_cases" if i < n_public else "private_test_cases"
            raise CascadeError(f"test {i} needs string 'input' and 'output'", file=str(path), line=n, field=where)
    return tests, has_private


def load_livecodebench(path: Path, *, window: str | None = None, compare: str = "lcb") -> list[dict[str, Any]]:
    """code_generation_lite layout: question_content, starter_code, public_test_cases (a JSON
    string of {input, output, testtype}), private_test_cases (JSON, or compressed in the
    release files), metadata (a JSON string with func_name), contest_date.

    Ground truths follow LiveCodeBench's runner (``cascade.verifiers.lcb_official``): its
    import block before the code, its output comparison (``compare="lcb"``; ``"tolerant"``
    gives the 1e-6 comparison used for RL rewards) and its 6 s per test. ``meta.tests`` says
    whether the row had private tests (``"public+private"``) or not (``"public_only"``), and
    ``meta.lcb_part`` which part of the v6 union a problem is in."""
    start, end = LCB_WINDOWS[window] if window else (datetime.min, datetime.max)
    out = []
    for n, r in read_jsonl(path):
        try:
            when = datetime.fromisoformat(str(require(r, "contest_date", path, n)))
        except ValueError:
            raise CascadeError("not an ISO date (YYYY-MM-DD...)", file=str(path), line=n, field="contest_date") from None
        if not start <= when < end:
            continue
        tests, has_private = _lcb_tests(r, path, n)
        try:
            meta = json.loads(r.get("metadata") or "{}")
        except json.JSONDecodeError as exc:
            raise CascadeError(f"not valid JSON: {exc.msg}", file=str(path), line=n, field="metadata") from None
        starter = r.get("starter_code") or ""
        # The runner's own bound for a whole problem: (timeout + 1) s per test + 5 s.
        official = {"prelude": LCB_IMPORT_BLOCK, "time_limit": LCB_TIME_LIMIT, "compare": compare,
                    "max_problem_seconds": (LCB_TIME_LIMIT + 1) * len(tests) + 5}
        # The runner grades a problem as functional when its metadata names a function.
        if meta.get("func_name") or (tests and tests[0].get("testtype") == "functional"):
            if not meta.get("func_name"):
                raise CascadeError("functional tests need metadata.func_name", file=str(path), line=n, field="metadata")
            gt = {"style": "call", "fn_name": meta["func_name"],
                  "tests": [{"input": t["input"], "output": t["output"]} for t in tests], **official}
            prompt = f"{r['question_content']}\n\n{STARTER_INSTRUCTION}\n```python\n{starter}\n```"
        else:
            gt = {"style": "stdin", "tests": [{"input": t["input"], "output": t["output"]} for t in tests], **official}
            prompt = f"{r['question_content']}\n\n{STDIN_INSTRUCTION}"
        part = next((name for name, lo, hi in LCB_PARTS if lo <= when < hi), None)
        out.append({"id": str(r.get("question_id") or f"lcb-{n}"), "messages": user(prompt), "verifier": "code",
                    "ground_truth": gt,
                    "meta": {"platform": r.get("platform"), "difficulty": r.get("difficulty"),
                             "contest_date": when.isoformat(), "lcb_part": part,
                             "tests": "public+private" if has_private else "public_only"}})
    return out


def load_humaneval(path: Path) -> list[dict[str, Any]]:
    """openai/human-eval layout (.jsonl or .jsonl.gz): task_id, prompt, entry_point, test."""
    out = []
    for n, r in read_jsonl(path):
        prompt = ("Complete the following Python function. Return the whole function in one ```python block.\n"
                  f"```python\n{require(r, 'prompt', path, n)}```")
        out.append({"id": require(r, "task_id", path, n), "messages": user(prompt), "verifier": "code",
                    "ground_truth": {"style": "assert", "test": require(r, "test", path, n),
                                     "entry_point": require(r, "entry_point", path, n)},
                    "meta": {"canonical_solution": r.get("canonical_solution")}})
    return out


def load_mbpp(path: Path) -> list[dict[str, Any]]:
    """google-research/mbpp layout: task_id, text, test_list, test_setup_code. The test split
    is task ids 11-510, as the MBPP README defines."""
    out = []
    for n, r in read_jsonl(path):
        task_id = require(r, "task_id", path, n, int)
        if not 11 <= task_id <= 510:
            continue
        tests = require(r, "test_list", path, n, list)
        if not tests:
            raise CascadeError("needs at least one test", file=str(path), line=n, field="test_list")
        prompt = f"{require(r, 'text', path, n)} Your code should pass this test:\n{tests[0]}\n" \
                 "Put the function in one ```python block."
        out.append({"id": f"mbpp-{task_id}", "messages": user(prompt), "verifier": "code",
                    "ground_truth": {"style": "assert", "test_list": tests,
                                     "test_setup_code": r.get("test_setup_code", "")},
                    "meta": {"reference": r.get("code")}})
    return out

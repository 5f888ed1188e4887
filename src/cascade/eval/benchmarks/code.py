"""Code benchmarks: LiveCodeBench (release files + date windows), HumanEval and MBPP."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from cascade.errors import CascadeError
from cascade.eval.benchmarks.base import read_jsonl, require, user

STDIN_INSTRUCTION = ("Read the input from standard input, solve the problem, and print the answer to "
                     "standard output. Put your complete Python program in one ```python block.")
STARTER_INSTRUCTION = "Complete the following starter code and put the whole solution in one ```python block:"

# The model card's evaluation scripts: v5 = 2024-08-01..2025-02-01 (279 problems); v6 = 2024-08-01..2025-05-01
# (454 problems), reported as the weighted union of the v5 part and the Feb-May 2025 part.
LCB_WINDOWS = {
    "lcb_v5": (date(2024, 8, 1), date(2025, 2, 1)),
    "lcb_v6": (date(2024, 8, 1), date(2025, 5, 1)),
}


def load_livecodebench(path: Path, *, window: str | None = None) -> list[dict[str, Any]]:
    """code_generation_lite layout: question_content, starter_code, public_test_cases (a JSON
    string of {input, output, testtype}), metadata (a JSON string with func_name), contest_date."""
    start, end = LCB_WINDOWS[window] if window else (date.min, date.max)
    out = []
    for n, r in read_jsonl(path):
        try:
            when = date.fromisoformat(str(require(r, "contest_date", path, n))[:10])
        except ValueError:
            raise CascadeError("not an ISO date (YYYY-MM-DD...)", file=str(path), line=n, field="contest_date") from None
        if not start <= when < end:
            continue
        try:
            tests = json.loads(require(r, "public_test_cases", path, n))
            meta = json.loads(r.get("metadata") or "{}")
        except json.JSONDecodeError as exc:
            raise CascadeError(f"not valid JSON: {exc.msg}", file=str(path), line=n, field="public_test_cases") from None
        starter = r.get("starter_code") or ""
        functional = bool(tests) and tests[0].get("testtype") == "functional"
        if functional:
            if not meta.get("func_name"):
                raise CascadeError("functional tests need metadata.func_name", file=str(path), line=n, field="metadata")
            gt = {"style": "call", "fn_name": meta["func_name"],
                  "tests": [{"input": t["input"], "output": t["output"]} for t in tests]}
            prompt = f"{r['question_content']}\n\n{STARTER_INSTRUCTION}\n```python\n{starter}\n```"
        else:
            gt = {"style": "stdin", "tests": [{"input": t["input"], "output": t["output"]} for t in tests]}
            prompt = f"{r['question_content']}\n\n{STDIN_INSTRUCTION}"
        out.append({"id": str(r.get("question_id") or f"lcb-{n}"), "messages": user(prompt), "verifier": "code",
                    "ground_truth": gt,
                    "meta": {"platform": r.get("platform"), "difficulty": r.get("difficulty"),
                             "contest_date": str(when)}})
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

"""BFCL v3, the AST-checked categories (single-turn). Multi-turn categories need gorilla's
executable API simulators, which are not redistributed, so they are not offered here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cascade.errors import CascadeError
from cascade.eval.benchmarks.base import read_jsonl, require

AST_CATEGORIES = (
    "simple", "multiple", "parallel", "parallel_multiple", "java", "javascript",
    "live_simple", "live_multiple", "live_parallel", "live_parallel_multiple",
    "irrelevance", "live_irrelevance",
)
# Scored by abstention: the right answer is no call at all (an empty possible-answer list).
# live_relevance (right = any call) is left out: the tool-call verifier has no "any call" rule.
NO_CALL_CATEGORIES = ("irrelevance", "live_irrelevance")


def _tools(functions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "function", "function": f} for f in functions]


def load_bfcl(directory: Path, *, categories: tuple[str, ...] = AST_CATEGORIES) -> list[dict[str, Any]]:
    """gorilla bfcl_eval/data layout: BFCL_v3_<cat>.json (JSON Lines) + possible_answer/."""
    out = []
    for cat in categories:
        qfile = directory / f"BFCL_v3_{cat}.json"
        if not qfile.exists():
            raise CascadeError(f"BFCL category file missing: {qfile.name}", file=str(directory))
        answers: dict[str, Any] = {}
        if cat not in NO_CALL_CATEGORIES:
            afile = directory / "possible_answer" / qfile.name
            answers = {require(r, "id", afile, n): require(r, "ground_truth", afile, n, list) for n, r in read_jsonl(afile)}
        for n, r in read_jsonl(qfile):
            rid = require(r, "id", qfile, n)
            turns = require(r, "question", qfile, n, list)
            functions = require(r, "function", qfile, n, list)
            if not turns or not isinstance(turns[0], list):
                raise CascadeError("expected a list of turns, each a list of messages", file=str(qfile), line=n,
                                   field="question")
            if cat not in NO_CALL_CATEGORIES and rid not in answers:
                raise CascadeError(f"no possible answer for {rid}", file=str(qfile), line=n, field="id")
            # The tool-call verifier's format: BFCL's possible-answer list ([] = expect no call),
            # with the function docs in meta for type checks.
            out.append({"id": rid, "messages": turns[0], "verifier": "tool_call", "ground_truth": answers.get(rid, []),
                        "meta": {"category": cat, "functions": functions, "tools": _tools(functions)}})
    return out

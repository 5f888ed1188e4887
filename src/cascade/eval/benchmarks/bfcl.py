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
    "irrelevance", "live_irrelevance", "live_relevance",
)
# Scored by abstention (no call) or by "some call" rather than against possible answers.
NO_ANSWER_CATEGORIES = {"irrelevance": "no_call", "live_irrelevance": "no_call", "live_relevance": "any_call"}


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
        if cat not in NO_ANSWER_CATEGORIES:
            afile = directory / "possible_answer" / qfile.name
            answers = {r["id"]: r["ground_truth"] for _, r in read_jsonl(afile)}
        for n, r in read_jsonl(qfile):
            rid = require(r, "id", qfile, n)
            turns = require(r, "question", qfile, n)
            functions = require(r, "function", qfile, n)
            if cat in NO_ANSWER_CATEGORIES:
                gt: dict[str, Any] = {"expect": NO_ANSWER_CATEGORIES[cat], "functions": functions}
            else:
                if rid not in answers:
                    raise CascadeError(f"no possible answer for {rid}", file=str(qfile), line=n, field="id")
                gt = {"expect": "match", "possible_answer": answers[rid], "functions": functions}
            out.append({"id": rid, "messages": turns[0], "verifier": "tool_call", "ground_truth": gt,
                        "meta": {"category": cat, "tools": _tools(functions)}})
    return out

"""AIME 2024/2025, MATH-500 and GSM8K: answer in \\boxed{}, scored by the math verifier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cascade.eval.benchmarks.base import read_jsonl, require, user

# The AceReason-style instruction (the evaluation scripts the model card links do not
# ship the official AIME prompt text; third-party reproductions use this one).
INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


def _record(rid: str, problem: str, answer: str, meta: dict[str, Any]) -> dict[str, Any]:
    return {"id": rid, "messages": user(f"{problem}\n{INSTRUCTION}"), "verifier": "math",
            "ground_truth": answer, "meta": meta}


def load_aime(path: Path) -> list[dict[str, Any]]:
    """NeMo-Skills layout: id, problem, expected_answer."""
    return [
        _record(str(require(r, "id", path, n)), require(r, "problem", path, n),
                str(require(r, "expected_answer", path, n)), {})
        for n, r in read_jsonl(path)
    ]


def load_math500(path: Path) -> list[dict[str, Any]]:
    """HuggingFaceH4/MATH-500 layout: problem, answer, subject, level, unique_id."""
    out = []
    for n, r in read_jsonl(path):
        rid = r.get("unique_id") or f"math500-{n}"
        out.append(_record(rid, require(r, "problem", path, n), require(r, "answer", path, n),
                           {"subject": r.get("subject"), "level": r.get("level")}))
    return out


def load_gsm8k(path: Path) -> list[dict[str, Any]]:
    """openai/grade-school-math layout: question, answer ending in '#### <number>'."""
    out = []
    for n, r in read_jsonl(path):
        answer = require(r, "answer", path, n, str)
        if "####" not in answer:
            from cascade.errors import CascadeError

            raise CascadeError("answer has no '#### <final answer>' line", file=str(path), line=n, field="answer")
        final = answer.rsplit("####", 1)[1].strip().replace(",", "")
        out.append(_record(f"gsm8k-{n - 1}", require(r, "question", path, n), final, {}))
    return out

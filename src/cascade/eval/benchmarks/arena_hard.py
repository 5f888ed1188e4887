"""ArenaHard v0.1: pairwise judgement of each answer against the baseline model's answer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cascade.errors import CascadeError
from cascade.eval.benchmarks.base import read_jsonl, require, user

BASELINE_FILE = "model_answer/gpt-4-0314.jsonl"


def load_arena_hard(directory: Path) -> list[dict[str, Any]]:
    """lmarena/arena-hard-auto data/arena-hard-v0.1 layout: question.jsonl + model_answer/."""
    qfile, bfile = directory / "question.jsonl", directory / BASELINE_FILE
    baseline: dict[str, str] = {}
    if bfile.exists():
        for n, r in read_jsonl(bfile):
            messages = require(r, "messages", bfile, n, list)
            if not messages or not isinstance(messages[-1], dict) or "content" not in messages[-1]:
                raise CascadeError("the last message needs a 'content'", file=str(bfile), line=n, field="messages")
            content = messages[-1]["content"]
            # The stored assistant content is {"answer": ...}; older dumps keep plain text.
            baseline[require(r, "uid", bfile, n)] = content.get("answer", "") if isinstance(content, dict) else str(content)
    out = []
    for n, r in read_jsonl(qfile):
        uid = require(r, "uid", qfile, n)
        prompt = require(r, "prompt", qfile, n)
        if baseline and uid not in baseline:
            raise CascadeError(f"no baseline answer for {uid}", file=str(bfile))
        out.append({"id": uid, "messages": user(prompt), "verifier": "arena_judge",
                    "ground_truth": {"baseline": baseline.get(uid, ""), "baseline_model": "gpt-4-0314"},
                    "meta": {"category": r.get("cluster")}})
    return out


def baseline_json(text: str) -> str:
    return json.dumps({"answer": text})

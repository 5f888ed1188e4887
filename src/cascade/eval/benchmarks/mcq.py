"""Multiple choice: GPQA-Diamond, MMLU, MMLU-Pro. The letter is read by the mcq verifier."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from cascade.errors import CascadeError
from cascade.eval.benchmarks.base import read_jsonl, require, user

LETTERS = "ABCDEFGHIJKLMNOP"
GPQA_COLUMNS = ("Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")
INSTRUCTION = "Answer with the letter of the correct option in \\boxed{}, for example \\boxed{A}."


def _record(rid: str, question: str, options: list[str], answer_index: int, meta: dict[str, Any]) -> dict[str, Any]:
    listed = "\n".join(f"{LETTERS[i]}) {opt}" for i, opt in enumerate(options))
    return {"id": rid, "messages": user(f"{question}\n\n{listed}\n\n{INSTRUCTION}"), "verifier": "mcq",
            "ground_truth": LETTERS[answer_index], "meta": {"options": options, **meta}}


def load_mmlu_pro(path: Path) -> list[dict[str, Any]]:
    """TIGER-Lab/MMLU-Pro layout: question_id, question, options (up to 10), answer, category."""
    out = []
    for n, r in read_jsonl(path):
        options = require(r, "options", path, n, list)
        answer = require(r, "answer", path, n, str)
        if len(answer) != 1 or answer not in LETTERS[: len(options)]:
            raise CascadeError(f"answer {answer!r} is not one of the {len(options)} options",
                               file=str(path), line=n, field="answer")
        out.append(_record(f"mmlu_pro-{require(r, 'question_id', path, n)}", require(r, "question", path, n),
                           options, LETTERS.index(answer), {"category": r.get("category")}))
    return out


def load_mmlu(path: Path) -> list[dict[str, Any]]:
    """cais/mmlu layout (JSONL): question, subject, choices (4), answer (0-3)."""
    out = []
    for n, r in read_jsonl(path):
        choices, answer = require(r, "choices", path, n, list), require(r, "answer", path, n, int)
        if not 0 <= answer < len(choices):
            raise CascadeError("answer must be the index of a choice", file=str(path), line=n, field="answer")
        out.append(_record(f"mmlu-{n - 1}", require(r, "question", path, n), choices, answer,
                           {"category": r.get("subject")}))
    return out


def load_gpqa(path: Path, *, seed: int = 0) -> list[dict[str, Any]]:
    """Idavidrein/gpqa CSV layout: Question, Correct Answer, Incorrect Answer 1-3.

    The file lists the correct answer first, so choices are shuffled deterministically per
    record and seed (the mcq verifier's shuffle), as every GPQA harness does.
    """
    from cascade.verifiers.mcq import shuffle_choices

    out = []
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CascadeError("not valid UTF-8", file=str(path), line=data.count(b"\n", 0, exc.start) + 1) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in GPQA_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise CascadeError("missing column (is this the GPQA CSV?)", file=str(path), line=1, field=missing[0])
    for n, row in enumerate(reader, start=2):
        # A short row leaves its last columns None (csv's restval).
        absent = next((c for c in GPQA_COLUMNS if row.get(c) is None), None)
        if absent:
            raise CascadeError("missing column in this row", file=str(path), line=n, field=absent)
        options = [row["Correct Answer"].strip()] + [row[f"Incorrect Answer {i}"].strip() for i in (1, 2, 3)]
        rid = row.get("Record ID") or f"gpqa-{n - 2}"
        shuffled, correct = shuffle_choices(options, 0, record_id=rid, seed=seed)
        out.append(_record(rid, row["Question"].strip(), shuffled, correct, {"category": row.get("High-level domain")}))
    return out

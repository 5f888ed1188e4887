"""The toy world's held-out eval sets (already in record form)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cascade.data.io import RowPlace, validate_row
from cascade.data.records import PromptRecord
from cascade.eval.benchmarks.base import read_jsonl


def load_toy(path: Path) -> list[dict[str, Any]]:
    """Prompt records as written by the toy world; each row is checked against the record
    contract, so a file in some benchmark's own format fails with its line and field."""
    rows = []
    for lineno, row in read_jsonl(path):
        validate_row(PromptRecord, row, RowPlace(str(path), line=lineno))
        rows.append(row)
    return rows

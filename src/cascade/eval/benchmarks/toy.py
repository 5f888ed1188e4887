"""The toy world's held-out eval sets (already in record form)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cascade.eval.benchmarks.base import read_jsonl


def load_toy(path: Path) -> list[dict[str, Any]]:
    return [row for _, row in read_jsonl(path)]

"""The per-(prompt, sample) results file: append-only JSONL that survives a kill.

Each batch of lines is appended and fsynced before the next batch starts. A kill can only
cut the last line short; opening the file again drops that fragment, so a resumed run
never duplicates or loses a finished sample.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable


def load_and_repair(path: Path) -> list[dict[str, Any]]:
    """Read complete lines; truncate the file after the last complete one."""
    if not path.exists():
        return []
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1  # 0 when no complete line
    if end != len(data):
        with open(path, "r+b") as fh:
            fh.truncate(end)
            fh.flush()
            os.fsync(fh.fileno())
    rows = []
    for line in data[:end].split(b"\n"):
        if line.strip():
            rows.append(json.loads(line))
    return rows


def append_rows(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())


def write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, ensure_ascii=False)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)

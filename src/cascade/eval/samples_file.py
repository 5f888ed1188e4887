"""The per-(prompt, sample) results file: append-only JSONL that survives a kill.

Each batch of lines is appended and fsynced before the next batch starts. A kill can only
cut the last line short; opening the file again drops that fragment, so a resumed run
never duplicates or loses a finished sample. A run holds an exclusive lock on the file
(released by the kernel when the process dies, even by SIGKILL), so two runs cannot
append the same samples at once.
"""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from cascade.errors import CascadeError


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold the samples file for the duration of a run; fail at once if another run holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CascadeError("another `cascade eval` is writing this file; wait for it or use another --out",
                               file=str(path)) from None
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


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
    for lineno, line in enumerate(data[:end].split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            # A complete line that does not parse was not written by a kill; say where it is.
            raise CascadeError(f"corrupt sample line ({exc}); delete the line or the file to regenerate it",
                               file=str(path), line=lineno) from None
        if not isinstance(row, dict) or "id" not in row or "seed" not in row:
            raise CascadeError("a sample line must be an object with 'id' and 'seed'", file=str(path), line=lineno)
        rows.append(row)
    return rows


def append_rows(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())

"""Crash-safe training checkpoints: ``run_dir/checkpoints/step_00000042``.

A checkpoint is built in a ``.tmp-*`` directory, fsynced, marked ``COMPLETE`` last and only
then renamed into place, so a crash at any moment leaves either the previous checkpoints
or a new complete one; readers skip anything else. Torch-free: the engine does the writing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Protocol

from cascade.errors import CascadeError

CHECKPOINTS = "checkpoints"
COMPLETE = "COMPLETE"
LATEST = "latest"
TRAINER_STATE = "trainer_state.json"
_STEP_DIR = re.compile(r"^step_(\d{8,})$")


class Saveable(Protocol):
    """What a checkpoint can be written from (an engine)."""
    def save(self, path: str, **kwargs: Any) -> None:
        """Write the engine's state into ``path``."""


def checkpoint_name(step: int) -> str:
    """The folder name of step ``step``'s checkpoint (zero-padded, so names sort by step)."""
    return f"step_{step:08d}"


def _fsync_tree(root: Path) -> None:
    """Flush every file, then every directory, so the rename publishes durable bytes."""
    for folder, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(folder))


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _publish(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` onto ``target``; an existing target (a step rewritten after a resume)
    is first moved aside under a temp name, which readers ignore, then deleted."""
    if target.exists():
        aside = Path(tempfile.mkdtemp(prefix=".tmp-old-", dir=target.parent))
        os.replace(target, aside / target.name)
        os.replace(tmp, target)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(tmp, target)
    _fsync_dir(target.parent)


def _save_atomically(engine: Saveable, target: Path, extra: dict[str, str], **save_kwargs: Any) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
    try:
        engine.save(str(tmp), **save_kwargs)
        for name, text in extra.items():
            _write_text(tmp / name, text)
        _write_text(tmp / COMPLETE, "")
        _fsync_tree(tmp)
        _publish(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def write_checkpoint(run_dir: str | Path, step: int, engine: Saveable, trainer_state: dict[str, Any]) -> Path:
    """Write ``run_dir/checkpoints/step_{step:08d}`` atomically (engine state, the JSON
    ``trainer_state`` and a ``COMPLETE`` marker), then point ``checkpoints/latest`` at it."""
    folder = Path(run_dir) / CHECKPOINTS
    state_text = json.dumps({"step": step, **trainer_state}, indent=2, sort_keys=True)
    target = _save_atomically(engine, folder / checkpoint_name(step), {TRAINER_STATE: state_text})
    pointer_tmp = folder / f".tmp-{LATEST}"
    _write_text(pointer_tmp, target.name + "\n")
    os.replace(pointer_tmp, folder / LATEST)
    _fsync_dir(folder)
    return target


def write_final(final_dir: str | Path, engine: Saveable) -> Path:
    """Write the stage output: a plain Hugging Face checkpoint (no optimizer or RNG state)
    that the next stage loads, published atomically like a checkpoint."""
    return _save_atomically(engine, Path(final_dir), {}, training_state=False)


def complete_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of every finished checkpoint, oldest first; temp and unmarked
    directories are never returned."""
    folder = Path(run_dir) / CHECKPOINTS
    if not folder.is_dir():
        return []
    found = []
    for child in folder.iterdir():
        match = _STEP_DIR.match(child.name)
        if match and child.is_dir() and (child / COMPLETE).is_file():
            found.append((int(match.group(1)), child))
    return sorted(found)


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint, or None.

    Decided by scanning rather than trusting ``latest``: a crash between publishing a
    checkpoint and updating the pointer leaves the pointer one checkpoint behind.
    """
    found = complete_checkpoints(run_dir)
    return found[-1][1] if found else None


def read_trainer_state(path: str | Path) -> dict[str, Any]:
    """The ``trainer_state.json`` of a checkpoint directory."""
    state_file = Path(path) / TRAINER_STATE
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CascadeError("checkpoint has no trainer state", file=str(state_file)) from None
    except json.JSONDecodeError as exc:
        raise CascadeError(f"trainer state is not valid JSON: {exc.msg}", file=str(state_file), line=exc.lineno) from None
    if not isinstance(state, dict):
        raise CascadeError("trainer state must be a JSON object", file=str(state_file))
    return state


def prune_checkpoints(run_dir: str | Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` complete checkpoints, plus leftovers of crashed
    writes (temp dirs, unmarked step dirs). Call it only while no write is in flight.
    Returns what was removed."""
    if keep < 1:
        raise CascadeError(f"must keep at least 1 checkpoint (got {keep})", field="keep_checkpoints")
    folder = Path(run_dir) / CHECKPOINTS
    if not folder.is_dir():
        return []
    complete = complete_checkpoints(run_dir)
    kept = {path for _, path in complete[-keep:]}
    removed = []
    for child in folder.iterdir():
        stale_tmp = child.name.startswith(".tmp-")
        unmarked = bool(_STEP_DIR.match(child.name)) and not (child / COMPLETE).is_file()
        old = child in {path for _, path in complete} and child not in kept
        if stale_tmp or unmarked or old:
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
            removed.append(child)
    return removed

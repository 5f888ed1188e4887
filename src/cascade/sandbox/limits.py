"""What a sandboxed job may use, and what came back from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["ok", "timeout", "memory", "runtime_error", "killed", "output_limit"]


@dataclass(frozen=True)
class Limits:
    """Resource limits for one sandboxed job.

    cpu_seconds:      CPU time per process (RLIMIT_CPU; SIGXCPU then SIGKILL)
    wall_seconds:     wall time for the whole job; the whole process tree is killed after it
    memory_mb:        address space per process (RLIMIT_AS), and resident memory of all
                      the job's processes together (sampled; see ``cascade.sandbox.watch``)
    max_processes:    processes and threads the job may run at once (RLIMIT_NPROC on a
                      per-job uid; see ``cascade.sandbox.modes``)
    max_file_mb:      largest file the job may write (RLIMIT_FSIZE)
    max_disk_mb:      disk space of the whole scratch directory (sampled); beyond it the
                      job is killed and its status is ``output_limit``
    max_output_bytes: cap on captured stdout and on captured stderr; beyond it the job is
                      killed and its status is ``output_limit``
    max_open_files:   file descriptors per process (RLIMIT_NOFILE)
    """

    cpu_seconds: float = 10.0
    wall_seconds: float = 20.0
    memory_mb: int = 1024
    max_processes: int = 32
    max_file_mb: int = 16
    max_disk_mb: int = 64
    max_output_bytes: int = 8 * 1024 * 1024
    max_open_files: int = 256


@dataclass
class SandboxResult:
    """The outcome of one job.

    status: ``ok`` (exit code 0), ``timeout`` (wall or CPU limit), ``memory`` (the program
    died of MemoryError), ``runtime_error`` (non-zero exit), ``killed`` (ended by a signal,
    e.g. a segfault) or ``output_limit`` (stdout, stderr or the scratch directory went over
    its cap). ``memory`` is also the status of a job whose processes together went over
    ``memory_mb``.
    exit_code is the program's exit status, or ``-signal`` when a signal ended it, or None
    when the sandbox killed it. stdout/stderr are decoded as UTF-8 (bad bytes replaced) and
    hold at most ``Limits.max_output_bytes`` each. mode is ``"bwrap"`` or ``"rlimit"``.
    """

    status: Status
    exit_code: int | None
    stdout: str
    stderr: str
    wall_time: float
    mode: str

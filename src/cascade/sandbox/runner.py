"""Run untrusted Python in a sandbox: one job, one fresh scratch directory, one result.

The caller's process never runs the job's code: the job is a separate process tree (under
bwrap, or a resource-limited child; see ``cascade.sandbox.modes``) that is killed as a
whole when it ends, times out or floods its output, and whose scratch directory is deleted
afterwards. Every outcome, however hostile, comes back as a ``SandboxResult``.
"""

from __future__ import annotations

import math
import os
import resource
import selectors
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path, PurePosixPath
from typing import Callable, Sequence

from cascade.errors import CascadeError
from cascade.sandbox.bwrap import bwrap_argv, sandbox_env
from cascade.sandbox.limits import Limits, SandboxResult, Status
from cascade.sandbox.host import MODES, SandboxUnavailable, job_uid, python_prefix, sandbox_python
from cascade.sandbox.seccomp import job_filter
from cascade.sandbox.watch import JobWatch

MAIN_FILE = "main.py"
_PYTHON_FLAGS = ["-E", "-s", "-S", "-B"]  # no PYTHON* env, no site-packages, no .pyc writes
_GUARD_SOURCE = (Path(__file__).with_name("guard.py")).read_text(encoding="utf-8")
_CONFINE_SOURCE = (Path(__file__).with_name("confine.py")).read_text(encoding="utf-8")
# What a landlock-mode job may read besides the interpreter's prefix, and use as devices.
_READ_PATHS = ("/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin", "/etc/ld.so.cache")
_DEVICES = ("/dev/null", "/dev/zero", "/dev/random", "/dev/urandom")
# bwrap adds one process of its own (the job is the namespace's pid 1; see bwrap.py).
_BWRAP_PROCESSES = 1
# After the job exits, how long to keep reading output still sitting in the pipes.
_DRAIN_SECONDS = 1.0


def run_job(
    code: str,
    *,
    mode: str,
    stdin: str = "",
    files: dict[str, str | bytes] | None = None,
    limits: Limits | None = None,
    argv: Sequence[str] = (),
) -> SandboxResult:
    """Run ``code`` as ``main.py`` in a fresh sandbox of the given ``mode`` and return what
    happened. ``cascade.sandbox.run_python`` is the entry point, which also chooses the mode.

    files:  extra files written into the scratch directory first (relative path -> text
            or bytes), e.g. test data or modules the code imports.
    argv:   the program's ``sys.argv[1:]``.
    """
    limits = limits or Limits()
    if mode not in MODES:
        raise CascadeError(f"must be one of {', '.join(MODES)}, got '{mode}'", field="mode")
    uid = job_uid()
    scratch = Path(tempfile.mkdtemp(prefix="cascade-sbx-"))
    try:
        if uid is not None and not all(p.stat().st_mode & stat.S_IXOTH for p in scratch.parents):
            raise SandboxUnavailable(
                f"the sandbox's unprivileged uid cannot reach its scratch directory under "
                f"{scratch.parent}; point TMPDIR at a world-traversable directory such as /tmp",
                field="TMPDIR",
            )
        _populate(scratch, code, files or {}, uid)
        with tempfile.TemporaryFile() as stdin_file:
            stdin_file.write(stdin.encode("utf-8"))
            stdin_file.seek(0)
            return _execute(scratch, stdin_file.fileno(), limits, list(argv), mode, uid)
    finally:
        _remove_tree(scratch)


def _populate(scratch: Path, code: str, files: dict[str, str | bytes], uid: int | None) -> None:
    (scratch / MAIN_FILE).write_text(code, encoding="utf-8")
    for name, content in files.items():
        rel = PurePosixPath(name)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts or str(rel) == MAIN_FILE:
            raise CascadeError(
                f"sandbox file names must be relative paths inside scratch (not '{MAIN_FILE}'), got '{name}'",
                field="files",
            )
        target = scratch / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
    if uid is not None:
        for path in [scratch, *scratch.rglob("*")]:
            os.chown(path, uid, uid)


def _execute(
    scratch: Path, stdin_fd: int, limits: Limits, argv: list[str], mode: str, uid: int | None
) -> SandboxResult:
    python = sandbox_python()
    if mode == "bwrap":
        command = bwrap_argv(scratch, python, [*_PYTHON_FLAGS, MAIN_FILE, *argv])
        env: dict[str, str] = {"PATH": "/usr/bin:/bin"}
        extra_processes = _BWRAP_PROCESSES
    elif mode == "landlock":
        command = [str(python), *_PYTHON_FLAGS, "-c", _CONFINE_SOURCE, _confine_config(scratch, python), MAIN_FILE, *argv]
        env = {**sandbox_env(), "HOME": str(scratch), "TMPDIR": str(scratch)}
        extra_processes = 0
    else:
        command = [str(python), *_PYTHON_FLAGS, "-c", _GUARD_SOURCE, str(scratch), MAIN_FILE, *argv]
        env = {**sandbox_env(), "HOME": str(scratch), "TMPDIR": str(scratch)}
        extra_processes = 0
    rlimits = _rlimits(limits, extra_processes, uid)
    launch: dict = {}
    if _TOOLS is not None:
        # util-linux does the uid switch and the limits right before exec, so Popen can use
        # vfork: forking a parent that has torch loaded costs tens of milliseconds.
        command = _launcher(uid, rlimits, die_with_parent=mode != "bwrap") + command
    else:
        launch["preexec_fn"] = _rlimit_setter(rlimits)
        if uid is not None:
            launch.update(user=uid, group=uid, extra_groups=[])
    start = time.monotonic()
    proc = subprocess.Popen(
        command,
        stdin=stdin_fd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=scratch,
        env=env,
        start_new_session=True,
        **launch,
    )
    ended = False
    watch = JobWatch(proc.pid, mode, uid, scratch, limits)
    try:
        stdout, stderr, why_killed, wall, ended = _collect(proc, limits, start, uid, mode, watch)
    finally:
        if not ended:  # after a job that ended by itself, _collect has already cleaned up
            _kill_tree(proc, uid, mode)
        proc.wait()
    return _result(proc.returncode, stdout, stderr, why_killed, wall, mode, limits)


def _confine_config(scratch: Path, python: Path) -> str:
    """The landlock launcher's configuration (see ``cascade.sandbox.confine``)."""
    program = job_filter()
    if program is None:  # modes.py only offers landlock where a filter exists
        raise CascadeError("no seccomp filter for this architecture", field="mode")
    lines = [f"scratch={scratch}", f"filter={program.hex()}"]
    lines += [f"read={path}" for path in (*_READ_PATHS, str(python_prefix(python)))]
    lines += [f"device={path}" for path in _DEVICES]
    return "\n".join(lines)


def _find_tools() -> dict[str, str] | None:
    found = {name: shutil.which(name, path="/usr/bin:/bin:/usr/sbin:/sbin") for name in ("setpriv", "prlimit", "kill")}
    return None if None in found.values() else {name: str(path) for name, path in found.items()}


_TOOLS = _find_tools()


def _rlimits(limits: Limits, extra_processes: int, uid: int | None) -> dict[int, tuple[int, int]]:
    nproc = limits.max_processes + extra_processes
    if uid is None:
        # RLIMIT_NPROC counts every process of the real uid, not just the job's.
        nproc += _tasks_of_uid(os.getuid())
    cpu = max(1, math.ceil(limits.cpu_seconds))
    memory = limits.memory_mb * 1024 * 1024
    file_size = limits.max_file_mb * 1024 * 1024
    wanted = {
        resource.RLIMIT_CPU: (cpu, cpu + 1),  # SIGXCPU at the soft limit, SIGKILL a second later
        resource.RLIMIT_AS: (memory, memory),
        resource.RLIMIT_NPROC: (nproc, nproc),
        resource.RLIMIT_FSIZE: (file_size, file_size),
        resource.RLIMIT_NOFILE: (limits.max_open_files, limits.max_open_files),
        resource.RLIMIT_CORE: (0, 0),
    }
    for which, (soft, hard) in wanted.items():
        _cur_soft, cur_hard = resource.getrlimit(which)
        if cur_hard != resource.RLIM_INFINITY:
            wanted[which] = (min(soft, cur_hard), min(hard, cur_hard))
    return wanted


_PRLIMIT_FLAGS = {
    resource.RLIMIT_CPU: "--cpu",
    resource.RLIMIT_AS: "--as",
    resource.RLIMIT_NPROC: "--nproc",
    resource.RLIMIT_FSIZE: "--fsize",
    resource.RLIMIT_NOFILE: "--nofile",
    resource.RLIMIT_CORE: "--core",
}


def _launcher(uid: int | None, rlimits: dict[int, tuple[int, int]], die_with_parent: bool) -> list[str]:
    assert _TOOLS is not None
    prefix = [_TOOLS["setpriv"]]
    if uid is not None:
        prefix += [f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    if die_with_parent:
        prefix += ["--pdeathsig=KILL"]  # bwrap has its own --die-with-parent
    prefix += ["--", _TOOLS["prlimit"]]
    prefix += [f"{_PRLIMIT_FLAGS[which]}={soft}:{hard}" for which, (soft, hard) in rlimits.items()]
    return prefix + ["--"]


def _rlimit_setter(rlimits: dict[int, tuple[int, int]]) -> Callable[[], None]:
    """Without util-linux: the forked child applies the precomputed limits itself."""
    pairs = list(rlimits.items())

    def apply() -> None:
        for which, value in pairs:
            resource.setrlimit(which, value)

    return apply


def _tasks_of_uid(uid: int) -> int:
    count = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            status = Path(entry.path, "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields.get("Uid", "-1").split()[0]) == uid:
            count += int(fields.get("Threads", "1").strip())
    return count


def _collect(
    proc: subprocess.Popen, limits: Limits, start: float, uid: int | None, mode: str, watch: JobWatch
) -> tuple[bytes, bytes, str | None, float, bool]:
    """Read stdout/stderr under the output cap until the job ends or a limit hits.

    Returns (stdout, stderr, why the sandbox killed it or None, wall time, whether the job
    ended by itself and its leftovers were already killed).
    """
    assert proc.stdout is not None and proc.stderr is not None
    buffers = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    open_pipes = set(buffers)
    deadline = start + limits.wall_seconds
    selector = selectors.DefaultSelector()
    for fd in buffers:
        selector.register(fd, selectors.EVENT_READ)
    exit_fd = _pidfd(proc.pid)  # readable when the job exits; None on old kernels (poll)
    if exit_fd is not None:
        selector.register(exit_fd, selectors.EVENT_READ)
    why_killed: str | None = None
    exited_at: float | None = None
    try:
        while True:
            now = time.monotonic()
            if exited_at is None and proc.poll() is not None:
                exited_at = now
                # The job is over: anything it left running (and holding our pipes) goes now.
                _kill_tree(proc, uid, mode)
                if exit_fd is not None:
                    selector.unregister(exit_fd)
            if exited_at is not None:
                if not open_pipes or now >= exited_at + _DRAIN_SECONDS:
                    break  # all read, or a leftover we could not kill still holds a pipe
                wait = exited_at + _DRAIN_SECONDS - now
            else:
                # Closed pipes do not end a job: only its exit or the deadline does.
                if now >= deadline:
                    why_killed = "timeout"
                    break
                if now >= watch.next_check:
                    why_killed = watch.check(now)
                    if why_killed:
                        break
                wait = min(deadline, watch.next_check) - now
                if exit_fd is None:
                    wait = min(wait, 0.02)
            for key, _events in selector.select(max(0.0, wait)):
                if key.fd == exit_fd:
                    continue  # the top of the loop notices the exit
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fd)
                    open_pipes.discard(key.fd)
                    continue
                buffers[key.fd] += chunk
                if len(buffers[key.fd]) > limits.max_output_bytes:
                    why_killed = "output_limit"
            if why_killed:
                break
    finally:
        selector.close()
        if exit_fd is not None:
            os.close(exit_fd)
    ended = exited_at is not None and why_killed is None
    wall = (exited_at if ended and exited_at is not None else time.monotonic()) - start
    out = bytes(buffers[proc.stdout.fileno()][: limits.max_output_bytes])
    err = bytes(buffers[proc.stderr.fileno()][: limits.max_output_bytes])
    return out, err, why_killed, wall, ended


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _kill_tree(proc: subprocess.Popen, uid: int | None, mode: str) -> None:
    """Kill everything the job started.

    bwrap: killing bwrap kills the pid namespace's init (the job, by --die-with-parent),
    and the kernel then kills every process in the namespace. rlimit and landlock: the
    process group, plus every process of the job's uid (which catches children that left
    the group with setsid); landlock without a per-job uid: every process of the job's
    session, which its seccomp filter does not let any of them leave.
    """
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if mode != "bwrap" and uid is not None:
        _kill_uid(uid)
    elif mode == "landlock":
        # The seccomp filter forbids setsid: every process of the job is in its session.
        for pid in JobWatch.session_members(proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _kill_uid(uid: int) -> None:
    """kill(-1) as the job's uid reaches every process it owns, setsid or not."""
    if _TOOLS is not None:
        subprocess.run(
            [_TOOLS["setpriv"], f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--", _TOOLS["kill"], "-9", "-1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        return
    pid = os.fork()
    if pid == 0:  # only plain system calls between fork and _exit
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def _remove_tree(path: Path) -> None:
    """Delete the job's scratch directory, whatever the job did to it.

    The job may have left directories without write or execute permission (they are made
    writable again), deleted the directory itself, or put a symlink in its place. Only
    the scratch directory and what is inside it are ever chmod-ed: never its parent
    (``/tmp``), never through a symlink.
    """
    root = os.path.abspath(path)

    def inside(candidate: str) -> bool:
        return candidate == root or candidate.startswith(root + os.sep)

    def make_writable_and_retry(func, failed_path, exc_info) -> None:
        if isinstance(exc_info[1], FileNotFoundError):
            return  # already gone (the job deleted it)
        failed = os.path.abspath(failed_path)
        if failed == root and os.path.islink(failed):
            os.unlink(failed)
            return
        for directory in (os.path.dirname(failed), failed):
            if inside(directory) and os.path.isdir(directory) and not os.path.islink(directory):
                os.chmod(directory, 0o700)
        try:
            func(failed_path)
        except FileNotFoundError:
            pass

    shutil.rmtree(root, onerror=make_writable_and_retry)


def _result(
    returncode: int,
    stdout: bytes,
    stderr: bytes,
    why_killed: str | None,
    wall: float,
    mode: str,
    limits: Limits,
) -> SandboxResult:
    out = stdout.decode("utf-8", "replace")
    err = stderr.decode("utf-8", "replace")
    signum: int | None = None
    if returncode < 0:
        signum = -returncode
    elif mode == "bwrap" and returncode > 128:
        signum = returncode - 128  # bwrap reports a signalled child as 128 + signal
    status: Status
    exit_code: int | None = returncode if signum is None else -signum
    if why_killed in ("output_limit", "disk"):
        status, exit_code = "output_limit", None
    elif why_killed == "memory":
        status, exit_code = "memory", None
    elif why_killed == "timeout":
        status, exit_code = "timeout", None
    elif signum == signal.SIGXCPU or (signum == signal.SIGKILL and wall >= limits.cpu_seconds):
        status = "timeout"  # the CPU limit: SIGXCPU at the soft limit, SIGKILL at the hard one
    elif signum is not None:
        status = "killed"
    elif returncode == 0:
        status = "ok"
    elif _died_of_memory_error(err):
        status = "memory"
    else:
        status = "runtime_error"
    return SandboxResult(status, exit_code, out, err, wall, mode)


def _died_of_memory_error(stderr: str) -> bool:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return bool(lines) and lines[-1].startswith("MemoryError")

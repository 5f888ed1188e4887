"""run_python's contract: inputs in, statuses and outputs out, in every available mode."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from cascade.errors import CascadeError
from cascade.sandbox import Limits, SandboxResult, describe_mode, run_python, sandbox_mode
from cascade.sandbox import modes as sandbox_modes
from cascade.sandbox import seccomp

AVAILABLE_MODES = sandbox_modes.available_modes()

# Every mode is a parameter; one that cannot run on this machine is skipped with the reason.
MODE_PARAMS = [
    pytest.param(m, marks=pytest.mark.skipif(
        m not in AVAILABLE_MODES, reason=f"{m} cannot run here: {sandbox_modes.unavailable_reason(m)}"))
    for m in sandbox_modes.MODES
]
SHORT = Limits(cpu_seconds=1, wall_seconds=1.2, memory_mb=256, max_output_bytes=4096)


@pytest.fixture
def scratch_parent(monkeypatch):
    parent = Path(tempfile.mkdtemp(prefix="cascade-sbx-test-"))
    parent.chmod(0o711)  # the job's own uid must reach its scratch dir inside
    monkeypatch.setattr(tempfile, "tempdir", str(parent))
    yield parent
    leftovers = list(parent.iterdir())
    if not leftovers:
        parent.rmdir()
    assert not leftovers, f"scratch left behind: {leftovers}"


@pytest.mark.parametrize("mode", MODE_PARAMS)
def test_stdin_argv_files_and_cwd(mode, scratch_parent):
    code = (
        "import os, sys, helper\n"
        "print(input().upper(), sys.argv[1:], helper.VALUE)\n"
        "print(open('data/table.txt').read().strip(), open('blob.bin', 'rb').read())\n"
        "print(sorted(os.listdir('.')))\n"
    )
    result = run_python(
        code,
        stdin="hello\n",
        files={"helper.py": "VALUE = 7\n", "data/table.txt": "a b c\n", "blob.bin": b"\x00\x01"},
        argv=["-x", "two words"],
        mode=mode,
    )
    assert result.status == "ok" and result.exit_code == 0, result
    lines = result.stdout.splitlines()
    assert lines[0] == "HELLO ['-x', 'two words'] 7"
    assert lines[1] == "a b c b'\\x00\\x01'"
    assert lines[2] == "['blob.bin', 'data', 'helper.py', 'main.py']"
    assert result.mode == mode and result.wall_time > 0


@pytest.mark.parametrize("mode", MODE_PARAMS)
def test_environment_is_scrubbed_and_uid_is_unprivileged(mode, scratch_parent, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak")
    result = run_python("import os\nprint(sorted(os.environ))\nprint(os.getuid())\n", mode=mode)
    names, uid = result.stdout.splitlines()
    assert "AWS_SECRET_ACCESS_KEY" not in names and "do-not-leak" not in result.stdout
    assert set(ast.literal_eval(names)) <= {"PATH", "LANG", "LC_ALL", "HOME", "TMPDIR", "PYTHONIOENCODING", "PWD"}
    if os.geteuid() == 0:
        assert int(uid) >= 1 << 30  # a per-job uid, never root


@pytest.mark.parametrize("mode", MODE_PARAMS)
@pytest.mark.parametrize(
    ("code", "status", "exit_code"),
    [
        ("print('fine')", "ok", 0),
        ("import sys\nsys.exit(3)", "runtime_error", 3),
        ("raise ValueError('boom')", "runtime_error", 1),
        # Under bwrap the job is its namespace's pid 1, which ignores signals it sends
        # itself; a real fault kills it all the same.
        ("import os, signal\nif os.getpid() == 1:\n    import ctypes\n    ctypes.string_at(0)\n"
         "os.kill(os.getpid(), signal.SIGSEGV)", "killed", -signal.SIGSEGV),
        ("x = bytearray(4 * 1024 ** 3)", "memory", 1),
        ("import time\ntime.sleep(30)", "timeout", None),
        ("print('y' * 100000)", "output_limit", None),
    ],
    ids=["ok", "exit3", "exception", "segv", "memory", "sleep", "flood"],
)
def test_statuses(mode, code, status, exit_code, scratch_parent):
    result = run_python(code, limits=SHORT, mode=mode)
    assert (result.status, result.exit_code) == (status, exit_code), result
    assert len(result.stdout) <= SHORT.max_output_bytes


@pytest.mark.parametrize("mode", MODE_PARAMS)
def test_output_is_kept_up_to_the_cap(mode, scratch_parent):
    result = run_python("import sys\nsys.stdout.write('z' * 5000)\nsys.stdout.flush()\nimport time\ntime.sleep(5)",
                        limits=SHORT, mode=mode)
    assert result.status == "output_limit"
    assert result.stdout == "z" * SHORT.max_output_bytes


@pytest.mark.parametrize("mode", MODE_PARAMS)
def test_undecodable_output_is_replaced_not_fatal(mode, scratch_parent):
    result = run_python("import sys\nsys.stdout.buffer.write(b'ok \\xff\\xfe')", mode=mode)
    assert result.status == "ok" and result.stdout == "ok \ufffd\ufffd"


@pytest.mark.parametrize("mode", MODE_PARAMS)
def test_limits_hold_without_util_linux(mode, scratch_parent, monkeypatch):
    """Where setpriv/prlimit are missing, the child sets its own limits before exec."""
    from cascade.sandbox import runner

    monkeypatch.setattr(runner, "_TOOLS", None)
    assert run_python("print(1)", mode=mode).stdout == "1\n"
    assert run_python("x = bytearray(4 * 1024 ** 3)", limits=SHORT, mode=mode).status == "memory"
    forks = run_python(
        "import os\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n            import time\n"
        "            time.sleep(5)\n            os._exit(0)\n        n += 1\nexcept OSError:\n    print(n)\n",
        limits=Limits(max_processes=8, wall_seconds=3), mode=mode,
    )
    assert forks.status == "ok" and 0 < int(forks.stdout) < 8


@pytest.mark.parametrize("name", ["/etc/passwd", "../up.txt", "main.py", ""])
def test_bad_file_names_are_rejected(name, scratch_parent):
    with pytest.raises(CascadeError) as info:
        run_python("pass", files={name: "x"})
    assert info.value.field == "files"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs jobs under another uid")
def test_unreachable_scratch_parent_is_a_clear_error(monkeypatch, tmp_path):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    with pytest.raises(CascadeError) as info:
        run_python("pass", mode="rlimit")
    assert info.value.field == "TMPDIR"
    assert list(private.iterdir()) == []  # the scratch dir it made is gone again


def test_unknown_mode_is_rejected(monkeypatch):
    with pytest.raises(CascadeError) as info:
        run_python("pass", mode="docker")
    assert info.value.field == "mode"
    monkeypatch.setenv("CASCADE_SANDBOX", "chroot")
    with pytest.raises(CascadeError) as info:
        sandbox_mode()
    assert info.value.field == "CASCADE_SANDBOX"


def test_mode_choice_and_description(monkeypatch):
    monkeypatch.delenv("CASCADE_SANDBOX", raising=False)
    strong = [m for m in ("bwrap", "landlock") if m in AVAILABLE_MODES]
    if strong:
        assert sandbox_mode() == strong[0]
    monkeypatch.setenv("CASCADE_SANDBOX", "rlimit")
    assert sandbox_mode() == "rlimit"
    assert "WEAK" in describe_mode("rlimit")
    assert "namespaces" in describe_mode("bwrap") and "WEAK" not in describe_mode("bwrap")
    assert "Landlock" in describe_mode("landlock") and "WEAK" not in describe_mode("landlock")


def test_no_strong_mode_is_a_clear_error_not_the_weak_mode(monkeypatch):
    """Where neither bwrap nor landlock can start, model code does not run at all unless
    the weak mode is asked for by name."""
    monkeypatch.delenv("CASCADE_SANDBOX", raising=False)
    monkeypatch.setattr(sandbox_modes, "_bwrap_probe", lambda: "no bwrap binary")
    monkeypatch.setattr(sandbox_modes, "_landlock_probe", lambda: "Landlock is not available")
    with pytest.raises(CascadeError) as info:
        sandbox_mode()
    message = info.value.format()
    assert "no bwrap binary" in message and "Landlock is not available" in message
    assert "CASCADE_SANDBOX=rlimit" in message
    monkeypatch.setenv("CASCADE_SANDBOX", "rlimit")
    assert sandbox_mode() == "rlimit"
    monkeypatch.setenv("CASCADE_SANDBOX", "landlock")
    with pytest.raises(CascadeError, match="Landlock is not available"):
        sandbox_mode()


def test_machine_report_agrees_with_the_modes_offered():
    report = sandbox_modes.machine_report()
    assert ("bwrap" in AVAILABLE_MODES) == (report["bwrap"] == "works")
    assert ("landlock" in AVAILABLE_MODES) == (report["landlock_mode"] == "works")
    if int(report["landlock_abi"]) >= 1 and report["seccomp"] == "available":
        assert "landlock" in AVAILABLE_MODES, report  # the kernel offers both: the mode must start


def test_limits_defaults_are_sane():
    limits = Limits()
    assert 0 < limits.cpu_seconds <= limits.wall_seconds
    assert limits.memory_mb >= 256 and limits.max_processes >= 1 and limits.max_output_bytes >= 1024
    assert SandboxResult("ok", 0, "", "", 0.1, "rlimit").status == "ok"


def test_sandbox_and_code_verifier_import_no_torch():
    code = (
        "import sys, cascade.sandbox, cascade.verifiers.code\n"
        "bad = [m for m in ('torch', 'transformers') if m in sys.modules]\n"
        "print(bad)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# --- the seccomp filters themselves ----------------------------------------------------

_FILTER_PROBE = """
import ctypes, os, socket, sys, threading
from cascade.sandbox import seccomp
which = sys.argv[1]
seccomp.install(seccomp.job_filter() if which == "job" else seccomp.candidate_filter())
results = {"seccomp": seccomp.seccomp_status()}
box = []
thread = threading.Thread(target=box.append, args=(1,))
thread.start()
thread.join()
results["thread"] = "allowed" if box else "denied"
libc = ctypes.CDLL(None, use_errno=True)
def ptrace_parent():
    if libc.ptrace(16, os.getppid(), 0, 0) != 0:  # PTRACE_ATTACH
        raise OSError(ctypes.get_errno(), "ptrace")
    libc.ptrace(17, os.getppid(), 0, 0)  # PTRACE_DETACH
def fork():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
def attempt(name, action):
    try:
        action()
        results[name] = "allowed"
    except OSError as exc:
        results[name] = "denied %d" % exc.errno
attempt("fork", fork)
attempt("socket", lambda: socket.socket().close())
attempt("socketpair", lambda: [s.close() for s in socket.socketpair()])
attempt("setsid", os.setsid)
attempt("ptrace", ptrace_parent)
print(results, flush=True)
if which == "candidate":  # last: where it is allowed, exec replaces this process
    attempt("exec", lambda: os.execv("/bin/true", ["true"]))
    print(results["exec"])
"""


@pytest.mark.skipif(seccomp.job_filter() is None, reason="no seccomp filter for this architecture")
@pytest.mark.parametrize("which", ["job", "candidate"])
def test_seccomp_filters_deny_what_they_say(which):
    """Installed in a throwaway process (never this one): what each filter lets through."""
    done = subprocess.run([sys.executable, "-c", _FILTER_PROBE, which], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    results = ast.literal_eval(lines[0])
    assert results["seccomp"] == "2" and results["thread"] == "allowed" and results["socketpair"] == "allowed"
    for name in ("socket", "setsid", "ptrace"):
        assert results[name] == "denied 1", (name, results)
    if which == "job":
        assert results["fork"] == "allowed"  # RLIMIT_NPROC bounds it; the filter does not count
    else:
        assert results["fork"] == "denied 1" and lines[1] == "denied 1"  # no fork, no exec

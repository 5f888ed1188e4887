"""Test harness that runs inside the sandbox for the code verifier (stdlib only).

Not imported by the project: ``cascade.verifiers.code`` passes this file's text to
``run_python`` as the job's main file, together with ``solution.py`` (the candidate) and
``job.marshal`` (the tests, without expected outputs except where a test is code that asserts).
Its standard input holds a per-run nonce.

The harness itself never runs candidate code. Each test runs in a forked child that first
points fds 0/1/2 at per-test files and closes every other descriptor but its own report
pipe, so candidate code cannot reach the harness's stdout. Only when all tests are done
(and, under bwrap, every other process in the sandbox is killed) does the harness read
the nonce and print one line, ``<nonce> <json report>``. A program that prints a fake
report, exits early or kills the harness therefore produces no valid report.

Report: ``{"compile_error": str | null, "tests": [{"status", "seconds", "cpu_seconds",
"stdout", "stdout_truncated", "value", "error", "stderr_tail"}, ...]}``; status is ``ok``,
``wrong_answer`` (an assert failed), ``runtime_error``, ``memory`` or ``time_limit``.
The harness stops after the first test whose status is not ``ok``. Whether an output is
right is decided by the verifier outside (it alone knows the expected outputs), so a test
that runs cleanly but prints a wrong answer does not stop the later tests.
"""

import marshal
import os
import select
import sys
import time

# Start-up time is paid once per verification, so the harness avoids the stdlib modules
# that import enum/re (json, signal, traceback): the job arrives as marshal data written
# by the verifier, the report is JSON written by _json below, and signal numbers come from
# the built-in _signal. json is imported only for call-style tests (to encode return values).
import _signal

_REPORT_BYTES = 64 * 1024 * 1024
_ESCAPES = {i: "\\u%04x" % i for i in range(32)}
_ESCAPES.update({ord("\\"): "\\\\", ord('"'): '\\"'})


def _json(value):
    """JSON for the report's plain values (str, int, float, bool, None, list, dict)."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.translate(_ESCAPES) + '"'
    if isinstance(value, list):
        return "[" + ",".join(_json(v) for v in value) + "]"
    return "{" + ",".join(_json(str(k)) + ":" + _json(v) for k, v in value.items()) + "}"


def _last_line(exc):
    return ("%s: %s" % (type(exc).__name__, exc)).replace("\n", " ")[:500]


def _plain(value):
    """JSON fallback for return values that are not JSON types (sets, custom objects)."""
    if isinstance(value, (set, frozenset)):
        try:
            return sorted(value)
        except TypeError:
            return list(value)
    return repr(value)


def _child(job, base, code, setup, program, test, report_fd, in_path, out_path, err_path):
    """Run one test in this (forked) process; report ``status\nvalue\nerror`` on report_fd."""
    os.setpgid(0, 0)
    fds = [
        os.open(in_path if in_path else os.devnull, os.O_RDONLY),
        os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
        os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
    ]
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    os.closerange(3, report_fd)
    os.closerange(report_fd + 1, max(report_fd + 1, 1024))
    _signal.signal(_signal.SIGPIPE, _signal.SIG_DFL)
    # Bound before candidate code runs, so patching os/json/builtins cannot silence us.
    write, stdout, stderr, exit_now = os.write, sys.stdout, sys.stderr, os._exit
    dumps = sys.modules["json"].dumps if job["style"] == "call" else None
    style = job["style"]
    status, value, error = "ok", "", ""
    namespace = dict(base, __name__="__main__" if style == "stdin" else "solution")
    try:
        exec(code, namespace)
        if style == "call":
            fn_name = job["fn_name"]
            owner = namespace.get("Solution")
            if owner is not None and hasattr(owner, fn_name):
                fn = getattr(owner(), fn_name)
            elif fn_name in namespace:
                fn = namespace[fn_name]
            else:
                raise NameError("function %r is not defined" % fn_name)
            value = dumps(fn(*test), default=_plain)
        elif style == "assert":
            exec(setup, namespace)
            exec(program, namespace)
    except SystemExit as exc:
        # A stdin program may exit(0) when it is done; anywhere else, exiting skips the test.
        if style != "stdin" or exc.code not in (None, 0):
            status, error = "runtime_error", "SystemExit(%r)" % (exc.code,)
    except MemoryError:
        status, error = "memory", "MemoryError"
    except AssertionError as exc:
        status, error = ("wrong_answer" if style == "assert" else "runtime_error"), _last_line(exc)
    except BaseException as exc:  # the candidate may raise anything, KeyboardInterrupt included
        status, error = "runtime_error", _last_line(exc)
    for stream in (stdout, stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    data = ("%s\n%s\n%s" % (status, value, error)).encode("utf-8", "replace")
    while data:
        data = data[write(report_fd, data):]
    exit_now(0)


def _wait(pid, report_fd, start, seconds):
    """Wait for the child until ``start + seconds``; return (wait status, report bytes, wall, cpu, timed out)."""
    deadline = start + seconds
    try:
        exit_fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        exit_fd = None
    data = bytearray()
    reading = True
    status = rusage = None
    timed_out = False
    while status is None:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            timed_out = True
            os.killpg(pid, _signal.SIGKILL)
            _, status, rusage = os.wait4(pid, 0)
            break
        watch = ([report_fd] if reading else []) + ([exit_fd] if exit_fd is not None else [])
        ready, _, _ = select.select(watch, [], [], remaining if exit_fd is not None else min(remaining, 0.005))
        if reading and report_fd in ready:
            chunk = os.read(report_fd, 65536)
            data += chunk[: max(0, _REPORT_BYTES - len(data))]
            reading = bool(chunk)
        if exit_fd is None or exit_fd in ready:
            done, status, rusage = os.wait4(pid, os.WNOHANG)
            if done == 0:
                status = None
    wall = time.perf_counter() - start
    if exit_fd is not None:
        os.close(exit_fd)
    # What the child wrote before it exited is in the pipe; a leftover that still holds
    # the pipe open must not keep us waiting.
    while reading and select.select([report_fd], [], [], 0)[0]:
        chunk = os.read(report_fd, 65536)
        data += chunk[: max(0, _REPORT_BYTES - len(data))]
        reading = bool(chunk)
    cpu = (rusage.ru_utime + rusage.ru_stime) if rusage is not None else 0.0
    return status, bytes(data), wall, cpu, timed_out


def _run_test(job, base, code, setup, program, index, test):
    in_path = None
    if job["style"] == "stdin":
        in_path = ".in%d" % index
        with open(in_path, "w", encoding="utf-8") as handle:
            handle.write(test)
    out_path, err_path = ".out%d" % index, ".err%d" % index
    read_end, write_end = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            _child(job, base, code, setup, program, test, write_end, in_path, out_path, err_path)
        finally:
            os._exit(70)
    os.close(write_end)
    status, data, wall, cpu, timed_out = _wait(pid, read_end, start, job["per_test_seconds"])
    os.close(read_end)
    _clean_up_after(pid, job)
    record = {"seconds": round(wall, 4), "cpu_seconds": round(cpu, 4)}
    cpu_limit = os.WIFSIGNALED(status) and (
        os.WTERMSIG(status) == _signal.SIGXCPU
        or (os.WTERMSIG(status) == _signal.SIGKILL and cpu >= job["per_test_seconds"])
    )
    if timed_out or cpu_limit:
        record.update(status="time_limit", error="exceeded %.3gs" % job["per_test_seconds"])
    else:
        record.update(_judge_exit(job["style"], status, data))
    if job["style"] == "stdin":
        record["stdout"], record["stdout_truncated"] = _read_capped(out_path, job["max_test_output"])
    if record["status"] not in ("ok", "time_limit"):
        tail = _read_capped(err_path, 4000)[0].strip()
        if tail:
            record["stderr_tail"] = tail[-1000:]
    for path in (in_path, out_path, err_path):
        if path:
            try:
                os.remove(path)
            except OSError:
                pass
    return record


def _judge_exit(style, status, data):
    if os.WIFSIGNALED(status):
        return {"status": "runtime_error", "error": "killed by signal %d" % os.WTERMSIG(status)}
    if not data:
        code = os.WEXITSTATUS(status)
        if style == "stdin" and code == 0:
            return {"status": "ok"}  # os._exit(0) after printing is a normal end for a program
        return {"status": "runtime_error", "error": "exited with code %d before the test finished" % code}
    parts = data.decode("utf-8", "replace").split("\n")
    if len(parts) != 3 or parts[0] not in ("ok", "runtime_error", "memory", "wrong_answer"):
        return {"status": "runtime_error", "error": "unreadable report from the test process"}
    record = {"status": parts[0]}
    if style == "call" and parts[0] == "ok":
        record["value"] = parts[1]
    if parts[2]:
        record["error"] = parts[2]
    return record


def _read_capped(path, limit):
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError:
        return "", False
    return data[:limit].decode("utf-8", "replace"), len(data) > limit


def _clean_up_after(pid, job):
    try:
        os.killpg(pid, _signal.SIGKILL)
    except OSError:
        pass
    if job["purge"]:
        # Inside bwrap's pid namespace kill(-1) reaches every process but the namespace's
        # init and this one: nothing a test left behind survives into the next test.
        try:
            os.kill(-1, _signal.SIGKILL)
        except OSError:
            pass
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def main():
    with open("job.marshal", "rb") as handle:
        job = marshal.loads(handle.read())
    with open("solution.py", encoding="utf-8") as handle:
        source = handle.read()
    os.remove("job.marshal")
    os.remove("solution.py")
    if job["style"] == "call":
        import json  # noqa: F401  (children use sys.modules["json"] to encode return values)
    report = {"compile_error": None, "tests": []}
    # The prelude (trusted, from the ground truth: e.g. the imports LeetCode provides) runs
    # once here; each test starts from a copy of its namespace.
    base = {"__builtins__": __builtins__}
    exec(compile(job["prelude"], "prelude.py", "exec"), base)
    # The tests were checked for syntax by the verifier; only the candidate may not compile.
    setup = compile(job["setup"], "setup.py", "exec")
    programs = [compile(t, "test.py", "exec") if job["style"] == "assert" else None for t in job["tests"]]
    try:
        code = compile(source, "solution.py", "exec")
    except (SyntaxError, ValueError) as exc:  # ValueError: source with NUL bytes
        report["compile_error"] = _last_line(exc)
        programs = []
    for index, (test, program) in enumerate(zip(job["tests"], programs)):
        record = _run_test(job, base, code, setup, program, index, test)
        report["tests"].append(record)
        if record["status"] != "ok":
            break
    nonce = sys.stdin.read().strip()
    sys.stdout.write(nonce + " " + _json(report) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()

"""Test harness that runs inside the sandbox for the code verifier (stdlib only).

Not imported by the project: ``cascade.verifiers.code`` passes this file's text to
``run_python`` as the job's main file, together with ``solution.py`` (the candidate),
``job.marshal`` (what the candidate may see: stdin texts or call arguments, never an
expected output) and, for assert-style tests, ``judge.marshal`` (the test code, which
holds the expected values). Its standard input holds a per-run nonce.

Processes. The harness (this process) never runs candidate code and never holds the
assert tests. Each test runs the candidate in a fresh forked process (the *candidate
process*) that first points fds 0/1/2 at per-test files, closes every other descriptor
but its own pipes, and installs a seccomp filter (where the job gives one) that forbids
new processes, exec, ptrace and sockets, so it cannot reach any other process of the
job. Only when all tests are done does the harness read the nonce and print one line,
``<nonce> <json report>``; candidate code cannot reach that stdout.

- stdin and call tests: the candidate process runs the program (or calls the function)
  and reports what it printed or returned; the verifier compares with the expected
  output outside the sandbox.
- assert tests (HumanEval, MBPP, LeetCode ``check``): a *judge* process, forked before
  the harness reads anything and the only process that ever reads ``judge.marshal``
  (then deletes it), runs the test code. Every name the test code takes from the
  candidate (the entry point, ``Solution``...) is a proxy: calling it sends the
  arguments, as plain data, through the harness to the candidate process, which calls
  its function and sends back the result serialised as plain data (None, bool, int,
  float, complex, str, bytes, and lists, tuples, dicts, sets of those; subclasses are
  reduced to their base type's own data, anything else is an error). The judge rebuilds
  fresh built-in values from that data, so every ``==``, ``abs``, ``isclose`` and
  ``assert`` of the test runs on plain values in a process the candidate never touched:
  an object with a forged ``__eq__``, patched builtins, a fake report or an early exit
  cannot make a test pass, and the expected values never enter a candidate's memory.

Report: ``{"compile_error": str | null, "tests": [{"status", "seconds", "cpu_seconds",
"stdout", "stdout_truncated", "value", "error", "stderr_tail"}, ...]}``; status is ``ok``,
``wrong_answer`` (an assert failed), ``runtime_error``, ``memory`` or ``time_limit``.
The harness stops after the first test whose status is not ``ok``. Whether a stdin or
call output is right is decided by the verifier outside, so a test that runs cleanly but
prints a wrong answer does not stop the later tests.
"""

import marshal
import os
import select
import sys
import time

# Start-up time is paid once per verification, so the harness avoids the stdlib modules
# that import enum/re (json, signal, traceback) where it can: the job arrives as marshal
# data written by the verifier, the report is JSON written by _json below, and signal
# numbers come from the built-in _signal. Values between processes are JSON written by
# _json and read by the C scanner of _json; the json package is imported only for
# call-style tests, whose encoding of return values the verifier depends on.
import _json as _c_json
import _signal

_REPORT_BYTES = 64 * 1024 * 1024
_MESSAGE_BYTES = 64 * 1024 * 1024
_MAX_DEPTH = 200
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
    try:
        text = "%s: %s" % (type(exc).__name__, exc)
    except BaseException:  # a candidate's exception whose __str__ misbehaves
        text = type(exc).__name__
    return text.replace("\n", " ")[:500]


def _plain(value):
    """JSON fallback for call-style return values that are not JSON types (sets, objects)."""
    if isinstance(value, (set, frozenset)):
        try:
            return sorted(value)
        except TypeError:
            return list(value)
    return repr(value)


# --- plain data across processes ---------------------------------------------------------

# The built-in types themselves may travel as values (by name), bound before any candidate code.
_BUILTIN_TYPES = {
    t.__name__: t
    for t in (bool, int, float, complex, str, bytes, bytearray, list, tuple, dict, set, frozenset, type, object)
}
_BUILTIN_TYPES["NoneType"] = type(None)
#
# Wire form: JSON where None/bool/int/float/str and lists are themselves and every other
# type is a one-key object: {"t": [...]} tuple, {"d": [[k, v], ...]} dict, {"s": [...]} set,
# {"z": [...]} frozenset, {"b": hex} bytes, {"y": hex} bytearray, {"c": [re, im]} complex,
# {"T": name} one of the built-in types, {"f": "nan" | "inf" | "-inf"} a float JSON lacks.
# Written by _json above and read by the C scanner below: neither needs the json package
# (whose import, through re, costs more than a whole test).


def _encode(value, depth=0, remote=None):
    """Plain data for ``value``, read through the built-in types' own methods.

    An instance of a subclass of a built-in type is reduced to the built-in value it
    holds (its own ``__eq__``, ``__iter__``... are never called); any other object is a
    TypeError. ``remote`` (the judge only): the proxy type, sent as a reference
    ``{"n": target}`` to an object that lives in the candidate's process.
    """
    kind = type(value)
    if value is None or kind is bool or kind is int or kind is str:
        return value
    if kind is float:
        return value if value - value == 0 else {"f": repr(value)}  # nan and infinities are not JSON
    if depth > _MAX_DEPTH:
        raise ValueError("value nested deeper than %d" % _MAX_DEPTH)
    depth += 1
    if remote is not None and kind is remote:
        return {"n": object.__getattribute__(value, "_target")}
    if remote is not None:
        if kind is list:
            return [_encode(v, depth, remote) for v in value]
        if kind is tuple:
            return {"t": [_encode(v, depth, remote) for v in value]}
        if kind is dict:
            return {"d": [[_encode(k, depth, remote), _encode(v, depth, remote)] for k, v in value.items()]}
    if issubclass(kind, bool):
        return bool.__bool__(value)
    if issubclass(kind, int):
        return int.__index__(value)
    if issubclass(kind, float):
        return _encode(float.__float__(value))
    if issubclass(kind, str):
        return str.__str__(value)
    if issubclass(kind, list):
        return [_encode(v, depth) for v in list.__iter__(value)]
    if issubclass(kind, tuple):
        return {"t": [_encode(v, depth) for v in tuple.__iter__(value)]}
    if issubclass(kind, dict):
        return {"d": [[_encode(k, depth), _encode(v, depth)] for k, v in dict.items(value)]}
    if issubclass(kind, frozenset):
        return {"z": [_encode(v, depth) for v in frozenset.__iter__(value)]}
    if issubclass(kind, set):
        return {"s": [_encode(v, depth) for v in set.__iter__(value)]}
    if issubclass(kind, bytes):
        return {"b": bytes.hex(value)}
    if issubclass(kind, bytearray):
        return {"y": bytearray.hex(value)}
    if issubclass(kind, complex):
        return {"c": [complex.__getattribute__(value, "real"), complex.__getattribute__(value, "imag")]}
    if kind is type and _BUILTIN_TYPES.get(type.__getattribute__(value, "__name__")) is value:
        return {"T": type.__getattribute__(value, "__name__")}  # MBPP passes int, str...
    raise TypeError("a %s is not plain data" % kind.__name__)


def _decode(data, depth=0, resolve=None):
    """Fresh built-in values from wire data; anything malformed is a ValueError.

    ``resolve`` (the candidate process only) turns a reference ``{"n": target}`` back
    into its object; the judge accepts no references.
    """
    kind = type(data)
    if data is None or kind is bool or kind is int or kind is float or kind is str:
        return data
    if depth > _MAX_DEPTH:
        raise ValueError("value nested deeper than %d" % _MAX_DEPTH)
    depth += 1
    if kind is list:
        return [_decode(v, depth, resolve) for v in data]
    if kind is not dict or len(data) != 1:
        raise ValueError("malformed value")
    ((tag, body),) = data.items()
    if tag == "n" and resolve is not None and type(body) is list:
        return resolve(body)
    if tag in ("t", "s", "z", "d") and type(body) is not list:
        raise ValueError("malformed value")
    if tag == "t":
        return tuple(_decode(v, depth, resolve) for v in body)
    if tag == "s":
        return set(_decode(v, depth) for v in body)
    if tag == "z":
        return frozenset(_decode(v, depth) for v in body)
    if tag == "d":
        result = {}
        for pair in body:
            if type(pair) is not list or len(pair) != 2:
                raise ValueError("malformed value")
            result[_decode(pair[0], depth, resolve)] = _decode(pair[1], depth, resolve)
        return result
    if tag in ("b", "y") and type(body) is str:
        return (bytes if tag == "b" else bytearray).fromhex(body)
    if tag == "c" and type(body) is list and len(body) == 2 and all(type(x) in (int, float) for x in body):
        return complex(body[0], body[1])
    if tag == "T" and type(body) is str and body in _BUILTIN_TYPES:
        return _BUILTIN_TYPES[body]
    if tag == "f" and body in ("nan", "inf", "-inf"):
        return float(body)
    raise ValueError("malformed value")


def _dumps(value, remote=None):
    """Wire bytes for ``value`` (see _encode)."""
    return _json(_encode(value, 0, remote)).encode("utf-8", "surrogatepass")


class _ScanContext:
    strict = True
    object_hook = object_pairs_hook = None
    parse_float, parse_int = float, int

    @staticmethod
    def parse_constant(name):
        raise ValueError("malformed value")


def _loads(data):
    """Wire data from bytes; a ValueError for anything that is not exactly one JSON value."""
    text = data.decode("utf-8", "surrogatepass")
    try:
        value, end = _c_json.make_scanner(_ScanContext)(text, 0)
    except (StopIteration, Exception):  # the C scanner's own errors need the json package
        raise ValueError("malformed value") from None
    if end != len(text):
        raise ValueError("malformed value")
    return value


# --- framed messages over pipes: 4-byte length, 1 kind byte, payload ----------------------


def _send(fd, kind, payload=b""):
    data = len(payload).to_bytes(4, "big") + kind + payload
    while data:
        data = data[os.write(fd, data):]


def _try_send(fd, kind, payload=b""):
    """``_send``, False when the other end is gone."""
    try:
        _send(fd, kind, payload)
    except OSError:
        return False
    return True


def _read_exact(fd, n, deadline):
    """``n`` bytes from ``fd``; None at EOF, at ``deadline`` (perf_counter) or on error."""
    data = bytearray()
    while len(data) < n:
        if deadline is not None:
            remaining = deadline - time.perf_counter()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                return None
        try:
            chunk = os.read(fd, min(n - len(data), 1 << 20))
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def _receive(fd, deadline=None):
    """(kind, payload), or None at EOF, on a malformed frame or at the deadline."""
    head = _read_exact(fd, 5, deadline)
    if head is None:
        return None
    size = int.from_bytes(head[:4], "big")
    if size > _MESSAGE_BYTES:
        return None
    payload = _read_exact(fd, size, deadline) if size else b""
    if payload is None:
        return None
    return head[4:5], payload


# --- the candidate process ------------------------------------------------------------------


def _enter_candidate_process(job, keep, in_path, out_path, err_path, install):
    """Everything a candidate process does before any candidate code: its own process
    group, fds 0/1/2 on per-test files, no other descriptor but ``keep``, the seccomp
    filter. Returns (stdout, stderr) to flush at the end."""
    os.setpgid(0, 0)
    fds = [
        os.open(in_path if in_path else os.devnull, os.O_RDONLY),
        os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
        os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
    ]
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, max(low, 1 << 16))
    _signal.signal(_signal.SIGPIPE, _signal.SIG_DFL)
    if install is not None:
        install()
    return sys.stdout, sys.stderr


def _flush(streams):
    for stream in streams:
        try:
            stream.flush()
        except BaseException:
            pass


def _failure(exc, style):
    """(status, error) for an exception that ended the candidate's code."""
    if isinstance(exc, SystemExit):
        return "runtime_error", "SystemExit(%r)" % (exc.code,)
    if isinstance(exc, MemoryError):
        return "memory", "MemoryError"
    if isinstance(exc, AssertionError):
        return ("wrong_answer" if style == "assert" else "runtime_error"), _last_line(exc)
    return "runtime_error", _last_line(exc)


def _child(job, base, code, test, report_fd, in_path, out_path, err_path, install):
    """Run one stdin or call test in this (forked) process; report ``status\nvalue\nerror``."""
    streams = _enter_candidate_process(job, (report_fd,), in_path, out_path, err_path, install)
    # Bound before candidate code runs, so patching os/json/builtins cannot silence us.
    write, exit_now = os.write, os._exit
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
    except SystemExit as exc:
        # A stdin program may exit(0) when it is done; anywhere else, exiting skips the test.
        if style != "stdin" or exc.code not in (None, 0):
            status, error = _failure(exc, style)
    except BaseException as exc:  # the candidate may raise anything, KeyboardInterrupt included
        status, error = _failure(exc, style)
    _flush(streams)
    data = ("%s\n%s\n%s" % (status, value, error)).encode("utf-8", "replace")
    while data:
        data = data[write(report_fd, data):]
    exit_now(0)


def _serve_calls(job, base, code, setup, request_fd, reply_fd, in_path, out_path, err_path, install):
    """The candidate process of an assert test: load the code, then answer call requests."""
    # The seccomp filter comes first: nothing below may fork or exec anyway.
    streams = _enter_candidate_process(job, (request_fd, reply_fd), in_path, out_path, err_path, install)
    send, receive, exit_now = _send, _receive, os._exit
    decode, dumps, loads = _decode, _dumps, _loads
    namespace = dict(base, __name__="solution")
    try:
        exec(code, namespace)
        exec(setup, namespace)  # MBPP's imports: some solutions rely on them
    except BaseException as exc:
        _flush(streams)
        send(reply_fd, b"F", ("%s\n%s" % _failure(exc, "assert")).encode("utf-8", "replace"))
        exit_now(0)
    names = sorted(name for name in namespace if name not in base and isinstance(name, str))
    send(reply_fd, b"K", "\n".join(names).encode("utf-8", "replace"))
    instances = []

    def resolve(target):
        if target[0] == "n":
            if target[1] not in namespace:
                raise NameError("name %r is not defined" % target[1])
            obj = namespace[target[1]]
        else:
            obj = instances[target[1]]
        for attribute in target[2:]:
            obj = getattr(obj, attribute)
        return obj

    while True:
        message = receive(request_fd)
        if message is None:
            exit_now(0)
        try:
            target, args, kwargs = loads(message[1])
            obj = resolve(target)
            result = obj(*decode(args, 0, resolve), **decode(kwargs, 0, resolve))
            if isinstance(obj, type):  # Solution(): the instance stays here, the judge gets a handle
                instances.append(result)
                kind, payload = b"R", str(len(instances) - 1).encode()
            else:
                kind, payload = b"V", dumps(result)
        except BaseException as exc:
            kind = b"E"
            payload = ("%s\n%s" % (type(exc).__name__, _last_line(exc))).encode("utf-8", "replace")
        _flush(streams)
        send(reply_fd, kind, payload)


# --- the judge process (assert tests) -------------------------------------------------------


class _CandidateGone(BaseException):
    """The candidate process ended or timed out during a call: the harness decides the verdict."""


def _judge_main(control_in, control_out):
    """Read and delete the tests, then run each one when the harness says so."""
    import builtins

    null = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1, 2):  # test code's prints must not reach the harness's report
        os.dup2(null, target)
    with open("judge.marshal", "rb") as handle:
        judge = marshal.loads(handle.read())
    os.remove("judge.marshal")
    _send(control_out, b"K")
    base = {"__builtins__": builtins, "__name__": "__main__"}
    setup_remote = set()
    try:
        exec(compile(judge["prelude"], "prelude.py", "exec"), base)
        # Setup statements run here one by one; one that needs the candidate's names
        # (MBPP's ``root = Node(1)`` with the solution's Node) runs only in the
        # candidate's process, and what it binds is reached there by reference.
        for source, binds in judge["setup"]:
            try:
                exec(compile(source, "setup.py", "exec"), base)
            except NameError:
                setup_remote.update(binds)
    except BaseException as exc:
        _send(control_out, b"F", _last_line(exc).encode("utf-8", "replace"))
        return
    for name in setup_remote:
        base.pop(name, None)

    def call(target, args, kwargs):
        try:
            request = _json([target, _encode(list(args), 0, _Remote), _encode(kwargs, 0, _Remote)])
        except (TypeError, ValueError) as exc:
            raise TypeError("argument is not plain data: %s" % exc) from None
        _send(control_out, b"C", request.encode("utf-8", "surrogatepass"))
        reply = _receive(control_in)
        if reply is None or reply[0] == b"G":
            raise _CandidateGone()
        kind, payload = reply
        if kind == b"R":
            return _Remote(["r", int(payload)])
        if kind == b"V":
            try:
                return _decode(_loads(payload))
            except (ValueError, RecursionError) as exc:
                raise TypeError("the candidate's result is not plain data: %s" % exc) from None
        name, _, message = payload.decode("utf-8", "replace").partition("\n")
        error = getattr(builtins, name, None)
        if not (isinstance(error, type) and issubclass(error, Exception)):
            error = RuntimeError
        try:
            raise error(message)
        except TypeError:  # an exception type whose constructor wants other arguments
            raise RuntimeError(message) from None

    class _Remote:
        """A name in the candidate's process: only calls and attribute paths cross over."""

        __slots__ = ("_target",)

        def __init__(self, target):
            object.__setattr__(self, "_target", target)

        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return _Remote(self._target + [name])

        def __call__(self, *args, **kwargs):
            return call(self._target, args, kwargs)

        def _refuse(self, *args):
            raise TypeError("a function of the candidate is not a value")

        __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __bool__ = __len__ = _refuse
        __iter__ = __hash__ = __contains__ = __getitem__ = _refuse

    analysed = {}
    while True:
        message = _receive(control_in)
        if message is None:
            return
        index, _, candidate_names = message[1].decode("utf-8", "replace").partition("\n")
        index = int(index)
        if index not in analysed:
            analysed[index] = compile(judge["tests"][index], "test.py", "exec")
        compiled = analysed[index]
        names = judge["names"][index]
        free, called, attribute_only = set(names["free"]), set(names["called"]), set(names["attribute_only"])
        namespace = dict(base)
        defined_by_candidate = set(candidate_names.split("\n"))
        remote = set()
        for name in free:
            if name in setup_remote:
                remote.add(name)
                continue
            if name in namespace:
                continue
            if name in attribute_only and name not in called:
                try:
                    namespace[name] = __import__(name)  # e.g. MBPP's math.isclose after the candidate's import
                    continue
                except ImportError:
                    pass
            if not hasattr(builtins, name):
                remote.add(name)
        if not remote:
            # The test reaches no candidate name that is not a builtin: a builtin name the candidate
            # defines is the function under test (MBPP's ``sum``).
            remote |= {n for n in free & called if hasattr(builtins, n) and n in defined_by_candidate}
        for name in remote:
            namespace[name] = _Remote(["n", name])
        status, error = "ok", ""
        try:
            exec(compiled, namespace)
        except _CandidateGone:
            status, error = "gone", ""
        except AssertionError as exc:
            status, error = "wrong_answer", _last_line(exc)
        except MemoryError:
            status, error = "memory", "MemoryError"
        except BaseException as exc:
            status, error = "runtime_error", _last_line(exc)
        _send(control_out, b"D", ("%s\n%s" % (status, error)).encode("utf-8", "replace"))


# --- the harness ----------------------------------------------------------------------------


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


def _test_files(job, index, test):
    in_path = None
    if job["style"] == "stdin":
        in_path = ".in%d" % index
        with open(in_path, "w", encoding="utf-8") as handle:
            handle.write(test)
    return in_path, ".out%d" % index, ".err%d" % index


def _finish_record(job, record, paths):
    in_path, out_path, err_path = paths
    if job["style"] == "stdin":
        record["stdout"], record["stdout_truncated"] = _read_capped(out_path, job["max_test_output"])
    if record["status"] not in ("ok", "time_limit"):
        tail = _read_capped(err_path, 4000)[0].strip()
        if tail:
            record["stderr_tail"] = tail[-1000:]
    for path in paths:
        if path:
            try:
                os.remove(path)
            except OSError:
                pass
    return record


def _cpu_limited(status, cpu, job):
    return os.WIFSIGNALED(status) and (
        os.WTERMSIG(status) == _signal.SIGXCPU
        or (os.WTERMSIG(status) == _signal.SIGKILL and cpu >= job["per_test_seconds"])
    )


def _run_test(job, base, code, index, test, install):
    paths = _test_files(job, index, test)
    read_end, write_end = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            _child(job, base, code, test, write_end, *paths, install)
        finally:
            os._exit(70)
    os.close(write_end)
    status, data, wall, cpu, timed_out = _wait(pid, read_end, start, job["per_test_seconds"])
    os.close(read_end)
    _clean_up_after(pid, job)
    record = {"seconds": round(wall, 4), "cpu_seconds": round(cpu, 4)}
    if timed_out or _cpu_limited(status, cpu, job):
        record.update(status="time_limit", error="exceeded %.3gs" % job["per_test_seconds"])
    else:
        record.update(_judge_exit(job["style"], status, data))
    return _finish_record(job, record, paths)


def _run_assert_test(job, base, code, setup, index, judge, install):
    """One assert test: the judge runs the test code, calls go to a fresh candidate process."""
    control_in, control_out = judge
    paths = _test_files(job, index, None)
    request_r, request_w = os.pipe()
    reply_r, reply_w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    start = time.perf_counter()
    deadline = start + job["per_test_seconds"]
    pid = os.fork()
    if pid == 0:
        try:
            for fd in (request_w, reply_r, control_in, control_out):
                os.close(fd)
            _serve_calls(job, base, code, setup, request_r, reply_w, *paths, install)
        finally:
            os._exit(70)
    os.close(request_r)
    os.close(reply_w)
    outcome = None  # (status, error) once known
    # Frames from the candidate process are the candidate's data: their kind is never
    # taken as a verdict here; only the judge's own "D" frame can say "ok".
    reply = _receive(reply_r, deadline)
    if reply is None:
        outcome = ("gone", "")
    elif reply[0] != b"K":
        status, _, error = reply[1].decode("utf-8", "replace").partition("\n")
        outcome = (status if status in ("memory", "wrong_answer") else "runtime_error", error)
    elif not _try_send(control_out, b"T", ("%d\n" % index).encode() + reply[1]):
        outcome = ("judge", "")
    while outcome is None:
        message = _receive(control_in, deadline)
        if message is None:
            outcome = ("gone", "") if time.perf_counter() >= deadline else ("judge", "")
        elif message[0] == b"C":
            reply = _receive(reply_r, deadline) if _try_send(request_w, b"C", message[1]) else None
            if reply is None:
                outcome = ("gone", "")
            elif not _try_send(control_out, reply[0], reply[1]):
                outcome = ("judge", "")
        else:
            status, _, error = message[1].decode("utf-8", "replace").partition("\n")
            outcome = (status, error)
    os.close(request_w)
    os.close(reply_r)
    timed_out = time.perf_counter() >= deadline
    try:
        os.killpg(pid, _signal.SIGKILL)
    except OSError:
        pass
    _, wait_status, rusage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    cpu = rusage.ru_utime + rusage.ru_stime
    _clean_up_after(pid, job)
    record = {"seconds": round(wall, 4), "cpu_seconds": round(cpu, 4)}
    status, error = outcome
    if status == "gone":
        if timed_out or _cpu_limited(wait_status, cpu, job):
            record.update(status="time_limit", error="exceeded %.3gs" % job["per_test_seconds"])
        elif os.WIFSIGNALED(wait_status) and os.WTERMSIG(wait_status) != _signal.SIGKILL:
            record.update(status="runtime_error", error="killed by signal %d" % os.WTERMSIG(wait_status))
        else:
            record.update(status="runtime_error", error="the candidate's process ended during the test")
    elif status == "judge":
        record.update(status="runtime_error", error="the judge process ended (killed by the candidate?)")
    elif status in ("ok", "wrong_answer", "runtime_error", "memory"):
        record["status"] = status
        if error:
            record["error"] = error
    else:
        record.update(status="runtime_error", error="unreadable result from the test process")
    return _finish_record(job, record, paths)


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
    if job["purge"] and os.getpid() == 1:
        # Inside bwrap's pid namespace (where this process is pid 1) kill(-1) reaches
        # every process of the job but this one; anywhere else it would reach far more.
        try:
            os.kill(-1, _signal.SIGKILL)
        except OSError:
            pass
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def _start_judge():
    """Fork the judge before this process reads anything; wait until it has the tests."""
    to_judge_r, to_judge_w = os.pipe()
    from_judge_r, from_judge_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(to_judge_w)
            os.close(from_judge_r)
            _judge_main(to_judge_r, from_judge_w)
        except BaseException as exc:
            _try_send(from_judge_w, b"F", _last_line(exc).encode("utf-8", "replace"))
        finally:
            os._exit(0)
    os.close(to_judge_r)
    os.close(from_judge_w)
    ready = _receive(from_judge_r, time.perf_counter() + 30)
    if ready is None or ready[0] != b"K":
        why = ready[1].decode("utf-8", "replace") if ready else "no answer"
        raise SystemExit("judge process did not start: %s" % why)
    return pid, (from_judge_r, to_judge_w)


STARTED = b"cascade-harness: started\n"


def main():
    # Before anything else: a job whose stderr lacks this line never got as far as the
    # harness (the sandbox itself failed), which the verifier reports as sandbox_error.
    os.write(2, STARTED)
    # job.marshal holds no assert test (those are only in judge.marshal, which this
    # process never opens), so it may be read before the judge is forked.
    with open("job.marshal", "rb") as handle:
        job = marshal.loads(handle.read())
    if job["style"] == "call":
        import json  # noqa: F401  (the children use sys.modules["json"] for return values)

    install = None
    if os.path.exists("seccomp.marshal"):  # (filter program, installer source); not in the weak mode
        with open("seccomp.marshal", "rb") as handle:
            candidate_filter, installer = marshal.loads(handle.read())
        os.remove("seccomp.marshal")
        namespace = {}
        exec(installer, namespace)
        install_program = namespace["_seccomp_installer"]()

        def install():
            install_program(candidate_filter)

    judge_pid = judge = None
    if os.path.exists("judge.marshal"):
        judge_pid, judge = _start_judge()
    with open("solution.py", encoding="utf-8") as handle:
        source = handle.read()
    os.remove("job.marshal")
    os.remove("solution.py")
    if judge is not None:
        job["purge"] = False  # kill(-1) would take the judge too; the filter forbids leftovers
    report = {"compile_error": None, "tests": []}
    # The prelude (trusted, from the ground truth: e.g. the imports LeetCode provides) runs
    # once here; each test starts from a copy of its namespace.
    base = {"__builtins__": __builtins__}
    exec(compile(job["prelude"], "prelude.py", "exec"), base)
    # The tests were checked for syntax by the verifier; only the candidate may not compile.
    setup = compile(job["setup"], "setup.py", "exec")
    tests = job["tests"]
    try:
        code = compile(source, "solution.py", "exec")
    except (SyntaxError, ValueError) as exc:  # ValueError: source with NUL bytes
        report["compile_error"] = _last_line(exc)
        tests = []
    for index, test in enumerate(tests):
        if judge is not None:
            record = _run_assert_test(job, base, code, setup, index, judge, install)
        else:
            record = _run_test(job, base, code, index, test, install)
        report["tests"].append(record)
        if record["status"] != "ok":
            break
    if judge_pid is not None:
        try:
            os.kill(judge_pid, _signal.SIGKILL)
            os.waitpid(judge_pid, 0)
        except OSError:
            pass
    nonce = sys.stdin.read().strip()
    sys.stdout.write(nonce + " " + _json(report) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()

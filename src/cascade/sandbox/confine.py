"""Start-up code of a ``landlock``-mode job: confine this process with the kernel, then run
the job (stdlib only).

Not imported by the project: the runner passes this file's text to ``python -c``, so it
runs first inside the job's interpreter, before any of the job's code:

    python -E -s -S -B -c <this source> <config> <main file> [args...]

``<config>`` is lines of ``key=value``: ``scratch=``, ``filter=`` (the seccomp program in
hex), and any number of ``read=`` and ``device=`` paths.

It applies two kernel mechanisms that need no privileges and that nothing running later
in this process or its children can remove or loosen, native code included:

- Landlock (Linux 5.13+): the file system becomes read-only and executable beneath the
  config's ``read`` paths (the interpreter's installation, /usr, the /lib* and /bin
  trees), a few device files are usable, the scratch directory is fully usable, and
  nothing else can be opened, listed, created, renamed, linked or truncated. With Landlock
  ABI 4+ TCP bind and connect are refused; with ABI 6+ the job cannot signal processes
  outside itself nor connect to abstract unix sockets outside itself.
- a seccomp-BPF filter (``cascade.sandbox.seccomp.job_filter``): no sockets, no ptrace,
  no new namespaces or mounts, no ``setsid``, no io_uring, and more.

If either cannot be applied the job stops with exit status 125 and a line on stderr
that starts with ``confine:``: it never runs unconfined.
"""

import os
import sys

_LANDLOCK_CREATE_RULESET, _LANDLOCK_ADD_RULE, _LANDLOCK_RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
# File-system access rights by the Landlock ABI that introduced them.
_FS_RIGHTS = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1, 2, 4, 8
_TRUNCATE, _IOCTL_DEV = 1 << 14, 1 << 15
_FILE_RIGHTS = _EXECUTE | _WRITE_FILE | _READ_FILE | _TRUNCATE | _IOCTL_DEV  # the rights a file rule may hold
_NET_BIND_TCP, _NET_CONNECT_TCP = 1, 2
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1, 2


def _fail(message):
    os.write(2, ("confine: %s\n" % message).encode("utf-8", "replace"))
    os._exit(125)


def _confine(config):
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long

    abi = libc.syscall(_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    if abi < 1:
        _fail("Landlock is not available (errno %d)" % ctypes.get_errno())
    handled_fs = _FS_RIGHTS[max(v for v in _FS_RIGHTS if v <= abi)]

    class _RulesetAttr(ctypes.Structure):
        _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]

    class _PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    attr = _RulesetAttr(handled_fs, 0, 0)
    size = 8
    if abi >= 4:
        attr.net, size = _NET_BIND_TCP | _NET_CONNECT_TCP, 16
    if abi >= 6:
        attr.scoped, size = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL, 24
    ruleset = libc.syscall(_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        _fail("landlock_create_ruleset failed (errno %d)" % ctypes.get_errno())

    def allow(path, rights):
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return  # a path this machine does not have (/lib32...)
        try:
            if not os.path.isdir(path):
                rights &= _FILE_RIGHTS
            rule = _PathBeneath(rights & handled_fs, fd)
            if libc.syscall(_LANDLOCK_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH),
                            ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
                _fail("landlock_add_rule for %s failed (errno %d)" % (path, ctypes.get_errno()))
        finally:
            os.close(fd)

    for path in config["read"]:
        allow(path, _READ_FILE | _READ_DIR | _EXECUTE)
    for path in config["device"]:
        allow(path, _READ_FILE | _WRITE_FILE | _TRUNCATE | _IOCTL_DEV)
    allow(config["scratch"], handled_fs)

    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        _fail("prctl(PR_SET_NO_NEW_PRIVS) failed (errno %d)" % ctypes.get_errno())
    if libc.syscall(_LANDLOCK_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
        _fail("landlock_restrict_self failed (errno %d)" % ctypes.get_errno())
    os.close(ruleset)

    program = bytes.fromhex(config["filter"])

    class _Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _Fprog(len(program) // 8, ctypes.addressof(buffer))
    if libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        _fail("installing the seccomp filter failed (errno %d)" % ctypes.get_errno())
    return abi


if __name__ == "__main__":  # only as ``python -c``; importing this module does nothing
    _config = {"read": [], "device": []}
    for _line in sys.argv[1].split("\n"):
        _key, _, _value = _line.partition("=")
        if _key in ("read", "device"):
            _config[_key].append(_value)
        else:
            _config[_key] = _value
    try:
        _confine(_config)
    except Exception as _exc:  # anything unexpected: never run unconfined
        _fail("%s: %s" % (type(_exc).__name__, _exc))
    sys.path.insert(0, os.path.realpath(_config["scratch"]))
    sys.argv = sys.argv[2:]
    with open(sys.argv[0], "rb") as _handle:
        _code = compile(_handle.read(), sys.argv[0], "exec")
    del _handle, _config
    _main = type(sys)("__main__")
    _main.__file__ = sys.argv[0]
    _main.__builtins__ = __builtins__
    sys.modules["__main__"] = _main
    exec(_code, _main.__dict__)

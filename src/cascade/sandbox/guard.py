"""Best-effort in-process guard for the WEAK ``rlimit`` sandbox mode (stdlib only).

Known to be bypassable from pure Python (see docs/sandbox.md and the hostile suite); the
mode runs only when asked for with ``CASCADE_SANDBOX=rlimit``.

Not imported by the project: the runner passes this file's text to ``python -c``, so it
runs first inside the job's interpreter, installs an audit hook and then executes the job's
main file. Audit hooks cannot be removed from Python code, but native code (ctypes, a C
extension) could bypass them; that is why ctypes and the raw spawn primitive are blocked
too, and why this mode is reported as weaker than bwrap. Command line:

    python -E -s -S -B -c <this source> <scratch dir> <main file> [args...]
"""

import os
import sys


def _install(scratch):
    # Everything the hook needs lives in this closure, not in module globals, so the job
    # cannot switch the guard off by editing a dict it reaches through its frame's f_back.
    read_roots = tuple(
        {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    )
    read_files = ("/dev/null", "/dev/zero", "/dev/random", "/dev/urandom")
    session = os.getsid(0)
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    # ctypes and _posixsubprocess reach native calls that raise no audit events; the gc
    # object walkers (blocked below) would hand out this closure's cells.
    blocked_imports = frozenset({"ctypes", "_ctypes", "_posixsubprocess", "_xxsubinterpreters"})
    blocked_events = frozenset(
        {
            "os.exec", "os.posix_spawn", "os.spawn", "os.system", "os.startfile", "os.forkpty",
            "subprocess.Popen", "pty.spawn", "socket.__new__", "ctypes.dlopen", "ctypes.dlsym",
            "ctypes.cdata", "ctypes.string_at", "ctypes.wstring_at", "ctypes.call_function",
            "gc.get_objects", "gc.get_referrers", "gc.get_referents",
        }
    )
    write_events = frozenset(
        {
            "os.remove", "os.rmdir", "os.mkdir", "os.rename", "os.link", "os.symlink",
            "os.truncate", "os.chmod", "os.chown", "os.utime", "os.mkfifo", "os.mknod",
            "shutil.rmtree", "shutil.copyfile", "shutil.copytree", "shutil.move",
        }
    )
    two_path_events = frozenset({"os.rename", "os.link", "os.symlink"})
    read_events = frozenset({"os.listdir", "os.scandir", "glob.glob"})
    realpath, fsdecode, getpid, getsid = os.path.realpath, os.fsdecode, os.getpid, os.getsid

    def inside(path, roots):
        return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)

    def resolve(path):
        if path is None or isinstance(path, int):
            return None  # an open descriptor was checked when it was opened
        return realpath(fsdecode(path))

    def may_read(real):
        return real in read_files or inside(real, (scratch, "/proc/%d" % getpid()) + read_roots)

    def deny(what):
        raise PermissionError("sandbox: %s is not allowed" % what)

    def check_kill(target):
        # Only processes of the job's own session: never the parent, never -1 (everyone).
        if target <= 0:
            deny("signalling process group %d" % target)
        try:
            if getsid(target) != session:
                deny("signalling process %d outside the job" % target)
        except ProcessLookupError:
            pass

    def hook(event, args):
        if event == "import" and args[0].split(".")[0] in blocked_imports:
            deny("importing %s" % args[0])
        elif event in blocked_events:
            deny(event)
        elif event == "open":
            path, mode, flags = args
            real = resolve(path)
            if real is None:
                return
            writes = (mode is not None and any(c in mode for c in "wax+")) or bool((flags or 0) & write_flags)
            if writes and real != "/dev/null" and not inside(real, (scratch,)):
                deny("writing %s" % real)
            if not writes and not may_read(real):
                deny("reading %s" % real)
        elif event in write_events:
            for path in args[:2] if event in two_path_events else args[:1]:
                real = resolve(path)
                if real is not None and not inside(real, (scratch,)):
                    deny("%s on %s" % (event, real))
        elif event in read_events:
            real = resolve(args[0] if args and args[0] is not None else ".")
            if real is not None and not may_read(real):
                deny("%s on %s" % (event, real))
        elif event in ("os.kill", "os.killpg"):
            check_kill(args[0])

    sys.addaudithook(hook)


if __name__ == "__main__":  # only as ``python -c``; importing this module does nothing
    _install(os.path.realpath(sys.argv[1]))
    del _install
    sys.path.insert(0, os.path.realpath(sys.argv[1]))
    sys.argv = sys.argv[2:]
    with open(sys.argv[0], "rb") as _handle:
        _code = compile(_handle.read(), sys.argv[0], "exec")
    del _handle
    _main = type(sys)("__main__")
    _main.__file__ = sys.argv[0]
    _main.__builtins__ = __builtins__
    sys.modules["__main__"] = _main
    exec(_code, _main.__dict__)

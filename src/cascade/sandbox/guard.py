"""In-process guard for the WEAK ``rlimit`` sandbox mode (stdlib only).

Not imported by the project: the runner passes this file's text to ``python -c``, so it
runs first inside the job's interpreter, seals the interpreter, installs an audit hook
and then executes the job's main file. Command line:

    python -E -s -S -B -c <this source> <scratch dir> <main file> [args...]

An audit hook cannot be removed from Python code, but it is itself Python code in the
job's interpreter, so it is built to give nothing away:

- **No state an attacker can change.** The hook and its helpers read nothing from
  module globals, builtins or closure cells (``__globals__``, ``builtins`` and
  ``cell_contents`` are writable from Python): every value they use is a default
  argument bound at install time, and every default is immutable (``str``,
  ``frozenset``, ``tuple``), a built-in C function (``os.lstat``) or another guard
  function. Replacing a function's ``__code__``, ``__defaults__`` or
  ``__kwdefaults__`` is refused for every function, so a guard frame taken from a
  traceback, a signal handler or ``sys._getframe`` leads nowhere. ``code.__new__``
  (``CodeType(...)``, ``code.replace``) is refused too: hand-made bytecode is a way to
  corrupt the interpreter's memory. Paths are resolved by the guard's own loop over
  ``os.lstat``/``os.readlink``, never by ``os.path`` (whose module globals the job
  could patch), and ``str``/``bytes`` subclasses are copied to plain values first.
- **No native capability left lying around.** Every built-in module the job may use
  is created now and ``_imp.create_builtin`` is replaced by a function that hands out
  only those, so no later import (``importlib.import_module`` raises no ``import``
  event) can produce a fresh ``_posixsubprocess`` (whose ``fork_exec`` runs programs
  without an audit event) or a fresh copy of a module the guard pruned.
  ``_posixsubprocess`` itself is a stub that refuses; ``_testcapi`` and the
  sub-interpreter modules (a sub-interpreter has no audit hook), ``ctypes``, modules
  whose native code opens files or the system unaudited (``_BLOCKED_MODULES``) and any
  extension module outside the interpreter's own directories cannot be imported; the
  unaudited ``os.mkfifo``, ``os.mknod`` and ``signal.pidfd_send_signal`` are removed,
  and name lookups (DNS needs no socket of the job's own) are refused.
- **Paths whose base the hook cannot see stay in scratch.** The ``open`` event does not
  say which ``dir_fd`` a relative path is resolved against, and another thread may
  ``chdir`` between the check and the open. So: the working directory can only move
  inside scratch; no directory outside scratch can be opened as a descriptor; no
  relative path may contain ``..``; no symbolic or hard link can be created (so scratch
  holds none). Every base a relative path can have is then a directory in scratch,
  and a relative path without ``..`` stays there whatever the base.
- Only the job's first process may fork (as in the strong modes, where candidate
  processes cannot); no exec, spawn, shell, socket, tracing, ``gc`` object walk or
  further audit hook.

What it cannot stop is listed in docs/sandbox.md: native code reached some other way
(an interpreter memory-safety bug, bytecode crafted with ``marshal``) is outside any
audit hook's reach, which is why the mode runs only when asked for by name.
"""

import os
import sys

# Modules (any dotted component) the job may not import: native calls, sub-interpreters
# and CPython test modules; and native code that opens paths or talks to the system with
# no audit event: named semaphores and shared memory, sqlite and dbm files, readline
# history files, Tcl (which runs programs), the passwd/group databases, syslog. Names
# starting with these prefixes too.
_BLOCKED_MODULES = frozenset(
    {
        "ctypes", "_ctypes", "_ctypes_test", "_posixsubprocess", "_posixshmem", "_multiprocessing",
        "_sqlite3", "_dbm", "_gdbm", "readline", "_curses", "_curses_panel", "_tkinter", "pwd", "grp",
        "spwd", "nis", "syslog", "ossaudiodev",
        "_xxsubinterpreters", "_xxinterpchannels", "_interpreters", "_interpchannels", "_interpqueues", "interpreters",
        "_remote_debugging", "xxsubtype", "xxlimited", "xxlimited_35",
    }
)
_BLOCKED_PREFIXES = ("_test", "_xx", "_interp")
# Built-in modules not created up front: not dangerous, but creating them imports Python
# modules (xml.etree and re; collections and functools), which would slow every job down.
# xml.etree and pickle fall back to their pure-Python versions.
_NOT_PRECREATED = frozenset({"_elementtree", "_pickle"})
# Unaudited functions removed from the interpreter (they create files outside scratch or
# signal processes by pidfd, past the os.kill check).
_PRUNED = (
    ("posix", ("mkfifo", "mknod", "setns", "unshare", "chroot", "setpriority")),
    ("_signal", ("pidfd_send_signal",)),
)


def _seal_imports(blocked, blocked_prefixes):
    """Create every allowed built-in module now; make later builtin imports reuse them."""
    import _imp
    from _frozen_importlib import BuiltinImporter, ModuleSpec

    def is_blocked(name):
        return any(part in blocked or part.startswith(blocked_prefixes) for part in name.split("."))

    made = []
    for name in sys.builtin_module_names:
        if name in sys.modules or is_blocked(name) or name in _NOT_PRECREATED:
            continue
        made.append((name, _imp.create_builtin(ModuleSpec(name, BuiltinImporter, origin="built-in"))))
    stub = type(sys)("_posixsubprocess")

    def fork_exec(*args, _error=PermissionError):
        raise _error("sandbox: starting programs is not allowed")

    stub.fork_exec = fork_exec
    made.append(("_posixsubprocess", stub))
    sys.modules["_posixsubprocess"] = stub
    cache = tuple(made)

    def create_builtin(spec, _cache=cache, _error=ImportError):
        name = spec.name
        for known, module in _cache:
            if known == name:
                return module
        raise _error("sandbox: built-in module %s is not available in the weak sandbox" % (name,))

    _imp.create_builtin = create_builtin  # the original is dropped: nothing can make a fresh module
    return fork_exec, create_builtin


def _prune(pruned):
    """Remove unaudited functions from their modules and from every container holding them."""
    import gc

    found = [getattr(sys.modules.get(module), name, None) for module, names in pruned for name in names]
    targets = tuple(target for target in found if target is not None)  # a tuple: never edited below
    del found
    for holder in gc.get_referrers(*targets):  # module dicts, os.supports_* sets
        if isinstance(holder, dict):
            for key in [k for k, v in holder.items() if any(v is t for t in targets)]:
                del holder[key]
        elif isinstance(holder, (set, list)):
            for target in targets:
                while target in holder:
                    holder.remove(target)
    for module, names in pruned:
        for name in names:
            if name in getattr(os, "__all__", ()):
                os.__all__.remove(name)


def _install(scratch):
    """Seal the interpreter and add the audit hook; ``scratch`` is a real absolute path."""
    if os.path.realpath(os.getcwd()) != scratch:
        os.chdir(scratch)
    guard_functions = _seal_imports(_BLOCKED_MODULES, _BLOCKED_PREFIXES)
    _prune(_PRUNED)
    read_roots = tuple(
        sorted(set(map(os.path.realpath, (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix))))
    )
    # Everything below is bound as a default argument: see the module docstring.
    scratch_dir = scratch + "/"
    read_files = frozenset({"/dev/null", "/dev/zero", "/dev/random", "/dev/urandom"})
    builtin_names = frozenset(sys.builtin_module_names)
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    refused = frozenset(
        {
            "os.exec", "os.posix_spawn", "os.spawn", "os.system", "os.startfile", "os.forkpty",
            "subprocess.Popen", "pty.spawn", "socket.__new__", "ctypes.dlopen", "ctypes.dlsym",
            "ctypes.cdata", "ctypes.string_at", "ctypes.wstring_at", "ctypes.call_function",
            "ctypes.addressof", "gc.get_objects", "gc.get_referrers", "gc.get_referents",
            "sys.settrace", "sys.setprofile", "sys._current_frames", "sys._current_exceptions",
            "sys.addaudithook", "sys.remote_exec", "os.link", "os.symlink",
            # name lookups reach the network (DNS) even without a socket of the job's own
            "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex", "socket.gethostbyaddr",
            "socket.getnameinfo",
        }
    )
    write_events = frozenset({"os.remove", "os.rmdir", "os.mkdir", "os.truncate", "os.mkfifo", "os.mknod"})
    # Events whose descriptor form could reach a file opened read-only outside scratch.
    path_only_events = frozenset({"os.chmod", "os.chown", "os.utime", "os.setxattr", "os.removexattr"})
    read_events = frozenset({"os.listdir", "os.scandir"})
    sealed_attributes = frozenset({"__code__", "__defaults__", "__kwdefaults__"})
    handled = refused | write_events | path_only_events | read_events | frozenset(
        {
            "open", "os.rename", "os.chdir", "os.fork", "os.kill", "os.killpg", "import",
            "object.__setattr__", "object.__delattr__", "resource.prlimit",
        }
    )

    def deny(what, _error=PermissionError):
        raise _error("sandbox: %s is not allowed" % (what,))

    def text(path, _type=type, _str=str, _bytes=bytes, _issubclass=issubclass, _copy=str.__str__,
             _decode=bytes.decode, _encoding=sys.getfilesystemencoding(), _errors=sys.getfilesystemencodeerrors()):
        """A path as a plain str (a subclass is copied, its methods never called), or None."""
        kind = _type(path)
        if kind is _str:
            return path
        if kind is _bytes or _issubclass(kind, _bytes):
            return _decode(path, _encoding, _errors)
        if _issubclass(kind, _str):
            return _copy(path)
        return None

    def resolve(path, _lstat=os.lstat, _readlink=os.readlink, _scratch=scratch, _scratch_dir=scratch_dir,
                _kind=0o170000, _link=0o120000, _error=OSError):
        """The real path of an absolute path, following symlinks; OSError where it cannot tell.

        Nothing inside scratch is looked at: scratch holds no links (none can be made).
        """
        pending = path.split("/")
        pending.reverse()
        resolved = ""
        links = 0
        while pending:
            name = pending.pop()
            if name == "" or name == ".":
                continue
            if name == "..":
                resolved = resolved[: resolved.rfind("/")]
                continue
            candidate = resolved + "/" + name
            if candidate == _scratch or candidate.startswith(_scratch_dir):
                resolved = candidate
                continue
            if _lstat(candidate).st_mode & _kind == _link:
                links += 1
                if links > 40:
                    raise _error("too many levels of symbolic links")
                target = _readlink(candidate)
                if target.startswith("/"):
                    resolved = ""
                parts = target.split("/")
                parts.reverse()
                pending += parts
                continue
            resolved = candidate
        return resolved or "/"

    def locate(path, _text=text, _resolve=resolve, _scratch=scratch, _deny=deny, _failures=(OSError, ValueError)):
        """Where ``path`` leads: its real absolute path, or ``_scratch`` for a relative path.

        A relative path is resolved against the working directory or a ``dir_fd``, and
        both are directories in scratch; without ``..`` it cannot leave it.
        """
        plain = _text(path)
        if plain is None:
            _deny("a path that is not str or bytes")
        if not plain.startswith("/"):
            for part in plain.split("/"):
                if part == "..":
                    _deny("a relative path with '..' (%s)" % (plain,))
            return _scratch
        try:
            return _resolve(plain)
        except _failures:
            _deny("%s (it cannot be resolved)" % (plain,))

    def in_scratch(real, _scratch=scratch, _scratch_dir=scratch_dir):
        return real == _scratch or real.startswith(_scratch_dir)

    def may_read(real, _in_scratch=in_scratch, _read_files=read_files, _roots=read_roots, _getpid=os.getpid):
        if _in_scratch(real) or real in _read_files:
            return True
        own = "/proc/%d" % _getpid()
        for root in _roots + (own,):
            if real == root or real.startswith(root + "/"):
                return True
        return False

    def check_open(path, mode, flags, _type=type, _int=int, _issubclass=issubclass, _text=text,
                   _locate=locate, _in_scratch=in_scratch, _may_read=may_read, _deny=deny, _lstat=os.lstat,
                   _write_flags=write_flags, _dir=0o040000, _kind=0o170000, _failures=(OSError, ValueError)):
        if _issubclass(_type(path), _int):
            return  # an open descriptor was checked when it was opened
        writes = _type(flags) is _int and flags & _write_flags != 0
        plain_mode = _text(mode) if mode is not None else ""
        for letter in "wax+":
            if plain_mode is None or letter in plain_mode:
                writes = True
        real = _locate(path)
        if _in_scratch(real):
            return
        if writes:
            if real != "/dev/null":
                _deny("writing %s" % (real,))
            return
        if not _may_read(real):
            _deny("reading %s" % (real,))
        try:
            is_dir = _lstat(real).st_mode & _kind == _dir
        except _failures:
            is_dir = True
        if is_dir:
            # A directory descriptor outside scratch would be a dir_fd base the open event never shows.
            _deny("opening the directory %s" % (real,))

    def check_write(path, event, _locate=locate, _in_scratch=in_scratch, _deny=deny):
        real = _locate(path)
        if not _in_scratch(real):
            _deny("%s on %s" % (event, real))

    def is_blocked(name, _text=text, _blocked=_BLOCKED_MODULES, _prefixes=_BLOCKED_PREFIXES):
        plain = _text(name)
        if plain is None:
            return True
        for part in plain.split("."):
            if part in _blocked or part.startswith(_prefixes):
                return True
        return False

    def check_kill(target, _getsid=os.getsid, _session=os.getsid(0), _deny=deny, _type=type, _int=int):
        # Only processes of the job's own session: never the parent, never -1 (everyone).
        # A process that is gone makes getsid raise, which refuses the kill as it would fail.
        if _type(target) is not _int or target <= 0:
            _deny("signalling a process group or every process")
        if _getsid(target) != _session:
            _deny("signalling a process outside the job")

    own = guard_functions + (deny, text, resolve, locate, in_scratch, may_read, check_open, check_write,
                             is_blocked, check_kill)
    codes = [f.__code__ for f in own]
    for constant in sys._getframe().f_code.co_consts:
        if type(constant) is type(deny.__code__) and constant.co_name == "hook":
            codes.append(constant)
    guard_code = frozenset(codes)

    def hook(event, args, _handled=handled, _refused=refused, _deny=deny, _check_open=check_open,
             _check_write=check_write, _locate=locate, _in_scratch=in_scratch, _may_read=may_read,
             _write_events=write_events, _path_only=path_only_events, _read_events=read_events,
             _sealed=sealed_attributes, _is_blocked=is_blocked, _text=text, _builtin_names=builtin_names,
             _roots=read_roots, _check_kill=check_kill, _getpid=os.getpid, _main_pid=os.getpid(),
             _type=type, _int=int, _issubclass=issubclass, _function=type(deny), _guard_code=guard_code,
             _no_module=ImportError):
        if event not in _handled:
            return
        if event in _refused:
            _deny(event)
        if event == "open":
            _check_open(args[0], args[1], args[2])
        elif event in _write_events:
            if not _issubclass(_type(args[0]), _int):
                _check_write(args[0], event)
        elif event in _path_only:
            if _issubclass(_type(args[0]), _int):
                _deny("%s on a descriptor" % (event,))
            _check_write(args[0], event)
        elif event == "os.rename":
            _check_write(args[0], event)
            _check_write(args[1], event)
        elif event in _read_events:
            path = args[0] if args else None
            if path is not None and not _issubclass(_type(path), _int):
                real = _locate(path)
                if not _may_read(real):
                    _deny("%s on %s" % (event, real))
        elif event == "os.chdir":
            if not _issubclass(_type(args[0]), _int):  # a directory descriptor is in scratch
                real = _locate(args[0])
                if not _in_scratch(real):
                    _deny("changing directory to %s" % (real,))
        elif event == "os.fork":
            if _getpid() != _main_pid:
                _deny("forking from a child process")
        elif event == "os.kill" or event == "os.killpg":
            _check_kill(args[0])
        elif event == "import":
            # ImportError, so code with a fallback (``try: import readline``) still runs.
            if _is_blocked(args[0]):
                _deny("importing %s" % (_text(args[0]),), _no_module)
            if args[1] is not None:  # an extension module: only the interpreter's own, never a builtin's name
                name = _text(args[0])
                origin = _locate(args[1])
                inside = False
                for root in _roots:
                    if origin.startswith(root + "/"):
                        inside = True
                if not inside or name.split(".")[-1] in _builtin_names:
                    _deny("loading the extension %s from %s" % (name, origin), _no_module)
        elif event == "object.__setattr__" or event == "object.__delattr__":
            # Only the guard's own functions: namedtuple sets __defaults__, types.coroutine __code__.
            if args[1] in _sealed and _type(args[0]) is _function and args[0].__code__ in _guard_code:
                _deny("changing %s" % (args[1],))
        elif event == "resource.prlimit":
            if args[0] != 0 and args[0] != _getpid():
                _deny("changing another process's limits")

    sys.addaudithook(hook)


if __name__ == "__main__":  # only as ``python -c``; importing this module does nothing
    _install(os.path.realpath(sys.argv[1]))
    del _install, _seal_imports, _prune
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

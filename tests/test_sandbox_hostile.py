"""Hostile programs against the sandbox, in every mode this machine offers.

Each attack must be contained (nothing outside the job is read, written, reached or
killed), get the right status or verdict, and leave no trace: no process of the job
alive afterwards and no scratch directory left behind. The parent (this test process)
must survive every attack and run the next job.

"Contained" for reads means the real content never reaches the job's output: under bwrap
/etc, /root and /work do not exist in the sandbox; under landlock they cannot be opened;
in rlimit mode the guard's audit hook refuses the open and the per-job uid cannot read
root's private files anyway. The escapes once found in the weak mode's guard, with their
variants, are here too and must be contained in every mode (see docs/sandbox.md, "The
weak mode's guard").

No attack is expected to fail here when the tests run as root. Without root (no per-job
uid), rlimit mode cannot kill a child that left the session with setsid: that case is a
strict xfail.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from cascade.sandbox import Limits, SandboxResult, run_python
from cascade.sandbox import modes as sandbox_modes
from cascade.verifiers.code import CodeProblem, judge

REPO_ROOT = Path(__file__).resolve().parents[1]
CANARY = "cascade-canary-7f3a9c"

AVAILABLE_MODES = sandbox_modes.available_modes()

# Every mode is a parameter; one that cannot run on this machine is skipped with the reason.
MODE_PARAMS = [
    pytest.param(m, marks=pytest.mark.skipif(
        m not in AVAILABLE_MODES, reason=f"{m} cannot run here: {sandbox_modes.unavailable_reason(m)}"))
    for m in sandbox_modes.MODES
]
ROOT = os.geteuid() == 0

# Short limits keep the suite fast; attacks that run forever hit the wall limit.
FAST = Limits(cpu_seconds=1, wall_seconds=1.0, memory_mb=256, max_processes=16, max_file_mb=4,
              max_output_bytes=64 * 1024)
SMALL_MEMORY = Limits(cpu_seconds=2, wall_seconds=4, memory_mb=128, max_processes=16, max_file_mb=4,
                      max_output_bytes=64 * 1024)


@dataclass
class Attack:
    name: str
    code: str
    statuses: set[str]
    check: Callable[[SandboxResult], None] | None = None
    limits: Limits = FAST
    # Modes that truly cannot contain this attack, with the reason (strict xfail).
    weak_in: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def scratch_parent(monkeypatch):
    """A private parent for scratch dirs, so 'no scratch left behind' is checkable.

    0711: the job's unprivileged uid must traverse it to reach its own scratch dir.
    """
    parent = Path(tempfile.mkdtemp(prefix="cascade-hostile-"))
    parent.chmod(0o711)
    monkeypatch.setattr(tempfile, "tempdir", str(parent))
    yield parent
    leftovers = list(parent.iterdir())
    if not leftovers:
        parent.rmdir()
    assert not leftovers, f"scratch left behind: {leftovers}"


def _job_uids() -> range | None:
    """The uids this test process's jobs run under (see cascade.sandbox.modes.job_uid)."""
    if not ROOT:
        return None
    base = (1 << 30) + (os.getpid() % (1 << 22)) * 256
    return range(base, base + 256)


def _job_processes() -> list[int]:
    """Processes still running from this test process's sandbox jobs.

    Zombies are skipped: they are dead and hold nothing. (bwrap's namespace init is reaped
    by the machine's pid 1, which may take its time.)
    """
    uids = _job_uids()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            status = Path(entry.path, "status").read_text()
            cmdline = Path(entry.path, "cmdline").read_bytes()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("State", "").strip().startswith("Z"):
            continue
        uid_line = "Uid:" + fields.get("Uid", " -1")
        real_uid = int(uid_line.split()[1])
        if uids is not None and real_uid in uids:
            found.append(int(entry.name))
        elif uids is None and CANARY.encode() in cmdline:
            found.append(int(entry.name))
    return found


def _wait_no_job_processes(seconds: float = 2.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := _job_processes()) and time.monotonic() < deadline:
        time.sleep(0.05)  # a SIGKILLed process needs its parent to reap it
    return left


# --- checks ---------------------------------------------------------------------------

def _absent(*texts: str) -> Callable[[SandboxResult], None]:
    def check(result: SandboxResult) -> None:
        for text in texts:
            assert text not in result.stdout and text not in result.stderr, result

    return check


def _printed(text: str) -> Callable[[SandboxResult], None]:
    def check(result: SandboxResult) -> None:
        assert text in result.stdout, result

    return check


def _host_passwd_line() -> str:
    return Path("/etc/passwd").read_text().splitlines()[0]


def _repo_marker() -> str:
    return Path(REPO_ROOT, "pyproject.toml").read_text().splitlines()[1]  # 'requires = [...]'


ATTACKS = [
    Attack("fork_bomb", "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
           {"timeout"}),
    Attack("memory_bomb", "x = bytearray(8 * 1024 ** 3)\n", {"memory"}),
    Attack("memory_creep", "chunks = []\nwhile True:\n    chunks.append(bytearray(3 * 10 ** 7))\n", {"memory"},
           limits=SMALL_MEMORY),
    Attack("infinite_loop", "while True:\n    pass\n", {"timeout"}),
    Attack("sleep_forever", "import time\ntime.sleep(10 ** 6)\n", {"timeout"}),
    Attack("ignore_sigterm", "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
           "while True:\n    time.sleep(1)\n", {"timeout"}),
    Attack("socket_external",
           "import socket\ntry:\n    s = socket.socket()\n    s.settimeout(3)\n"
           "    s.connect(('192.0.2.1', 80))\n    print('CONNECTED')\nexcept OSError as e:\n    print('blocked', e)\n",
           {"ok"}, _printed("blocked")),
    Attack("read_etc_passwd",
           "try:\n    print(open('/etc/passwd').read())\nexcept OSError as e:\n    print('blocked', e)\n",
           {"ok"}, _absent(_host_passwd_line())),
    Attack("read_repo",
           f"try:\n    print(open({str(REPO_ROOT / 'pyproject.toml')!r}).read())\nexcept OSError as e:\n    print('blocked', e)\n",
           {"ok"}, _absent(_repo_marker())),
    Attack("list_home",
           "import os\nfor d in ('/root', os.path.expanduser('~/.ssh'), '/root/.ssh', '/work'):\n"
           "    try:\n        print(d, os.listdir(d))\n    except OSError as e:\n        print('blocked', d, e)\n",
           {"ok"}, _absent("'.pyenv'", "'shared'", "'main'")),
    Attack("env_secret", "import os\nprint(dict(os.environ))\n", {"ok"}, _absent(CANARY)),
    Attack("proc_environ_of_parent",
           "import os, sys\nfor p in (os.getppid(), 1, int(sys.argv[1])):\n"
           "    try:\n        print(open('/proc/%d/environ' % p, 'rb').read())\n    except OSError as e:\n        print('blocked', e)\n",
           {"ok"}, _absent(CANARY)),
    Attack("shell_out",
           "import os\ntry:\n    os.system('cat /etc/passwd; env')\nexcept OSError as e:\n    print('blocked', e)\n",
           {"ok", "runtime_error"}, _absent(_host_passwd_line())),
    Attack("kill_parent", "import os\nos.kill(os.getppid(), 9)\nprint('after')\n",
           {"ok", "runtime_error", "killed"}),
    Attack("kill_everyone", "import os\nos.kill(-1, 9)\n", {"ok", "runtime_error", "killed"}),
    Attack("ctypes_fork_and_kill_all",
           "import ctypes\nlibc = ctypes.CDLL(None)\nlibc.fork()\nlibc.kill(-1, 9)\n",
           {"ok", "runtime_error", "killed"}),  # "ok": the main process may kill its child first
    Attack("ctypes_segfault", "import ctypes\nctypes.string_at(0)\n", {"runtime_error", "killed"}),
    Attack("flood_stdout", "while True:\n    print('x' * 1000)\n", {"output_limit"}),
    Attack("flood_stderr", "import sys\nwhile True:\n    sys.stderr.write('y' * 1000)\n", {"output_limit"}),
    Attack("orphan_fork",
           "import os, time\nif os.fork() == 0:\n    time.sleep(60)\nprint('parent done')\n",
           {"ok"}),
    Attack("setsid_escape",
           "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(60)\n"
           "    os._exit(0)\nprint('parent done')\n",
           {"ok"},
           weak_in={} if ROOT else {"rlimit": "without root there is no per-job uid to kill by, and setsid leaves the process group"}),
    Attack("subprocess_orphan",
           "try:\n    import subprocess\n    subprocess.Popen(['sleep', '60'])\nexcept OSError as e:\n    print('blocked', e)\n",
           {"ok"}),
    Attack("thread_bomb",
           "import threading, time\nwhile True:\n    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n",
           {"runtime_error", "memory", "timeout"}),
    Attack("recursion_bomb",
           "import sys\nsys.setrecursionlimit(10 ** 8)\ndef f(n):\n    return f(n + 1) + 1\nf(0)\n",
           {"killed", "runtime_error", "memory", "timeout"}),
    Attack("close_outputs_and_sleep", "import os, time\nos.close(1)\nos.close(2)\ntime.sleep(60)\n", {"timeout"}),
    Attack("close_stdin", "import os\nos.close(0)\nprint(input())\n", {"runtime_error"}),
    Attack("huge_file",
           "f = open('big', 'wb')\nwhile True:\n    f.write(b'x' * 1024 * 1024)\n", {"runtime_error"}),
    Attack("many_files", "fs = [open('f%d' % i, 'w') for i in range(100000)]\n", {"runtime_error"}),
    Attack("delete_scratch", "import os, shutil\nshutil.rmtree(os.getcwd())\nprint('deleted')\n",
           {"ok", "runtime_error"}),
    Attack("chdir_root_and_write",
           "import os\nhome = os.getcwd()\ntry:\n    os.chdir('/')\nexcept OSError as e:\n    print('blocked', e)\n"
           "for p in ('pwned', '/tmp/pwned-" + CANARY + "', '/usr/pwned'):\n"
           "    try:\n        open(p, 'w').write('x')\n        print('WROTE', os.path.abspath(p).startswith(home + '/'))\n"
           "    except OSError as e:\n        print('blocked', e)\n",
           {"ok"}, _absent("WROTE False")),
]


# --- escapes from the weak mode's audit hook, and whole-job limits ------------------------
# Pure-Python ways past an in-process guard, each with its variants. The kernel-enforced
# modes contain them by construction; the weak rlimit mode's guard (cascade.sandbox.guard)
# must contain them too. Every program prints ESCAPED (and the secret) when it gets past.

# 1. Switch the guard off through its own frames: take every frame of a refused open's
# traceback and, for every function reachable from those frames, replace its code and its
# defaults with always-true ones and point every string, tuple and set in its closure
# cells at "/" (the old guard's deny function, scratch path and roots).
GUARD_FRAME_TAMPER = """
import types
allow = lambda *args, **kwargs: True
def loosen(value):
    if isinstance(value, str):
        return '/'
    if isinstance(value, (tuple, frozenset, set)):
        return type(value)(['/'])
    if isinstance(value, types.FunctionType):
        return allow
    return value
changed = []
def tamper(function):
    for name, new in (('__code__', lambda: allow.__code__),
                      ('__defaults__', lambda: tuple(map(loosen, function.__defaults__ or ()))),
                      ('__kwdefaults__', lambda: {k: loosen(v) for k, v in (function.__kwdefaults__ or {}).items()})):
        try:
            setattr(function, name, new())
            changed.append(name)
        except Exception:
            pass
    for cell in function.__closure__ or ():
        try:
            cell.cell_contents = loosen(cell.cell_contents)
            changed.append('cell')
        except Exception:
            pass
seen = set()
for _ in range(3):
    try:
        open('/etc/passwd')
    except Exception as exc:
        tb = exc.__traceback__
        while tb is not None:
            frame = tb.tb_frame
            while frame is not None:
                if frame.f_code.co_filename != __file__:
                    for value in list(frame.f_locals.values()):
                        if isinstance(value, types.FunctionType) and id(value) not in seen:
                            seen.add(id(value))
                            tamper(value)
                frame = frame.f_back
            tb = tb.tb_next
print('functions', len(seen), 'changed', sorted(set(changed)))
try:
    print('ESCAPED', open('/etc/passwd').read())
except Exception as exc:
    print('blocked', type(exc).__name__, exc)
"""

# 1b. The same from a signal handler, which runs between any two bytecodes, the guard's
# included, and is handed the frame it interrupted.
GUARD_FRAME_FROM_SIGNAL = """
import signal, time, types
allow = lambda *args, **kwargs: True
grabbed = []
def handler(signum, frame):
    while frame is not None:
        if frame.f_code.co_filename != __file__:
            for value in list(frame.f_locals.values()):
                # the guard's own functions: they come from python -c, not from a file
                if isinstance(value, types.FunctionType) and value.__code__.co_filename.startswith('<'):
                    try:
                        value.__code__ = allow.__code__
                        grabbed.append(value.__name__)
                    except Exception:
                        pass
        frame = frame.f_back
signal.signal(signal.SIGALRM, handler)
signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
text, end = None, time.monotonic() + 0.5
while time.monotonic() < end:
    try:
        text = open('/etc/passwd').read()
        break
    except Exception:
        pass
signal.setitimer(signal.ITIMER_REAL, 0)
print('changed', sorted(set(grabbed)))
print('ESCAPED ' + text if text else 'blocked')
"""

# 1c. Change what the guard's Python code relies on instead of the guard itself:
# builtins, os.path's module globals, os.fsdecode.
GUARD_PATCHED_STDLIB = """
import builtins, os, posixpath
decoy = os.path.join(os.getcwd(), 'decoy')
open('decoy', 'w').write('decoy')
real_open = builtins.open
posixpath._joinrealpath = lambda *args, **kwargs: (decoy, True)
posixpath.abspath = lambda path: path
os.fsdecode = lambda path: decoy
builtins.isinstance = lambda *args: True
builtins.any = lambda *args: True
class Path(str):
    def startswith(self, *args):
        return True
    def __eq__(self, other):
        return True
    __hash__ = str.__hash__
for path in ('/etc/passwd', Path('/etc/passwd')):
    try:
        print('ESCAPED', real_open(path).read())
    except Exception as exc:
        print('blocked', type(exc).__name__, exc)
"""

# 2. dir_fd: the open event does not say which directory a relative path is resolved
# against. From deep inside scratch '../' * 8 stays inside; from scratch's top it does not.
DIR_FD_RELATIVE_OPEN = """
import os
os.makedirs('a/b/c/d/e/f/g/h')
top = os.open('.', os.O_RDONLY)
os.chdir('a/b/c/d/e/f/g/h')
try:
    fd = os.open('../' * 8 + 'etc/passwd', os.O_RDONLY, dir_fd=top)
    print('ESCAPED', os.read(fd, 1 << 20).decode())
except OSError as exc:
    print('blocked', exc)
"""

# 2b. A directory outside scratch as the base, with a relative path free of '..':
# /proc/self/root is the whole file system.
DIR_FD_OUTSIDE_BASE = """
import os
for base in ('/proc/self', '/proc/%d' % os.getpid(), '/usr', '/'):
    for flags in (os.O_RDONLY, os.O_RDONLY | os.O_DIRECTORY, getattr(os, 'O_PATH', 0)):
        try:
            fd = os.open(base, flags)
        except OSError as exc:
            print('blocked', base, exc)
            continue
        for relative in ('root/etc/passwd', 'etc/passwd', '../etc/passwd'):
            try:
                handle = os.open(relative, os.O_RDONLY, dir_fd=fd)
                print('ESCAPED', os.read(handle, 1 << 20).decode())
            except OSError as exc:
                print('blocked', base, relative, exc)
        os.close(fd)
"""

# 2c. A symlink made through a dir_fd, checked against a different directory than the
# one it lands in, then followed through the same dir_fd.
SYMLINK_THROUGH_DIR_FD = """
import os
os.makedirs('a/b/c/d/e/f/g/h')
top = os.open('.', os.O_RDONLY)
os.chdir('a/b/c/d/e/f/g/h')
try:
    os.symlink('../' * 8 + 'etc', 'l', dir_fd=top)
    handle = os.open('l/passwd', os.O_RDONLY, dir_fd=top)
    print('ESCAPED', os.read(handle, 1 << 20).decode())
except OSError as exc:
    print('blocked', exc)
for source in ('/etc/passwd', '/etc'):
    try:
        os.symlink(source, 'link-' + source.replace('/', '_'))
        print('ESCAPED', open('link-' + source.replace('/', '_') + ('' if source.endswith('passwd') else '/passwd')).read())
    except OSError as exc:
        print('blocked', exc)
"""

# 3. A thread moves the working directory between the guard's check and the open.
CHDIR_RACE = """
import os, threading, time
os.makedirs('etc')
with open('etc/passwd', 'w') as handle:
    handle.write('decoy')
home = os.getcwd()
done = False
def flip():
    while not done:
        try:
            os.chdir('/')
        except OSError:
            pass
        os.chdir(home)
thread = threading.Thread(target=flip)
thread.start()
found, end = None, time.monotonic() + 0.7
while found is None and time.monotonic() < end:
    try:
        with open('etc/passwd') as handle:
            text = handle.read()
        if text != 'decoy':
            found = text
    except OSError:
        pass
done = True
thread.join()
print('ESCAPED ' + found if found else 'no race won')
"""

# 3b. The same race with both directories inside scratch (so each chdir is allowed) and a
# relative path that stays inside from the deep one and reaches /etc from the top one.
CHDIR_RACE_INSIDE = """
import os, threading, time
home = os.getcwd()
os.makedirs('a/b/c/d/e/f/g/h')
deep = os.path.join(home, 'a/b/c/d/e/f/g/h')
path = '../' * home.count('/') + 'etc/passwd'
done = False
def flip():
    while not done:
        os.chdir(deep)
        os.chdir(home)
thread = threading.Thread(target=flip)
thread.start()
found, end = None, time.monotonic() + 0.7
while found is None and time.monotonic() < end:
    try:
        with open(path) as handle:
            found = handle.read()
    except OSError:
        pass
done = True
thread.join()
print('ESCAPED ' + found if found else 'no race won')
"""

# 4. A sub-interpreter has no audit hook: reach one through every loader route.
SUBINTERPRETERS = """
import importlib, importlib.util, os, shutil
payload = "try:\\n    print('ESCAPED', open('/etc/passwd').read())\\nexcept OSError as e:\\n    print('blocked', e)\\n"
def testcapi():
    importlib.import_module('_testcapi').run_in_subinterp(payload)
def import_statement():
    import _testcapi
    _testcapi.run_in_subinterp(payload)
def xxsubinterpreters():
    module = importlib.import_module('_xxsubinterpreters')
    module.run_string(module.create(), payload)
def interpreters():
    module = importlib.import_module('_interpreters')
    module.exec(module.create(), payload)
def create_dynamic():
    import _imp
    _imp.create_dynamic(importlib.util.find_spec('_testcapi')).run_in_subinterp(payload)
def copied_library():
    origin = importlib.util.find_spec('_testcapi').origin
    os.makedirs('lib', exist_ok=True)
    copy = os.path.join(os.getcwd(), 'lib', os.path.basename(origin))
    shutil.copyfile(origin, copy)
    spec = importlib.util.spec_from_file_location('_testcapi', copy)
    importlib.util.module_from_spec(spec).run_in_subinterp(payload)
def testinternalcapi():
    importlib.import_module('_testinternalcapi')
    print('imported _testinternalcapi')
for route in (testcapi, import_statement, xxsubinterpreters, interpreters, create_dynamic, copied_library,
              testinternalcapi):
    try:
        route()
    except BaseException as exc:
        print('blocked', route.__name__, type(exc).__name__, exc)
"""

# 5. _posixsubprocess.fork_exec starts a program with no audit event; importlib's own
# import path raises no import event either. Every way to reach it.
POSIXSUBPROCESS_SHELL = """
import importlib, os, sys
def shell(fork_exec):
    r, w = os.pipe()
    er, ew = os.pipe()
    pid = fork_exec([b'/bin/sh', b'-c', b'cat /etc/passwd && echo ESCAPED'], [b'/bin/sh'], True, (w,), None, None,
                    -1, -1, -1, w, -1, w, er, ew, False, False, -1, None, None, None, -1, None, False)
    os.close(w)
    os.close(ew)
    out = b''
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        out += chunk
    os.waitpid(pid, 0)
    print(out.decode())
def import_module():
    return importlib.import_module('_posixsubprocess').fork_exec
def fresh_import():
    sys.modules.pop('_posixsubprocess', None)
    return importlib.import_module('_posixsubprocess').fork_exec
def create_builtin():
    import _imp
    from importlib.machinery import BuiltinImporter, ModuleSpec
    return _imp.create_builtin(ModuleSpec('_posixsubprocess', BuiltinImporter, origin='built-in')).fork_exec
def builtin_importer():
    from importlib.machinery import BuiltinImporter
    sys.modules.pop('_posixsubprocess', None)
    spec = BuiltinImporter.find_spec('_posixsubprocess')
    return BuiltinImporter.create_module(spec).fork_exec
def subprocess_module():
    import subprocess
    return subprocess._posixsubprocess.fork_exec
for route in (import_module, fresh_import, create_builtin, builtin_importer, subprocess_module):
    try:
        shell(route())
    except BaseException as exc:
        print('blocked', route.__name__, type(exc).__name__, exc)
"""

# Native code that reads or creates files, or reaches the network, without an open or a
# socket of the job's own: the passwd database, readline's history file, sqlite and dbm
# files, name lookups.
NATIVE_SYSTEM_ACCESS = """
import sys
canary = sys.argv[2]
def passwd_database():
    import pwd
    entries = pwd.getpwall()
    print('ESCAPED' if entries else 'empty', '\\n'.join(':'.join(map(str, entry)) for entry in entries))
def readline_history():
    import readline
    readline.read_history_file('/etc/passwd')
    print('ESCAPED', readline.get_history_item(1))
def sqlite_file():
    import sqlite3
    sqlite3.connect('/tmp/cascade-pwned-sqlite-' + canary).execute('create table t (x)')
    print('ESCAPED sqlite')
def dbm_file():
    import dbm.ndbm
    dbm.ndbm.open('/tmp/cascade-pwned-dbm-' + canary, 'c')['k'] = 'v'
    print('ESCAPED dbm')
def name_lookup():
    import socket
    print('ESCAPED', socket.getaddrinfo('localhost', 80))
for route in (passwd_database, readline_history, sqlite_file, dbm_file, name_lookup):
    try:
        route()
    except BaseException as exc:
        print('blocked', route.__name__, type(exc).__name__, exc)
"""

# Functions with no audit event that create files or signal processes.
UNAUDITED_FILE_CREATION = """
import os, stat, sys
for name, make in (('fifo', lambda p: os.mkfifo(p)), ('node', lambda p: os.mknod(p, 0o600 | stat.S_IFREG))):
    path = '/tmp/cascade-pwned-%s-%s' % (name, sys.argv[2])
    try:
        make(path)
        print('ESCAPED created', path)
    except (OSError, AttributeError) as exc:
        print('blocked', name, exc)
"""

MEMORY_ACROSS_PROCESSES = """
import os, time
r, w = os.pipe()
for _ in range(3):
    if os.fork() == 0:
        block = b'x' * (400 * 1024 * 1024)  # filled, so resident
        os.write(w, b'+')
        time.sleep(30)
        os._exit(0)
held = 0
while held < 3:
    held += len(os.read(r, 3))
print('HELD 1200 MB')
time.sleep(2)
"""

FILL_DISK = """
n = 0
while True:
    with open('f%d' % n, 'wb') as handle:
        handle.write(b'x' * (1 << 20))
    n += 1
    print(n, flush=True)
"""

ESCAPE_LIMITS = Limits(cpu_seconds=3, wall_seconds=4, memory_mb=256, max_processes=16, max_file_mb=4,
                       max_output_bytes=64 * 1024)


def _nothing_created_in_tmp(result: SandboxResult) -> None:
    """No /tmp/cascade-pwned-*<canary>* file (the attack names what it makes that way)."""
    found = [path for path in Path("/tmp").glob(f"cascade-pwned-*{CANARY}*")]
    for path in found:
        path.unlink()
    assert not found and "ESCAPED" not in result.stdout, (found, result)


def _wrote_at_most(megabytes: int) -> Callable[[SandboxResult], None]:
    def check(result: SandboxResult) -> None:
        counts = [int(line) for line in result.stdout.split() if line.isdigit()]
        assert counts and max(counts) <= megabytes, (max(counts or [0]), result.status)

    return check


ATTACKS += [
    Attack("guard_frame_tamper", GUARD_FRAME_TAMPER, {"ok"}, _absent("ESCAPED", _host_passwd_line())),
    Attack("guard_frame_from_signal", GUARD_FRAME_FROM_SIGNAL, {"ok"}, _absent("ESCAPED", _host_passwd_line()),
           limits=ESCAPE_LIMITS),
    Attack("guard_patched_stdlib", GUARD_PATCHED_STDLIB, {"ok"}, _absent("ESCAPED", _host_passwd_line())),
    Attack("dir_fd_relative_open", DIR_FD_RELATIVE_OPEN, {"ok"}, _absent("ESCAPED", _host_passwd_line())),
    Attack("dir_fd_outside_base", DIR_FD_OUTSIDE_BASE, {"ok"}, _absent("ESCAPED", _host_passwd_line())),
    Attack("symlink_through_dir_fd", SYMLINK_THROUGH_DIR_FD, {"ok"}, _absent("ESCAPED", _host_passwd_line())),
    Attack("chdir_race", CHDIR_RACE, {"ok"}, _absent("ESCAPED", _host_passwd_line()), limits=ESCAPE_LIMITS),
    Attack("chdir_race_inside_scratch", CHDIR_RACE_INSIDE, {"ok"}, _absent("ESCAPED", _host_passwd_line()),
           limits=ESCAPE_LIMITS),
    Attack("subinterpreters", SUBINTERPRETERS, {"ok"}, _absent("ESCAPED", _host_passwd_line()),
           limits=ESCAPE_LIMITS),
    Attack("posixsubprocess_fork_exec_shell", POSIXSUBPROCESS_SHELL, {"ok"}, _absent("ESCAPED", _host_passwd_line()),
           limits=ESCAPE_LIMITS),
    Attack("unaudited_file_creation", UNAUDITED_FILE_CREATION, {"ok"}, _nothing_created_in_tmp),
    Attack("native_system_access", NATIVE_SYSTEM_ACCESS, {"ok"}, _nothing_created_in_tmp),
    # memory_mb is the whole job's: three processes of 400 MB each do not fit in 512 MB.
    Attack("memory_across_processes", MEMORY_ACROSS_PROCESSES, {"memory", "runtime_error"}, _absent("HELD"),
           limits=Limits(cpu_seconds=5, wall_seconds=8, memory_mb=512, max_processes=16)),
    # Many files, each under the per-file cap: the scratch directory's total is capped.
    # The cap is sampled (cascade.sandbox.watch): a job writing at page-cache speed gets
    # a few tens of MB past it before it is killed.
    Attack("fill_disk", FILL_DISK, {"output_limit"}, _wrote_at_most(16 + 100),
           limits=Limits(cpu_seconds=10, wall_seconds=10, max_file_mb=4, max_disk_mb=16)),
]


def _params() -> list:
    params = []
    for attack in ATTACKS:
        for mode in sandbox_modes.MODES:
            marks = []
            if mode not in AVAILABLE_MODES:
                marks.append(pytest.mark.skip(reason=f"{mode} cannot run here: {sandbox_modes.unavailable_reason(mode)}"))
            if mode in attack.weak_in:
                marks.append(pytest.mark.xfail(strict=True, reason=attack.weak_in[mode]))
            params.append(pytest.param(attack, mode, id=f"{attack.name}-{mode}", marks=marks))
    return params


@pytest.mark.parametrize(("attack", "mode"), _params())
def test_attack_is_contained(attack: Attack, mode: str, scratch_parent, monkeypatch):
    monkeypatch.setenv("CASCADE_CANARY_SECRET", CANARY)
    parent_mode = scratch_parent.stat().st_mode
    result = run_python(attack.code, limits=attack.limits, mode=mode, argv=[str(os.getpid()), CANARY])
    assert scratch_parent.stat().st_mode == parent_mode, "the runner changed the scratch parent's permissions"
    assert result.mode == mode
    assert result.status in attack.statuses, result
    if attack.check:
        attack.check(result)
    assert len(result.stdout) <= attack.limits.max_output_bytes
    assert not _wait_no_job_processes(), "processes of the job outlived it"
    # The parent survived and still answers the next job.
    after = run_python("print(6 * 7)", mode=mode)
    assert (after.status, after.stdout) == ("ok", "42\n")


@pytest.mark.parametrize("mode", MODE_PARAMS)
def test_loopback_listener_is_unreachable(mode, scratch_parent):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    code = (
        "import socket\ntry:\n    s = socket.create_connection(('127.0.0.1', %d), timeout=1)\n"
        "    s.sendall(b'hello')\n    print('CONNECTED')\nexcept OSError as e:\n    print('blocked', e)\n" % port
    )
    try:
        result = run_python(code, limits=FAST, mode=mode)
        assert result.status == "ok" and "blocked" in result.stdout, result
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever connected
    finally:
        listener.close()


@pytest.mark.parametrize("mode", MODE_PARAMS)
def test_external_connect_fails_fast(mode, scratch_parent):
    code = "import socket\ntry:\n    socket.create_connection(('192.0.2.1', 80), timeout=5)\nexcept OSError as e:\n    print('blocked')\n"
    result = run_python(code, limits=Limits(wall_seconds=10), mode=mode)
    assert result.stdout == "blocked\n"
    assert result.wall_time < 3.0  # refused at once, not left to time out against TEST-NET


@pytest.mark.parametrize("mode", MODE_PARAMS)
def test_planted_secret_file_is_unreadable(mode, scratch_parent):
    secret_dir = Path(tempfile.mkdtemp(prefix="cascade-secret-", dir="/tmp"))
    try:
        secret = secret_dir / "id_rsa"
        secret.write_text(CANARY)
        secret.chmod(0o600)
        code = "try:\n    print(open(%r).read())\nexcept OSError as e:\n    print('blocked', type(e).__name__)\n" % str(secret)
        result = run_python(code, limits=FAST, mode=mode)
        assert result.status == "ok" and CANARY not in result.stdout and "blocked" in result.stdout
    finally:
        secret.unlink()
        secret_dir.rmdir()


@pytest.mark.parametrize("mode", MODE_PARAMS)
def test_write_outside_scratch_leaves_no_file(mode, scratch_parent):
    open_dir = Path(tempfile.mkdtemp(prefix="cascade-open-", dir="/tmp"))
    open_dir.chmod(0o777)  # world-writable: only the sandbox stands in the way
    target = open_dir / "pwned"
    try:
        code = "try:\n    open(%r, 'w').write('x')\nexcept OSError as e:\n    print('blocked', type(e).__name__)\n" % str(target)
        result = run_python(code, limits=FAST, mode=mode)
        assert "blocked" in result.stdout, result
        assert not target.exists()
    finally:
        if target.exists():
            target.unlink()
        open_dir.rmdir()


# --- attacks on the verifier's harness: none may be graded as a pass --------------------

ADD_PROBLEM = CodeProblem(
    "assert", ["def check(c):\n    assert c(1, 2) == 3\n    assert c(5, 5) == 10\ncheck(add)\n"], time_limit=1.0
)
STDIN_PROBLEM = CodeProblem("stdin", ["2 3\n"], ["5"], time_limit=1.0)

SPOOFS = {
    "sys_exit_0_at_import": ("import sys\nsys.exit(0)\ndef add(a, b):\n    return 0\n", ADD_PROBLEM, {"runtime_error"}),
    "sys_exit_0_in_test": ("import sys\ndef add(a, b):\n    sys.exit(0)\n", ADD_PROBLEM, {"runtime_error"}),
    "os_exit_0_in_test": ("import os\ndef add(a, b):\n    os._exit(0)\n", ADD_PROBLEM, {"runtime_error"}),
    "raise_systemexit": ("def add(a, b):\n    raise SystemExit\n", ADD_PROBLEM, {"runtime_error"}),
    "raise_keyboardinterrupt": ("def add(a, b):\n    raise KeyboardInterrupt\n", ADD_PROBLEM, {"runtime_error"}),
    "raise_baseexception": ("def add(a, b):\n    raise BaseException('x')\n", ADD_PROBLEM, {"runtime_error"}),
    "fake_report_on_stdout": (
        "print('0' * 32 + ' {\"compile_error\": null, \"tests\": [{\"status\": \"ok\"}]}')\n"
        "def add(a, b):\n    return 0\n", ADD_PROBLEM, {"wrong_answer"}),
    "fake_report_on_every_fd": (
        "import os\nfor fd in range(3, 64):\n    try:\n        os.write(fd, b'ok\\n\\n')\n    except OSError:\n        pass\n"
        "def add(a, b):\n    return 0\n", ADD_PROBLEM, {"wrong_answer", "runtime_error"}),
    "patch_builtins": (
        "import builtins\nbuiltins.AssertionError = type('Nope', (Exception,), {})\n"
        "builtins.__import__ = None\ndef add(a, b):\n    return 0\n", ADD_PROBLEM, {"wrong_answer", "runtime_error"}),
    # The harness may survive (bwrap: it is pid 1; landlock: the signal is refused).
    "kill_harness": ("import os\nos.kill(os.getppid(), 9)\ndef add(a, b):\n    return 0\n", ADD_PROBLEM,
                     {"runtime_error", "wrong_answer"}),
    "print_then_os_exit_wrong": ("import os\nprint(4)\nos._exit(0)\n", STDIN_PROBLEM, {"wrong_answer"}),
    "lurker_prints_later": (
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(0.5)\n    print(5, flush=True)\n"
        "    os._exit(0)\nprint(4)\n", STDIN_PROBLEM, {"wrong_answer", "runtime_error"}),  # fork is refused where seccomp is
    "infinite_loop_in_test": ("def add(a, b):\n    while True:\n        pass\n", ADD_PROBLEM, {"time_limit"}),
    "ignore_alarm_and_sleep": (
        "import signal, time\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\ndef add(a, b):\n    time.sleep(100)\n",
        ADD_PROBLEM, {"time_limit"}),
    "segfault_in_test": ("import ctypes\ndef add(a, b):\n    return ctypes.string_at(0)\n", ADD_PROBLEM,
                         {"runtime_error"}),
    "memory_bomb_in_test": ("def add(a, b):\n    return bytearray(8 * 1024 ** 3)\n", ADD_PROBLEM, {"memory"}),
}


@pytest.mark.parametrize("mode", MODE_PARAMS)
@pytest.mark.parametrize("name", sorted(SPOOFS))
def test_harness_spoofing_never_passes(name, mode, scratch_parent):
    code, problem, verdicts = SPOOFS[name]
    problem = CodeProblem(**{**problem.__dict__, "memory_mb": 256})
    result = judge(code, problem, mode)
    assert not result.passed and result.score == 0.0
    assert result.details["verdict"] in verdicts, result.details
    assert result.details["mode"] == mode
    assert not _wait_no_job_processes()


@pytest.mark.parametrize("mode", MODE_PARAMS)
def test_honest_solution_still_passes_after_attacks(mode, scratch_parent):
    assert judge("def add(a, b):\n    return a + b\n", ADD_PROBLEM, mode).passed
    assert judge("a, b = map(int, input().split())\nprint(a + b)\n", STDIN_PROBLEM, mode).passed


@pytest.mark.parametrize("mode", MODE_PARAMS)
def test_job_deleting_its_scratch_leaves_the_parent_alone(mode, monkeypatch):
    """Like /tmp: world-writable and sticky, so the job's uid may remove its own scratch
    directory; cleaning up after it must not chmod the parent (it once became 0700,
    and every later job failed)."""
    parent = Path(tempfile.mkdtemp(prefix="cascade-sticky-"))
    parent.chmod(0o1777)
    monkeypatch.setattr(tempfile, "tempdir", str(parent))
    code = (
        "import os, shutil\nhere = os.getcwd()\nshutil.rmtree(here, ignore_errors=True)\n"
        "try:\n    os.rmdir(here)\nexcept OSError as e:\n    print('kept', e)\n"
        "print('gone' if not os.path.exists(here) else 'still there')\n"
    )
    try:
        result = run_python(code, limits=FAST, mode=mode)
        assert result.status in ("ok", "runtime_error"), result
        assert oct(parent.stat().st_mode & 0o7777) == oct(0o1777)
        after = run_python("print(6 * 7)", mode=mode)
        assert (after.status, after.stdout) == ("ok", "42\n")
        assert not list(parent.iterdir())
    finally:
        for leftover in parent.iterdir():
            leftover.rmdir()
        parent.rmdir()


def _zombie_bwraps() -> set[int]:
    """Defunct bwrap processes of this test process's jobs (by their per-job uid: other
    programs on the machine may leave their own)."""
    uids = _job_uids()
    found = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
                owner = os.stat(entry.path).st_uid
            except OSError:
                continue
            if "(bwrap)" in stat and stat[stat.rfind(")") + 2] == "Z" and uids is not None and owner in uids:
                found.add(int(entry.name))
    return found


@pytest.mark.skipif("bwrap" not in AVAILABLE_MODES, reason="bwrap cannot start here")
@pytest.mark.skipif(not ROOT, reason="a defunct process is told apart from other programs' by the per-job uid")
def test_bwrap_jobs_leave_no_defunct_process(scratch_parent):
    before = _zombie_bwraps()
    for code in ("print(1)", "import os\nif os.fork() == 0:\n    import time\n    time.sleep(30)\n", "while True: pass"):
        run_python(code, limits=FAST, mode="bwrap")
    time.sleep(0.2)
    assert not _zombie_bwraps() - before

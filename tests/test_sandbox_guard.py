"""The weak rlimit mode's guard (cascade.sandbox.guard): its hook has no state a job can
change, and ordinary candidate code still runs under it.

The attacks themselves are in tests/test_sandbox_hostile.py, in every mode.
"""

from __future__ import annotations

import dis
import tempfile
import types
from pathlib import Path

import pytest

from cascade.sandbox import Limits, run_python
from cascade.sandbox import modes as sandbox_modes

GUARD = Path(__file__).resolve().parents[1] / "src" / "cascade" / "sandbox" / "guard.py"
# Opcodes that read or write state outside a function's own frame and constants.
_OUTSIDE_STATE = {"LOAD_GLOBAL", "LOAD_NAME", "STORE_GLOBAL", "STORE_NAME", "LOAD_DEREF", "STORE_DEREF",
                  "LOAD_CLASSDEREF", "LOAD_CLOSURE", "DELETE_GLOBAL", "DELETE_DEREF"}


def _code_objects(code: types.CodeType):
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield constant
            yield from _code_objects(constant)


def _guard_functions() -> list[types.CodeType]:
    """The code of every function that runs after the hook is installed."""
    module = compile(GUARD.read_text(encoding="utf-8"), str(GUARD), "exec")
    by_name = {code.co_name: code for code in _code_objects(module)}
    runtime = list(_code_objects(by_name["_install"]))
    runtime += [code for code in _code_objects(by_name["_seal_imports"]) if code.co_name in ("create_builtin", "fork_exec")]
    return runtime


def test_guard_functions_read_nothing_a_job_can_change():
    """Module globals, builtins and closure cells are all writable from the job's code: the
    hook and its helpers may use only their own arguments (defaults bound at install time)."""
    functions = _guard_functions()
    assert {"hook", "resolve", "locate", "check_open", "create_builtin", "fork_exec"} <= {c.co_name for c in functions}
    for code in functions:
        assert not code.co_freevars and not code.co_cellvars, (code.co_name, code.co_freevars, code.co_cellvars)
        outside = [(i.opname, i.argval) for i in dis.get_instructions(code) if i.opname in _OUTSIDE_STATE]
        assert not outside, (code.co_name, outside)


ORDINARY_CODE = r'''
import asyncio, bisect, collections, dataclasses, decimal, fractions, functools, heapq, itertools, json, math
import os, pathlib, pickle, random, re, string, subprocess, sys, threading, traceback, types, typing
from collections import namedtuple
Point = namedtuple("Point", "x y", defaults=(0,))
T = typing.TypeVar("T")
@dataclasses.dataclass
class Box:
    items: list
assert pickle.loads(pickle.dumps(Box([Point(1)]))) == Box([Point(1, 0)])
try:
    1 / 0
except ZeroDivisionError:
    assert "ZeroDivisionError" in traceback.format_exc()
results = []
worker = threading.Thread(target=lambda: results.append(sum(range(10))))
threading.stack_size(1 << 26)
worker.start()
worker.join()
assert results == [45]
os.makedirs("data/sub")
pathlib.Path("data/sub/x.txt").write_text("hello")
home = os.getcwd()
os.chdir("data")
assert open("sub/x.txt").read() == "hello"
os.chdir(home)
os.rename("data/sub/x.txt", "data/y.txt")
assert sorted(os.listdir("data")) == ["sub", "y.txt"]
assert os.listdir(sys.prefix)
assert open(os.path.join(os.path.dirname(os.__file__), "os.py")).read(10)
@types.coroutine
def legacy():
    yield
try:
    subprocess.run(["true"])
    raise SystemExit("subprocess ran")
except PermissionError:
    pass
print(sum(map(int, sys.stdin.read().split())))
'''


@pytest.mark.skipif("rlimit" not in sandbox_modes.available_modes(), reason="rlimit mode cannot run here")
def test_ordinary_candidate_code_runs_under_the_guard(monkeypatch):
    """Threads, files and directories in scratch, the standard library's introspection
    (namedtuple's defaults, typing, traceback, dataclasses, types.coroutine's code swap),
    importing subprocess (running it is refused), stdin. (asyncio's event loop needs a
    socket pair: refused here as in the landlock mode.)"""
    monkeypatch.setattr(tempfile, "tempdir", None)
    result = run_python(ORDINARY_CODE, stdin="1 2 3\n", limits=Limits(wall_seconds=20, cpu_seconds=10), mode="rlimit")
    assert (result.status, result.stdout) == ("ok", "6\n"), result.stderr

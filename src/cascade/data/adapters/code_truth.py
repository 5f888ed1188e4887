"""Code-problem ground truths in the ``code`` verifier's terms, from the published test layouts.

Shared by the LiveCodeBench, TACO/APPS, DeepCoder and verl adapters. The verifier's styles
(``cascade.verifiers.code``): ``stdin`` tests ``{"input": str, "output": str}``, ``call``
tests ``{"input": [args...] | str, "output": value}`` with ``fn_name``, and ``assert``
programs. Layouts read here:

- LiveCodeBench: a list of ``{"input", "output", "testtype": "stdin" | "functional"}``; a
  functional test's input is one JSON value per line and ``metadata.func_name`` names the
  function;
- TACO/APPS ``input_output``: ``{"inputs": [...], "outputs": [...], "fn_name"?}``. With
  ``fn_name`` each input is the argument list; an output is stored wrapped in a one-element
  list (the APPS/TACO judges accept the bare value or that wrapping), and is unwrapped here,
  so a function that really returns a one-element list must return the bare element to
  pass: the one known disagreement. Without ``fn_name``, a list input/output (lines) is
  joined with newlines, as the TACO judge does;
- PrimeIntellect (in DeepCoder): ``[{"input", "output", "type": "stdin_stdout" |
  "function_call", "fn_name"?}]``, read like TACO;
- a plain ``[{"input", "output"}]`` list (Codeforces in DeepCoder) is stdin.
Torch-free.
"""

from __future__ import annotations

from typing import Any, Mapping

from cascade.data.adapters.base import Row

# What LeetCode's judge has imported before a solution runs (``List``, ``Counter``, ``inf``...).
LEETCODE_PRELUDE = (
    "from typing import *\n"
    "from collections import *\n"
    "from itertools import *\n"
    "from functools import *\n"
    "from heapq import *\n"
    "from bisect import *\n"
    "from math import *\n"
    "from string import *\n"
    "import bisect, collections, functools, heapq, itertools, math, operator, random, re, string\n"
)

STDIN_INSTRUCTION = ("Read the input from standard input, solve the problem, and print the answer to "
                     "standard output. Put your complete Python program in one ```python block.")
STARTER_INSTRUCTION = "Complete the following starter code and put the whole solution in one ```python block:"
FUNCTION_INSTRUCTION = "Write a Python function `{fn}` that solves the problem, and put the whole solution in one ```python block."


def code_prompt(question: str, starter_code: str | None, fn_name: str | None) -> str:
    """The user prompt: the statement plus how to answer (stdin program or the function)."""
    question = question.rstrip()
    if starter_code and starter_code.strip():
        return f"{question}\n\n{STARTER_INSTRUCTION}\n```python\n{starter_code.rstrip()}\n```"
    if fn_name:
        return f"{question}\n\n{FUNCTION_INSTRUCTION.format(fn=fn_name)}"
    return f"{question}\n\n{STDIN_INSTRUCTION}"


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    return None


def _unwrapped(value: Any) -> Any:
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def from_lcb_tests(row: Row, field: str, tests: Any, fn_name: str | None) -> dict[str, Any] | None:
    """A LiveCodeBench test list (public + private concatenated by the caller)."""
    if not isinstance(tests, list) or not tests:
        row.bad(field, "must be a non-empty list of tests")
        return None
    kinds = {t.get("testtype") for t in tests if isinstance(t, Mapping)}
    bad = [i for i, t in enumerate(tests) if not (isinstance(t, Mapping) and isinstance(t.get("input"), str)
                                                   and isinstance(t.get("output"), str))]
    if bad:
        row.bad(f"{field}[{bad[0]}]", f"{len(bad)} test(s) lack a string input/output")
        return None
    if kinds - {"stdin", "functional"} or len(kinds) != 1:
        row.bad(field, f"testtype must be all 'stdin' or all 'functional' (got {sorted(map(str, kinds))})")
        return None
    pairs = [{"input": t["input"], "output": t["output"]} for t in tests]
    if kinds == {"functional"}:
        if not fn_name:
            row.bad("metadata", "functional tests need metadata.func_name")
            return None
        return {"style": "call", "fn_name": fn_name, "tests": pairs}
    return {"style": "stdin", "tests": pairs}


def from_input_output(row: Row, field: str, value: Any) -> dict[str, Any] | None:
    """A TACO/APPS ``input_output`` object (already decoded from JSON)."""
    if not isinstance(value, Mapping):
        row.bad(field, "must be an object with inputs and outputs")
        return None
    inputs, outputs, fn_name = value.get("inputs"), value.get("outputs"), value.get("fn_name")
    if not isinstance(inputs, list) or not isinstance(outputs, list) or not inputs:
        row.bad(field, "inputs and outputs must be non-empty lists")
        return None
    if len(inputs) != len(outputs):
        row.bad(field, f"{len(inputs)} inputs but {len(outputs)} outputs")
        return None
    if fn_name is not None:
        if not isinstance(fn_name, str) or not fn_name.isidentifier():
            row.bad(f"{field}.fn_name", f"not a Python identifier: {fn_name!r}")
            return None
        tests = []
        for i, (args, out) in enumerate(zip(inputs, outputs)):
            if not isinstance(args, list):
                row.bad(f"{field}.inputs[{i}]", "a function test's input must be the argument list")
                return None
            tests.append({"input": args, "output": _unwrapped(out)})
        return {"style": "call", "fn_name": fn_name, "tests": tests}
    tests = []
    for i, (given, wanted) in enumerate(zip(inputs, outputs)):
        given_text, wanted_text = _text(given), _text(wanted)
        if given_text is None or wanted_text is None:
            row.bad(f"{field}.{'inputs' if given_text is None else 'outputs'}[{i}]",
                    "a stdin test must be text (or a list of lines)")
            return None
        tests.append({"input": given_text, "output": wanted_text})
    return {"style": "stdin", "tests": tests}


def from_test_list(row: Row, field: str, tests: Any, fn_name: str | None) -> dict[str, Any] | None:
    """A list of test objects in the LiveCodeBench, PrimeIntellect or plain layout."""
    if isinstance(tests, Mapping):
        if "functional" in tests or "test" in tests:
            code = tests.get("functional", tests.get("test"))
            if not isinstance(code, str) or not code.strip():
                row.bad(field, "the functional test must be a string of code")
                return None
            return {"style": "assert", "functional": code, "prelude": LEETCODE_PRELUDE}
        return from_input_output(row, field, tests)
    if not isinstance(tests, list) or not tests:
        row.bad(field, "must be a non-empty list of tests or an {inputs, outputs} object")
        return None
    first = tests[0] if isinstance(tests[0], Mapping) else {}
    if "testtype" in first:
        return from_lcb_tests(row, field, tests, fn_name)
    if "type" in first:  # PrimeIntellect
        call = first.get("type") == "function_call"
        name = first.get("fn_name") or fn_name
        if not all(isinstance(t, Mapping) for t in tests):
            row.bad(field, "every test must be an object")
            return None
        io = {"inputs": [t.get("input") for t in tests], "outputs": [t.get("output") for t in tests]}
        if call:
            io["fn_name"] = name
        return from_input_output(row, field, io)
    if not all(isinstance(t, Mapping) for t in tests):
        row.bad(field, "every test must be an object with input and output")
        return None
    return from_input_output(row, field, {"inputs": [t.get("input") for t in tests],
                                          "outputs": [t.get("output") for t in tests]})

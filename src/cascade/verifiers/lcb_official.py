"""LiveCodeBench's own grading rules, for scores that stand beside published LCB numbers.

The rules below restate what LiveCodeBench's runner does (github.com/LiveCodeBench/LiveCodeBench,
``lcb_runner/evaluation/testing_util.py`` and ``compute_code_generation_metrics.py``, MIT
licence); ``tests/test_lcb_official.py`` checks them case by case against that runner's
verdicts:

- **Import block.** The runner puts a fixed block of standard-library imports before the
  candidate's code (``from typing import *``, ``from collections import *``... and
  ``sys.setrecursionlimit(50000)``), so LeetCode-style solutions that use ``List`` or
  ``Counter`` without importing them run. ``LCB_IMPORT_BLOCK`` is that block.
- **Stdin tests.** The whole output and the expected text are stripped, split on ``\\n``, and
  each line stripped; the line counts must agree. Two lines match when equal as text, or
  else when both split on whitespace into tokens that all parse as ``decimal.Decimal`` and
  the two lists are equal as numbers (``1.0`` equals ``1``, ``0.1`` does not equal
  ``0.1000001``: no tolerance).
- **Functional (LeetCode) tests.** The method is ``Solution().<func_name>`` when the code
  contains ``class Solution``, each input line is one JSON argument, the expected output is
  JSON, a returned tuple becomes a list, and the comparison is Python ``==`` (no float
  tolerance).
- **Time.** 6 seconds per test (the runner's ``--timeout`` default).

The tolerant comparison of ``cascade.verifiers.code`` (numbers within 1e-6) stays the
default for RL rewards; a code ground truth opts into these rules with ``"compare": "lcb"``.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

LCB_TIME_LIMIT = 6.0

# The modules the runner star-imports and then imports by name, in its order.
_LCB_MODULES = ("string", "re", "datetime", "collections", "heapq", "bisect", "copy", "math", "random",
                "statistics", "itertools", "functools", "operator", "io", "sys", "json")
LCB_IMPORT_BLOCK = (
    "".join(f"from {m} import *\n" for m in _LCB_MODULES[:-1])
    + "from json import *\nfrom builtins import *\nfrom typing import *\n"
    + "".join(f"import {m}\n" for m in _LCB_MODULES)
    + "sys.setrecursionlimit(50000)\n"
)


def _stripped_lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().split("\n")]


def _decimals(line: str) -> list[Decimal] | None:
    try:
        return [Decimal(token) for token in line.split()]
    except (InvalidOperation, ValueError):
        return None


def lcb_outputs_match(got: str, expected: str) -> bool:
    """LiveCodeBench's stdin verdict: line-wise after stripping, exact text or equal decimals."""
    got_lines, expected_lines = _stripped_lines(got), _stripped_lines(expected)
    if len(got_lines) != len(expected_lines):
        return False
    for got_line, expected_line in zip(got_lines, expected_lines):
        if got_line == expected_line:
            continue
        a, b = _decimals(got_line), _decimals(expected_line)
        if a is None or b is None:
            return False
        try:
            if a != b:
                return False
        except InvalidOperation:  # a signalling NaN cannot be compared; the runner errors too
            return False
    return True


def lcb_values_match(got: Any, expected: Any) -> bool:
    """LiveCodeBench's functional verdict: ``list(got) if tuple`` then Python ``==``.

    ``got`` here is the return value after the sandbox's JSON encoding, so a tuple nested in
    a list already reads as a list (the runner would fail it) and a set reads as its sorted
    list; ``tests/test_lcb_official.py`` lists these disagreements.
    """
    if isinstance(got, tuple):
        got = list(got)
    return bool(got == expected)

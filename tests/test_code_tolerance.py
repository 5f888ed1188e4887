"""The code verifier's float tolerance for stdin answers, pinned from both sides.

A stdin token that is not an integer matches a float within ``rel_tol=1e-6`` and
``abs_tol=1e-6`` (``math.isclose``): an absolute 1e-6 near zero and near 1, a relative 1e-6
for large values. Each case sits 5% inside or outside that bound, so moving the bound by
a factor of 1.1 either way (or swapping the absolute and relative parts) fails a case.
"""

from __future__ import annotations

import pytest

from cascade.verifiers import get_verifier
from cascade.verifiers.code import outputs_match


@pytest.mark.parametrize(("got", "expected", "same"), [
    ("1.00000095", "1", True),      # |diff| 9.5e-7: inside the 1e-6 bound
    ("1.00000105", "1", False),     # |diff| 1.05e-6: outside
    ("0.99999905", "1", True),      # the bound is symmetric
    ("0.99999895", "1", False),
    ("0.00000095", "0", True),      # the absolute part near zero
    ("0.00000105", "0", False),
    ("-0.00000105", "0", False),
    ("1000.00095", "1000", True),   # the relative part: 1e-6 * 1000 = 1e-3
    ("1000.00105", "1000", False),
    ("1e6", "1000000.95", True),    # relative to the larger value
    ("1e6", "1000001.05", False),
])
def test_stdin_float_tolerance_bound(got, expected, same):
    assert outputs_match(got, expected) is same
    assert outputs_match(f"7 {got}\n", f"7 {expected}") is same  # per token, not per line


def test_the_verifier_applies_the_bound_to_a_real_program():
    verifier = get_verifier("code")
    record = {"ground_truth": {"style": "stdin", "tests": [{"input": "3\n", "output": "1\n"}]}}

    def program(offset: str) -> str:
        return f"```python\nn = int(input())\nprint(f'{{n / 3 + {offset}:.8f}}')\n```\n"

    inside = verifier.verify(program("9.5e-7"), record)
    outside = verifier.verify(program("1.05e-6"), record)
    assert (inside.passed, inside.details["verdict"]) == (True, "pass")
    assert (outside.passed, outside.details["verdict"]) == (False, "wrong_answer")

"""What the assert-style judge process is told about the test code (``sandbox.judge_plan``).

The judge binds every name a test takes from the candidate to a proxy, so these sets decide
what crosses to the candidate's process: a name wrongly counted as bound stays unresolved,
one wrongly counted as free is handed to the candidate. Each case is worked out by hand from
the program text.
"""

from __future__ import annotations

from cascade.sandbox.judge_plan import judge_plan, program_names, setup_statements

HUMANEVAL_LIKE = """def check(candidate):
    assert candidate(1) == 2
    assert abs(helper(3) - 1.5) < 1e-6

check(solve)
"""


def test_names_of_a_humaneval_style_check():
    # Bound: check (the def), candidate (its argument). Free: abs, helper, solve.
    # Called directly among the free ones: abs and helper (solve is only passed).
    assert program_names(HUMANEVAL_LIKE) == {"free": ["abs", "helper", "solve"], "called": ["abs", "helper"],
                                             "attribute_only": []}


def test_a_module_used_only_through_attributes():
    program = "assert math.floor(f(2.5)) == 2\nassert math.pi > 3\n"
    assert program_names(program) == {"free": ["f", "math"], "called": ["f"], "attribute_only": ["math"]}
    # Used once as a plain value too: not attribute-only.
    program = "assert re.match('a', g('a'))\nassert re is not None\n"
    assert program_names(program) == {"free": ["g", "re"], "called": ["g"], "attribute_only": []}


BINDINGS = """import os.path
from x import y as z
try:
    pass
except ValueError as err:
    print(err)
except KeyError:
    pass
for i in range(3):
    k = i
class C:
    pass
square = lambda q: q * q
assert os and z and C and k and w and square(2)
"""


def test_every_way_of_binding_a_name():
    # Bound: os (from "os.path"), z (the alias, not y), err, i, k, C, q, square.
    assert program_names(BINDINGS) == {"free": ["KeyError", "ValueError", "print", "range", "w"],
                                       "called": ["print", "range"], "attribute_only": []}


def test_setup_statements_and_the_names_they_bind():
    setup = "import math\nx = [1, 2]\ndef f(a):\n    return a\n"
    assert setup_statements(setup) == [("import math", ["math"]), ("x = [1, 2]", ["x"]),
                                       ("def f(a):\n    return a", ["a", "f"])]


def test_the_whole_plan():
    plan = judge_plan(("assert f(1) == 2",), "import math", "from typing import *")
    assert plan == {"tests": ["assert f(1) == 2"],
                    "names": [{"free": ["f"], "called": ["f"], "attribute_only": []}],
                    "setup": [("import math", ["math"])], "prelude": "from typing import *"}

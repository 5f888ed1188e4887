"""What the code verifier's judge process needs to know about assert-style test code,
worked out here (outside the sandbox, where ``ast`` is already loaded) so the judge
does not pay for importing it in every job.

For each test program: the names it reads but never binds (``free``), of those the ones
it calls directly (``called``) and the ones it only uses as ``name.attribute``
(``attribute_only``: modules such as ``math`` that MBPP tests take from the solution's
imports). For the setup code: its top-level statements, each with the names it binds, so
the judge can run them one by one and leave those that need the candidate's names to the
candidate's process (see ``cascade/sandbox/harness.py``).
"""

from __future__ import annotations

import ast
import functools


def _bound_names(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names


def program_names(program: str) -> dict[str, list[str]]:
    """``free``, ``called`` and ``attribute_only`` names of one test program (sorted lists)."""
    tree = ast.parse(program)
    loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    free = loaded - _bound_names(tree)
    called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    uses: dict[str, int] = {}
    bases: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            uses[node.id] = uses.get(node.id, 0) + 1
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            bases[node.value.id] = bases.get(node.value.id, 0) + 1
    attribute_only = {name for name in free if bases.get(name) and bases[name] == uses.get(name)}
    return {"free": sorted(free), "called": sorted(called & free), "attribute_only": sorted(attribute_only)}


def setup_statements(setup: str) -> list[tuple[str, list[str]]]:
    """The setup's top-level statements as (source, names it binds)."""
    tree = ast.parse(setup)
    return [(ast.unparse(statement), sorted(_bound_names(statement))) for statement in tree.body]


@functools.lru_cache(maxsize=256)
def judge_plan(tests: tuple[str, ...], setup: str, prelude: str) -> dict:
    """Everything the judge process gets: the tests, their names, the setup split up."""
    return {
        "tests": list(tests),
        "names": [program_names(program) for program in tests],
        "setup": setup_statements(setup),
        "prelude": prelude,
    }

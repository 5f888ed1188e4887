"""Every public function, class and method of the listed packages says what it does.

Read from the source (ast), so nothing is imported. Public: a name without a leading
underscore, at module level or in a public class (properties included); a dataclass's
generated methods are not in the source and so not checked. Extend ``PACKAGES`` as packages
get their docstrings (the issue asks it of trainers/ and engine/ too).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "cascade"
PACKAGES = ["pipeline", "report"]


def missing_docstrings(path: Path) -> list[str]:
    """``name (line N)`` of each public definition in ``path`` without a docstring."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or node.name.startswith("_"):
                continue
            if ast.get_docstring(node) is None:
                found.append(f"{prefix}{node.name} (line {node.lineno})")
            if isinstance(node, ast.ClassDef):
                visit(node.body, f"{prefix}{node.name}.")

    visit(tree.body, "")
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_public_definitions_have_docstrings(package: str) -> None:
    files = sorted((SRC / package).rglob("*.py"))
    assert files, f"no modules under {SRC / package}"
    missing = [f"{path.relative_to(SRC)}: {m}" for path in files for m in missing_docstrings(path)]
    assert missing == [], "public definitions without a docstring:\n" + "\n".join(missing)


def test_the_check_sees_a_missing_docstring(tmp_path: Path) -> None:
    path = tmp_path / "probe.py"
    path.write_text('def documented():\n    """Yes."""\n\n\nclass Bare:\n    def method(self):\n        pass\n\n'
                    '    def _helper(self):\n        pass\n\n\ndef _private():\n    pass\n')
    assert missing_docstrings(path) == ["Bare (line 5)", "Bare.method (line 6)"]

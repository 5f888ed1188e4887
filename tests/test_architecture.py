"""The package layers and the absence of import loops, as declared in pyproject.toml.

import-linter reads every import of ``src/cascade`` (those inside functions too) and checks
the ``[tool.importlinter]`` contracts: no module imports a layer above its own, and no two
modules of one package import each other, directly or through others. Runs in a fresh
interpreter whose ``cascade`` is this checkout's ``src``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_LINT = textwrap.dedent(
    """
    import sys
    import cascade
    from importlinter.cli import lint_imports

    assert cascade.__file__.startswith(sys.argv[2]), cascade.__file__  # this checkout, not another install
    sys.exit(lint_imports(config_filename=sys.argv[1], no_cache=True, no_logo=True))
    """
)


def _lint(config: Path) -> subprocess.CompletedProcess[str]:
    src = str(ROOT / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", _LINT, str(config), src], capture_output=True, text=True,
                          timeout=240, cwd=ROOT, env=env)


def test_the_import_contracts_hold() -> None:
    done = _lint(ROOT / "pyproject.toml")
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert "Contracts: 2 kept, 0 broken." in done.stdout


def test_a_broken_layer_is_reported(tmp_path: Path) -> None:
    # The checker sees real imports: with the data layer placed above the pipeline, the
    # pipeline's imports of cascade.data break the contract.
    config = tmp_path / "contracts.toml"
    config.write_text('[tool.importlinter]\nroot_package = "cascade"\n\n'
                      '[[tool.importlinter.contracts]]\nname = "upside down"\ntype = "layers"\n'
                      'layers = ["cascade.data", "cascade.pipeline"]\n')
    done = _lint(config)
    assert done.returncode != 0
    assert "cascade.pipeline is not allowed to import cascade.data" in done.stdout

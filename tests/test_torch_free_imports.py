"""The torch-free core must import without torch or transformers (the project's rule: verifiers, chat format, config and data schemas; also the sandbox and the report, which must open where nothing trains).

Runs in a fresh interpreter, because this test process may already hold torch. Every
submodule of the torch-free packages is found with pkgutil, so new modules are covered
without editing this file.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

# Packages whose every module must stay torch-free (those that exist when the test runs).
TORCH_FREE_PACKAGES = [
    "cascade.config",
    "cascade.data",
    "cascade.data.adapters",
    "cascade.chat",
    "cascade.verifiers",
    "cascade.sandbox",
    "cascade.eval.metrics",
    "cascade.pipeline.layout",
    "cascade.report",
]

# The only modules not imported here, with the reason.
EXCEPTIONS = {
    # Scripts whose text runs inside the sandbox's own interpreter, never imported:
    # importing the guard would install its audit hook in the test interpreter, and the
    # harness runs a test job on import. Both are stdlib-only by their own contract.
    "cascade.sandbox.guard": "sandbox script",
    "cascade.sandbox.harness": "sandbox script",
}

HEAVY = ("torch", "transformers")

_PROBE = textwrap.dedent(
    """
    import importlib, importlib.util, json, pkgutil, sys

    packages, exceptions, heavy = json.loads(sys.argv[1])
    checked, culprits = [], {}

    def check(name):
        if name in exceptions or any(name.startswith(e + ".") for e in exceptions):
            return None
        before = {h for h in heavy if h in sys.modules}
        module = importlib.import_module(name)
        checked.append(name)
        pulled = sorted({h for h in heavy if h in sys.modules} - before)
        if pulled:
            culprits[name] = pulled
        return module

    for package in packages:
        try:
            if importlib.util.find_spec(package) is None:
                continue
        except ModuleNotFoundError:  # a parent package does not exist yet
            continue
        module = check(package)
        if module is not None and hasattr(module, "__path__"):
            for info in pkgutil.walk_packages(module.__path__, prefix=package + "."):
                check(info.name)

    print(json.dumps({"checked": checked, "culprits": culprits,
                      "loaded": [h for h in heavy if h in sys.modules]}))
    """
)


def test_torch_free_packages_import_without_torch_or_transformers():
    argument = json.dumps([TORCH_FREE_PACKAGES, list(EXCEPTIONS), list(HEAVY)])
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, argument], capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    # The seams named in the project rules are always among the checked modules.
    for required in ("cascade.config", "cascade.data", "cascade.chat", "cascade.verifiers", "cascade.verifiers.base",
                     "cascade.verifiers.batch", "cascade.verifiers.math", "cascade.report.write", "cascade.report.plot"):
        assert required in report["checked"]
    # Every module of the verifiers package is imported: none is excused.
    assert not [name for name in EXCEPTIONS if name.startswith("cascade.verifiers")]
    assert report["culprits"] == {}, f"first module(s) to import torch/transformers: {report['culprits']}"
    assert report["loaded"] == []

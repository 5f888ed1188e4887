"""Torch-free verifiers behind one registry (see ``cascade.verifiers.base``).

Built-in verifier modules register themselves on import; ``load_builtin`` imports the ones
that exist, so a module that is missing or broken names itself instead of failing silently.
"""

from __future__ import annotations

import importlib

from cascade.verifiers.base import Verifier, VerifyResult, get_verifier, register, registered_names

BUILTIN_MODULES = [
    "cascade.verifiers.math",
    "cascade.verifiers.mcq",
    "cascade.verifiers.instruction_following",
    "cascade.verifiers.code",
    "cascade.verifiers.swe",
    "cascade.verifiers.tool_call",
    "cascade.verifiers.language_mixing",
    "cascade.verifiers.toy_chat",
]

_loaded = False


def load_builtin() -> None:
    global _loaded
    if _loaded:
        return
    for module in BUILTIN_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    _loaded = True


__all__ = ["Verifier", "VerifyResult", "get_verifier", "register", "registered_names", "load_builtin"]

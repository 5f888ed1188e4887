"""Run untrusted (model-written) Python in an isolated, resource-limited process tree.

``run_python`` is the one entry point; ``sandbox_mode`` says which mode this machine gives
(``"bwrap"`` namespaces, else ``"landlock"`` kernel confinement; the weak ``"rlimit"``
mode only when asked for, else ``SandboxUnavailable``), and ``describe_mode`` says what
that mode guarantees in one sentence. ``cascade.sandbox.pool`` is the pool of worker processes
that verifiers score in, so a parser's hang or crash costs one item. docs/sandbox.md has the
whole story.
"""

from cascade.sandbox.limits import Limits, SandboxResult
from cascade.sandbox.modes import SandboxUnavailable, describe_mode, run_python, sandbox_mode

__all__ = ["Limits", "SandboxResult", "SandboxUnavailable", "describe_mode", "run_python", "sandbox_mode"]

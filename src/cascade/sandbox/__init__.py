"""Run untrusted (model-written) Python in an isolated, resource-limited process tree.

``run_python`` is the one entry point; ``sandbox_mode`` says whether this machine gives
the namespace sandbox (``"bwrap"``) or only the weaker rlimit one, and
``describe_mode`` says what that mode guarantees in one sentence.
"""

from cascade.sandbox.limits import Limits, SandboxResult
from cascade.sandbox.modes import describe_mode, sandbox_mode
from cascade.sandbox.runner import run_python

__all__ = ["Limits", "SandboxResult", "describe_mode", "run_python", "sandbox_mode"]

"""Generation backends for evaluation: local (torch), vllm (GPU), openai (any compatible server)."""

from __future__ import annotations

from typing import Any

from cascade.errors import CascadeError
from cascade.eval.backends.base import Backend, GenOutput, GenRequest

BACKENDS = ("local", "vllm", "openai")


def make_backend(name: str, model: str, **options: Any) -> Backend:
    """Build a backend by name; heavy imports happen only for the chosen one."""
    if name == "local":
        from cascade.eval.backends.local import LocalBackend

        return LocalBackend(model, **options)
    if name == "openai":
        from cascade.eval.backends.openai_http import OpenAIBackend

        if not options.get("base_url"):
            raise CascadeError("--backend openai needs --base-url (e.g. http://127.0.0.1:8000/v1)")
        return OpenAIBackend(model, **options)
    if name == "vllm":
        from cascade.eval.backends.vllm_offline import VLLMBackend

        return VLLMBackend(model, **options)
    raise CascadeError(f"unknown backend '{name}'; choose one of {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "Backend", "GenOutput", "GenRequest", "make_backend"]

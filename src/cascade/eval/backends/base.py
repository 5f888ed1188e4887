"""What an eval backend does: turn chat requests into completions. Torch-free."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, Sequence


@dataclass(frozen=True)
class GenRequest:
    messages: list[dict[str, Any]]
    enable_thinking: bool
    max_tokens: int
    temperature: float = 0.6
    top_p: float = 0.95
    seed: int = 0
    tools: list[dict[str, Any]] | None = None


CONTEXT_SKIP = "context"


@dataclass
class GenOutput:
    text: str  # the completion as the model wrote it, with <think>...</think> when it thought
    tokens: int  # completion tokens
    # "context": not generated, the prompt plus the budget do not fit the model's context
    # (the runner skips and counts such prompts instead of stopping the run)
    finish_reason: Literal["stop", "length", "context"]
    extra: dict[str, Any] = field(default_factory=dict)


class Backend(Protocol):
    name: str

    def generate(self, requests: Sequence[GenRequest]) -> list[GenOutput]:
        """One completion per request, in request order."""

    def close(self) -> None:
        """Release processes or connections."""

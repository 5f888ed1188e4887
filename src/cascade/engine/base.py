"""The engine seam: the only interface the trainers (SFT, RM, GRPO) talk to.

Nothing above this seam knows whether the local torch engine or a cluster adapter runs:
the trainers reach the model only through ``Engine``'s members, never past them, so a second
engine (a vLLM-backed sampler, the cluster path) implements this protocol and nothing else.
This module is torch-free on purpose; batches and losses are opaque to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Protocol, Sequence


@dataclass(frozen=True)
class SamplingParams:
    """How one generation call samples: budget, temperature, nucleus / top-k cut, stop
    tokens and the seed of its own random generator."""

    max_new_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0 = off
    stop_token_ids: tuple[int, ...] = ()  # generation ends after emitting any of these
    seed: int | None = None


@dataclass
class Generation:
    """One sampled completion."""

    prompt_ids: list[int]
    token_ids: list[int]  # the completion tokens, including the stop token when one was hit
    text: str  # decoded completion, special tokens kept (the parser needs <think> etc.)
    logprobs: list[float]  # log p(token) under the sampling policy, one per token_id
    finish_reason: Literal["stop", "length"]
    meta: dict[str, Any] = field(default_factory=dict)


class Engine(Protocol):
    """What a training/generation backend must provide."""

    tokenizer: Any  # a Hugging Face tokenizer: prompts are measured and records encoded with it
    head: Literal["lm", "score"]  # "lm": a causal LM (SFT, GRPO); "score": a scalar head (reward model)
    model_path: Path  # the checkpoint the weights came from (updated by ``load``)

    @property
    def pad_id(self) -> int:
        """The id that pads a batch's rows (the tokenizer's pad token, else its eos)."""

    def configure_optimizer(self, cfg: Any) -> None:
        """(Re)create the optimizer and its LR schedule (an ``cascade.engine.optim.OptimConfig``)."""

    def frozen_copy(self, path: str) -> "Engine":
        """An inference-only engine on the same device holding the checkpoint at ``path``
        (GRPO's KL reference)."""

    def token_logprobs(self, batch: Any) -> Any:
        """Per-token log-probabilities ``[B, T]`` of ``batch["input_ids"]`` (0 at position 0),
        without gradients: what a reference model contributes to the KL term."""

    def score(self, batch: Any) -> list[float]:
        """Scalar-head scores of a padded batch (``head="score"``), without gradients."""

    def generate(self, prompts: Sequence[str], sampling: SamplingParams) -> list[Generation]:
        """Sample one completion per prompt string (already chat-rendered)."""

    def forward_backward(self, batch: Any, loss_fn: Callable[..., Any]) -> dict[str, float]:
        """Run the model on ``batch``, call ``loss_fn``, backpropagate (accumulating grads).

        Returns scalar metrics (loss and whatever loss_fn reports)."""

    def optim_step(self) -> dict[str, float]:
        """Clip, step the optimizer and the LR schedule, zero grads. Returns grad norm, lr."""

    def save(self, path: str) -> None:
        """Write model (Hugging Face format), tokenizer, optimizer, scheduler, RNG state."""

    def load(self, path: str) -> None:
        """Restore everything ``save`` wrote."""

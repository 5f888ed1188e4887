"""Per-token log-probabilities (and entropies) from logits, for the training passes.

The vocabulary-wide tensors here (``[B, T, V]``) are the largest a small model's training
step touches, so every full pass over them shows up in the step time.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.autograd.function import once_differentiable


class _PickedLogProb(torch.autograd.Function):
    """``log_softmax(logits)[target]`` with a hand-written backward.

    Autograd's version (logsumexp, gather, subtract) allocates a zero ``[B, T, V]`` tensor
    for the gather's gradient and adds it to the logsumexp's; this backward makes the one
    gradient ``onehot(target) - softmax(logits)`` (times the incoming gradient) in place.
    """

    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        log_norm = torch.logsumexp(logits, dim=-1)
        ctx.save_for_backward(logits, targets, log_norm)
        return logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - log_norm

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        logits, targets, log_norm = ctx.saved_tensors
        grad = grad.unsqueeze(-1)
        grad_logits = (logits - log_norm.unsqueeze(-1)).exp_().mul_(-grad)
        grad_logits.scatter_add_(-1, targets.unsqueeze(-1), grad)
        return grad_logits, None


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor, with_entropy: bool, entropy_grad: bool = True
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``log softmax(logits)[targets]`` per position, and optionally each distribution's
    entropy (differentiable only with ``entropy_grad``)."""
    logits = logits.float()
    picked = _PickedLogProb.apply(logits, targets)
    if not with_entropy:
        return picked, None
    with torch.set_grad_enabled(entropy_grad and torch.is_grad_enabled()):
        log_probs = torch.log_softmax(logits, dim=-1)
        return picked, -(log_probs.exp() * log_probs).sum(dim=-1)


def entropy_needs_grad(loss_fn: Any) -> bool:
    """Whether the loss trains on the entropy (a bonus) rather than only reporting it; a
    reported entropy is computed without building its backward graph."""
    return bool(getattr(loss_fn, "entropy_coef", 1.0))


def shifted_token_logprobs(
    logits: torch.Tensor, input_ids: torch.Tensor, with_entropy: bool, entropy_grad: bool = True
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``log p(input_ids[:, t] | input_ids[:, <t])`` aligned to position t (position 0 gets 0),
    and optionally the entropy of the distribution that predicted position t."""
    picked, entropy = token_logprobs(logits[:, :-1], input_ids[:, 1:], with_entropy, entropy_grad)
    zeros = picked.new_zeros((picked.shape[0], 1))
    return torch.cat([zeros, picked], dim=1), None if entropy is None else torch.cat([zeros, entropy], dim=1)


def place_columns(values: torch.Tensor, columns: torch.Tensor, width: int) -> torch.Tensor:
    """``out[b, columns[b, j]] = values[b, j]`` in a ``[B, width]`` tensor of zeros; entries
    with ``columns == -1`` are dropped. Differentiable."""
    spill = width + values.shape[1]  # dropped entries land past the end, then are cut off
    index = torch.where(columns >= 0, columns, torch.arange(width, spill, device=columns.device)[None])
    out = values.new_zeros((values.shape[0], spill)).scatter(1, index, values)
    return out[:, :width]

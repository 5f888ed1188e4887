"""The GRPO policy loss (torch). The engine calls ``GRPOLoss`` once per micro-batch.

Aggregation (``loss_agg``), both normalised over the WHOLE optimizer batch because the
engine sums gradients over micro-batches:
- ``token_mean`` (DAPO, the paper's default): sum of per-token losses over every loss token
  of the batch / total number of loss tokens; a long response weighs more.
- ``seq_mean``: each sequence's mean per-token loss, summed / number of sequences that have
  loss tokens; every response weighs the same (the RLHF "bag of tricks" option).

Importance ratio. Strict on-policy (one update per rollout batch, the default) has no
stored old log-probs: the ratio is ``exp(logp - logp.detach())``, exactly 1 in value with
the REINFORCE gradient ``A * grad logp``, so the PPO clip is inert by construction. That
identity cannot fail, so it is not what we check. The meaningful check is that the
training forward pass scores the very tokens the sampler drew: at temperature 1 the
sampler's log-probs (log-softmax of logits / T) equal the trainer's log-probs up to float
noise, and a misaligned mask, a wrong prompt or stale weights show up as a large gap.
``GRPOLoss`` reports that gap (``sampler_logprob_gap_*``) and the trainer asserts it. At
another temperature the two distributions differ by design, so no gap is reported.
With ``ppo_epochs > 1`` the first pass captures the log-probs as the "old" policy and later
passes use the clipped ratio with ``clip_low`` / ``clip_high`` (clip-higher).
"""

from __future__ import annotations

from typing import Any, Callable, Literal, Mapping

import torch

from cascade.algo.registry import pick

LossAgg = Literal["token_mean", "seq_mean"]


def token_mean(per_token: torch.Tensor, mask: torch.Tensor, *, total_tokens: float, total_seqs: float) -> torch.Tensor:
    """DAPO's token-level mean: every loss token of the batch weighs the same."""
    return (per_token * mask).sum() / max(total_tokens, 1.0)


def seq_mean(per_token: torch.Tensor, mask: torch.Tensor, *, total_tokens: float, total_seqs: float) -> torch.Tensor:
    """Each sequence's mean token loss, averaged over sequences: every response weighs the same."""
    lengths = mask.sum(dim=1)
    per_seq = (per_token * mask).sum(dim=1) / lengths.clamp(min=1.0)
    return per_seq.sum() / max(total_seqs, 1.0)


# The loss aggregations a recipe's ``loss_agg`` names (its Literal lists the same keys).
LOSS_AGGREGATIONS: dict[str, Callable[..., torch.Tensor]] = {"token_mean": token_mean, "seq_mean": seq_mean}


def aggregate(
    per_token: torch.Tensor,
    mask: torch.Tensor,
    loss_agg: LossAgg,
    *,
    total_tokens: float,
    total_seqs: float,
) -> torch.Tensor:
    """Reduce ``[B, T]`` per-token losses to the micro-batch's share of the batch loss, with
    the aggregation ``LOSS_AGGREGATIONS[loss_agg]``."""
    reduce = pick("loss_agg", LOSS_AGGREGATIONS, loss_agg)
    return reduce(per_token, mask.to(per_token.dtype), total_tokens=total_tokens, total_seqs=total_seqs)


def clipped_policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    *,
    clip_low: float,
    clip_high: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token PPO loss ``-min(ratio * A, clip(ratio, 1 - low, 1 + high) * A)`` and the
    per-token flag "the clip was active". ``advantages`` is ``[B]`` or ``[B, T]``."""
    if advantages.dim() == 1:
        advantages = advantages[:, None]
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high) * advantages
    return -torch.minimum(unclipped, clipped), (clipped < unclipped)


def k3_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimator of KL(pi || ref): exp(ref - logp) - (ref - logp) - 1 (>= 0)."""
    delta = ref_logprobs - logprobs
    return torch.exp(delta) - delta - 1.0


class GRPOLoss:
    """``loss_fn`` for ``Engine.forward_backward``.

    Batch keys: ``loss_mask [B,T]``, ``advantages [B]``, optional ``sampler_logprobs [B,T]``
    (checked at temperature 1), ``old_logprobs [B,T]`` (PPO epochs after the first),
    ``ref_logprobs [B,T]`` (when ``kl_coef`` > 0) and ``micro_index`` (an int, to file the
    captured log-probs under).
    Metrics are sums over the micro-batch so the trainer can total them over the batch.
    """

    def __init__(
        self,
        *,
        loss_agg: LossAgg,
        total_tokens: float,
        total_seqs: float,
        clip_low: float = 0.2,
        clip_high: float = 0.2,
        kl_coef: float = 0.0,
        entropy_coef: float = 0.0,
        needs_entropy: bool = True,
        capture_logprobs: bool = False,
    ) -> None:
        self.loss_agg = loss_agg
        self.total_tokens = float(total_tokens)
        self.total_seqs = float(total_seqs)
        self.clip_low = clip_low
        self.clip_high = clip_high
        self.kl_coef = kl_coef
        self.entropy_coef = entropy_coef
        self.needs_entropy = needs_entropy or entropy_coef != 0.0
        self.capture_logprobs = capture_logprobs
        self.captured: dict[int, torch.Tensor] = {}

    def __call__(
        self, token_logprobs: torch.Tensor, batch: Mapping[str, Any], entropy: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        mask = batch["loss_mask"].to(token_logprobs.device, torch.float32)
        advantages = batch["advantages"].to(token_logprobs.device, torch.float32)
        if self.capture_logprobs:
            self.captured[int(batch["micro_index"])] = token_logprobs.detach().cpu()
        old = batch.get("old_logprobs")
        old = token_logprobs.detach() if old is None else old.to(token_logprobs.device, token_logprobs.dtype)
        per_token, clip_active = clipped_policy_loss(
            token_logprobs, old, advantages, clip_low=self.clip_low, clip_high=self.clip_high
        )
        n_tokens = float(mask.sum())
        metrics: dict[str, float] = {
            "loss_tokens": n_tokens,
            "pg_loss_sum": float((per_token.detach() * mask).sum()),
            "clip_active_sum": float((clip_active.float() * mask).sum()),
        }
        if self.kl_coef:
            kl = k3_kl(token_logprobs, batch["ref_logprobs"].to(token_logprobs.device, token_logprobs.dtype))
            per_token = per_token + self.kl_coef * kl
            metrics["kl_sum"] = float((kl.detach() * mask).sum())
        if entropy is not None:
            if self.entropy_coef:
                per_token = per_token - self.entropy_coef * entropy
            metrics["entropy_sum"] = float((entropy.detach().float() * mask).sum())
        sampler = batch.get("sampler_logprobs")
        if sampler is not None:
            gap = (token_logprobs.detach().float() - sampler.to(token_logprobs.device, torch.float32)).abs() * mask
            metrics["sampler_logprob_gap_sum"] = float(gap.sum())
            metrics["sampler_logprob_gap_max"] = float(gap.max()) if n_tokens else 0.0
        loss = aggregate(
            per_token, mask, self.loss_agg, total_tokens=self.total_tokens, total_seqs=self.total_seqs
        )
        return loss, metrics

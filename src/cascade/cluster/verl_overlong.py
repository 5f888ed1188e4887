"""Overlong masking (``overlong_filter: true``) on verl 0.9.1: truncated responses out of the loss.

Locally a response cut at the response budget is *skipped*: it neither enters its group's mean and
standard deviation nor gets an advantage, and it is left out of the loss (``cascade.algo.filters
.apply_overlong``, ``cascade.algo.advantages.group_advantages(valid=...)``). On verl:

- **the advantage**: ``cascade_grpo``, an advantage estimator registered with verl
  (``verl.trainer.ppo.core_algos.register_adv_est``), computes each group's advantages with
  ``group_advantages`` itself, the truncated responses marked invalid (a response is truncated when
  it holds ``max_response_length`` tokens, verl's own ``response_length/clip_ratio`` rule);
- **the loss**: the estimator zeroes the truncated rows of ``response_mask``. verl 0.9.1's trainer
  writes ``response_mask`` back for the actor whenever rollout correction runs (the default
  ``algorithm.rollout_correction`` with the rollout's log-probabilities, ``rollout.calculate_log_probs``,
  on by default), and the policy loss sums over that mask, so a truncated response adds nothing
  to the gradient. verl normalises a token-mean loss by ``loss_mask``, which its rollout wrote
  before any advantage existed, so truncated tokens still count in the denominator (the step's
  update is scaled by the untruncated share of tokens; Adam makes that scale matter little);
- **registration**: verl finds estimators by name in a registry of the trainer's own process,
  and the one object of ours verl builds there with our settings is the replay buffer
  (``trainer.v1.sampler.custom_sampler``): ``CascadeReplayBuffer`` is verl's ``ReplayBuffer``
  with exactly the arguments verl's trainer would give it (a custom sampler gets none of them,
  so ``sampler_kwargs`` carries them), and it registers ``cascade_grpo`` with the phase's
  budget and ``adv_eps``.

The advantage also differs from verl's ``grpo`` in one more way, on purpose: the group's standard
deviation is the population one (``numpy.std``), as the local trainer computes it, where verl's
``grpo`` divides by the sample standard deviation.

This module imports verl and torch: it is loaded on the cluster only.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import torch
from verl.trainer.ppo import core_algos
from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer

from cascade.algo.advantages import group_advantages

ESTIMATOR = "cascade_grpo"
# What the registered estimator reads; set by CascadeReplayBuffer in the trainer's process.
SETTINGS: dict[str, Any] = {"max_response_length": None, "eps": 1e-6}


def truncated_rows(response_mask: torch.Tensor, max_response_length: int | None) -> torch.Tensor:
    """Rows whose response used the whole budget (bool, one per row)."""
    lengths = response_mask.sum(dim=-1)
    if max_response_length is None:
        return torch.zeros_like(lengths, dtype=torch.bool)
    return lengths >= max_response_length


def cascade_grpo_advantages(token_level_rewards: torch.Tensor, response_mask: torch.Tensor, index: Any, *,
                            max_response_length: int | None, eps: float = 1e-6) -> torch.Tensor:
    """Per-token advantages: each row's group (``index``, verl's ``uid``) z-scored over its
    untruncated rows by ``group_advantages``; truncated rows get 0. Zeroes the truncated rows of
    ``response_mask`` in place (what keeps them out of verl's loss)."""
    rewards = token_level_rewards.sum(dim=-1).detach().cpu().double().numpy()
    cut = truncated_rows(response_mask, max_response_length).cpu().numpy()
    rows_of: dict[Any, list[int]] = defaultdict(list)
    for row, uid in enumerate(index):
        rows_of[uid].append(row)
    scores = np.zeros(len(rewards))
    for rows in rows_of.values():  # verl balances the batch, so a group's rows need not be adjacent
        scores[rows] = group_advantages(rewards[rows], len(rows), eps=eps, valid=~cut[rows]).advantages
    response_mask[torch.as_tensor(cut, device=response_mask.device)] = 0
    return torch.as_tensor(scores, dtype=torch.float32, device=response_mask.device).unsqueeze(-1) * response_mask


@core_algos.register_adv_est(ESTIMATOR)
def _cascade_grpo(token_level_rewards: torch.Tensor, response_mask: torch.Tensor, index: Any = None,
                  config: Any = None, **_unused: Any) -> tuple[torch.Tensor, torch.Tensor]:
    advantages = cascade_grpo_advantages(token_level_rewards, response_mask, index,
                                         max_response_length=SETTINGS["max_response_length"], eps=SETTINGS["eps"])
    return advantages, advantages


class CascadeReplayBuffer(ReplayBuffer):
    """verl's sync replay buffer, built with the arguments verl's trainer gives its own
    (``sampler_kwargs["builtin"]``), that also sets what ``cascade_grpo`` reads
    (``sampler_kwargs["overlong"]``: ``max_response_length`` and ``eps``)."""

    def __init__(self, *, sampler_kwargs: Any, **kwargs: Any) -> None:
        settings = dict(sampler_kwargs or {})
        overlong = dict(settings.get("overlong") or {})
        SETTINGS.update(max_response_length=overlong.get("max_response_length"), eps=float(overlong.get("eps", 1e-6)))
        super().__init__(sampler_kwargs=sampler_kwargs, **kwargs, **dict(settings.get("builtin") or {}))

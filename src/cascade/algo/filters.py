"""Which rollouts and prompts carry learning signal: overlong, dynamic and epoch filters.

- Overlong (per sub-stage): a truncated response (finish_reason "length") is either
  skipped (masked from the loss and from its group's statistics) or scored 0.
- Dynamic (batch level, DAPO): keep only groups whose rewards differ, over-sampling
  prompts until the batch is full or the try budget is spent.
- Epoch level (math RL): after a pass over the data, prompts whose group was all right or
  all wrong are dropped, each coming back with a small probability.
"""

from __future__ import annotations

from typing import Callable, Hashable, Literal, Mapping, Sequence

import numpy as np

# How a prompt's whole group fared: the epoch filter's input.
GroupVerdict = Literal["all_correct", "all_wrong", "mixed"]


def apply_overlong(
    rewards: Sequence[float], finish_reasons: Sequence[str], overlong_filter: bool,
    truncated_score: float | None = 0.0,
) -> tuple[list[float], list[bool]]:
    """Return ``(rewards, valid)`` after the overlong rule.

    With the filter on, truncated samples keep their reward but are invalid (skipped);
    with it off they are valid and their reward becomes ``truncated_score``: the paper's
    "truncated -> 0" for its 0/1 rewards, which is the stage's failure score. A stage whose
    failure score is lower (SWE: -1 for no parseable patch) passes it here, or running
    into the length limit would beat answering badly. ``truncated_score=None`` keeps the
    reward scored on the unfinished text (RLHF: the reward model's score). The per-stage
    values are the ``truncated`` entries of ``cascade.verifiers.stage_rewards.STAGE_REWARDS``.
    """
    if len(rewards) != len(finish_reasons):
        raise ValueError(f"{len(rewards)} rewards for {len(finish_reasons)} finish reasons")
    truncated = [reason == "length" for reason in finish_reasons]
    if overlong_filter:
        return [float(r) for r in rewards], [not t for t in truncated]
    if truncated_score is None:
        return [float(r) for r in rewards], [True] * len(rewards)
    return [truncated_score if t else float(r) for r, t in zip(rewards, truncated)], [True] * len(rewards)


def select_signal_groups(zero_variance: Sequence[bool], needed: int) -> list[int]:
    """Indices of the first ``needed`` groups that have signal (dynamic filtering)."""
    return [g for g, zero in enumerate(zero_variance) if not zero][:needed]


def keep_all_groups(zero_variance: Sequence[bool], needed: int) -> list[int]:
    """Every group of the round, signal or not (no dynamic filter)."""
    return list(range(len(zero_variance)))


# Which groups of a sampling round fill the batch, by name: "signal" is the recipe's
# ``dynamic_filter: true``, "all" its default.
GROUP_FILTERS: dict[str, Callable[[Sequence[bool], int], list[int]]] = {
    "all": keep_all_groups,
    "signal": select_signal_groups,
}


def classify_group(passed: Sequence[bool]) -> GroupVerdict:
    """A prompt's group verdict from its rollouts' pass/fail verdicts."""
    if not passed:
        raise ValueError("an empty group has no outcome")
    if all(passed):
        return "all_correct"
    if not any(passed):
        return "all_wrong"
    return "mixed"


def epoch_pool(
    prompt_ids: Sequence[Hashable],
    verdicts: Mapping[Hashable, GroupVerdict],
    *,
    epoch: int,
    seed: int,
    readd_prob_all_correct: float = 0.01,
    readd_prob_all_wrong: float = 0.10,
) -> list[Hashable]:
    """The prompts of the next epoch, in data order.

    A prompt whose latest outcome was all-correct (all-wrong) comes back with probability
    ``readd_prob_all_correct`` (``readd_prob_all_wrong``); mixed and never-seen prompts
    always stay. The draw is redone every epoch, so a dropped prompt can come back later.
    One uniform number is drawn per prompt in order, from a generator seeded by
    ``(seed, epoch)``, so the pool is a pure function of its arguments. An empty result
    falls back to every prompt: a stage must never run out of data.
    """
    draws = np.random.default_rng([seed, epoch]).random(len(prompt_ids))
    keep_prob = {"all_correct": readd_prob_all_correct, "all_wrong": readd_prob_all_wrong}
    pool = [
        pid
        for pid, u in zip(prompt_ids, draws)
        if u < keep_prob.get(verdicts.get(pid, "mixed"), 1.0)
    ]
    return pool or list(prompt_ids)

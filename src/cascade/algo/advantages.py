"""Group-normalised advantages (GRPO): A_i = (r_i - mean_group) / (std_group + eps).

The std is the POPULATION std (divide by G, numpy's default ``ddof=0``), as in the GRPO
and DAPO formulations; the paper divides by the group std (not Dr.GRPO's unscaled form).
Every token of a response gets its response's advantage (the trainer broadcasts it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence, TypeVar

import numpy as np

T = TypeVar("T")

# A group whose rewards differ by less than this has no learning signal: float noise
# (e.g. an RM scoring identical texts) must not be blown up into +-1 advantages.
ZERO_VARIANCE_TOL = 1e-8


@dataclass(frozen=True)
class GroupAdvantages:
    """Per-rollout advantages and the groups that give no gradient."""

    advantages: np.ndarray  # [n_groups * group_size], 0 for zero-variance groups and invalid samples
    zero_variance: np.ndarray  # [n_groups] bool: the group gives no gradient

    @property
    def zero_variance_count(self) -> int:
        """How many groups give no gradient."""
        return int(self.zero_variance.sum())


def repeat_for_groups(items: Sequence[T], group_size: int) -> list[T]:
    """Each prompt G times in a row: [a, b] with G=2 -> [a, a, b, b] (the rollout layout)."""
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    return [item for item in items for _ in range(group_size)]


def group_slices(n_samples: int, group_size: int) -> list[slice]:
    """The slice of each group in a flat rollout list laid out by ``repeat_for_groups``."""
    if group_size < 1 or n_samples % group_size:
        raise ValueError(f"{n_samples} samples do not split into groups of {group_size}")
    return [slice(start, start + group_size) for start in range(0, n_samples, group_size)]


def group_advantages(
    rewards: Sequence[float],
    group_size: int,
    *,
    eps: float = 1e-6,
    valid: Sequence[bool] | None = None,
) -> GroupAdvantages:
    """Advantages for a flat reward list laid out group after group.

    ``valid`` marks samples that take part (False = skipped, e.g. an overlong-filtered
    truncation): skipped samples neither enter their group's mean/std nor get an advantage.
    A group with fewer than two valid samples, or with equal valid rewards, is zero-variance.
    """
    r = np.asarray(rewards, dtype=np.float64)
    ok = np.ones(len(r), dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    if ok.shape != r.shape:
        raise ValueError(f"valid has {len(ok)} entries for {len(r)} rewards")
    adv = np.zeros_like(r)
    slices = group_slices(len(r), group_size)
    zero_var = np.zeros(len(slices), dtype=bool)
    for g, rows in enumerate(slices):
        mask = ok[rows]
        vals = r[rows][mask]
        std = float(vals.std()) if len(vals) else 0.0
        if len(vals) < 2 or std < ZERO_VARIANCE_TOL:
            zero_var[g] = True
            continue
        group_adv = np.where(mask, (r[rows] - vals.mean()) / (std + eps), 0.0)
        adv[rows] = group_adv
    return GroupAdvantages(advantages=adv, zero_variance=zero_var)


def tanh_group_shaping(
    rewards: Sequence[float],
    group_size: int,
    *,
    eps: float = 1e-6,
    valid: Sequence[bool] | None = None,
) -> np.ndarray:
    """The paper's reward shaping for weak reward models (section 6.3): each reward becomes
    tanh of its z-score within its group, so it lies in (-1, 1).

    Why: an RM score far above the rest of its group (often a reward hack) would otherwise
    dominate the group's advantages; tanh caps its pull. With two distinct rewards in a
    group the shaping changes nothing after GRPO's own normalisation; it matters with three
    or more. Invalid samples and zero-variance groups keep their reward (GRPO gives them no
    advantage anyway).
    """
    # The group z-scores are exactly GRPO's advantages (invalid samples get 0 there).
    z = group_advantages(rewards, group_size, eps=eps, valid=valid)
    r = np.asarray(rewards, dtype=np.float64)
    ok = np.ones(len(r), dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    out = r.copy()
    for g, rows in enumerate(group_slices(len(r), group_size)):
        if not z.zero_variance[g]:
            out[rows] = np.where(ok[rows], np.tanh(z.advantages[rows]), r[rows])
    return out


def no_shaping(
    rewards: Sequence[float],
    group_size: int,
    *,
    eps: float = 1e-6,
    valid: Sequence[bool] | None = None,
) -> Sequence[float]:
    """The rewards as they are (the paper's default)."""
    return rewards


# The reward shapings a recipe's ``reward_shaping`` names (its Literal lists the same keys):
# what the group advantages are computed from; the logged rewards stay the stage's own.
REWARD_SHAPINGS: dict[str, Callable[..., Sequence[float] | np.ndarray]] = {
    "none": no_shaping,
    "group_tanh": tanh_group_shaping,
}

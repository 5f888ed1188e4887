"""The GRPO algorithm as small pure functions (paper section 4.1.2).

Advantages, filters, mode mixing and the curriculum are torch-free; only ``losses`` imports
torch, so import it explicitly (``from cascade.algo.losses import ...``) where torch is fine.
Variants are chosen by name from registries (``REWARD_SHAPINGS``, ``GROUP_FILTERS``,
``losses.LOSS_AGGREGATIONS``) through ``registry.pick``.
"""

from cascade.algo.advantages import (
    REWARD_SHAPINGS,
    GroupAdvantages,
    group_advantages,
    group_slices,
    repeat_for_groups,
)
from cascade.algo.curriculum import advance_substage
from cascade.algo.filters import (
    GROUP_FILTERS,
    apply_overlong,
    classify_group,
    epoch_pool,
    select_signal_groups,
)
from cascade.algo.modes import assign_modes, think_count
from cascade.algo.registry import pick

__all__ = [
    "REWARD_SHAPINGS",
    "GROUP_FILTERS",
    "pick",
    "GroupAdvantages",
    "group_advantages",
    "group_slices",
    "repeat_for_groups",
    "advance_substage",
    "apply_overlong",
    "classify_group",
    "epoch_pool",
    "select_signal_groups",
    "assign_modes",
    "think_count",
]

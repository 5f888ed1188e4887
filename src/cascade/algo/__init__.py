"""The GRPO algorithm as small pure functions (paper section 4.1.2).

Advantages, filters, mode mixing and the curriculum are torch-free; only ``losses`` imports
torch, so import it explicitly (``from cascade.algo.losses import ...``) where torch is fine.
"""

from cascade.algo.advantages import GroupAdvantages, group_advantages, group_slices, repeat_for_groups
from cascade.algo.curriculum import advance_substage
from cascade.algo.filters import (
    apply_overlong,
    classify_group,
    epoch_pool,
    select_signal_groups,
)
from cascade.algo.modes import assign_modes, think_count

__all__ = [
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

"""Length curriculum inside one stage: sub-stages with their own length, temperature and
overlong rule (paper: math RL 24K -> 32K -> 40K).

A sub-stage ends at a fixed step (``until_step``) or once the share of truncated responses
in a step falls below a threshold (``until_truncated_below``; the paper moves on when the
clip ratio is about 10%). The last sub-stage never ends. Optimizer and data state are not
touched here: a switch only changes the sampling knobs. The sub-stages themselves are the
recipe's typed ``SubStage`` entries (``cascade.config.recipe``), validated there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from cascade.config.recipe import SubStage


def advance_substage(
    curriculum: Sequence["SubStage"], index: int, *, steps_done: int, truncated_share: float
) -> int:
    """The sub-stage index for the next step, given the step just finished."""
    if index >= len(curriculum) - 1:
        return index
    current = curriculum[index]
    if current.until_step is not None and steps_done >= current.until_step:
        return index + 1
    if current.until_truncated_below is not None and truncated_share < current.until_truncated_below:
        return index + 1
    return index

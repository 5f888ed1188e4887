"""Length curriculum inside one stage: sub-stages with their own length, temperature and
overlong rule (paper: math RL 24K -> 32K -> 40K).

A sub-stage ends at a fixed step (``until_step``) or once the share of truncated responses
in a step falls below a threshold (``until_truncated_below``; the paper moves on when the
clip ratio is about 10%). The last sub-stage never ends. Optimizer and data state are not
touched here: a switch only changes the sampling knobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from cascade.errors import CascadeError


@dataclass(frozen=True)
class SubStage:
    name: str
    max_response_len: int | None = None  # None: keep the stage's value
    temperature: float | None = None
    overlong_filter: bool | None = None
    until_step: int | None = None  # ends when this many steps of the stage are done
    until_truncated_below: float | None = None  # ends when a step's truncated share is below


def parse_curriculum(items: Sequence[Mapping[str, Any] | SubStage], *, source: str | None = None) -> list[SubStage]:
    """Build sub-stages from recipe mappings, with errors that name the offending field."""
    out: list[SubStage] = []
    for i, item in enumerate(items):
        if isinstance(item, SubStage):
            sub = item
        else:
            unknown = set(item) - set(SubStage.__dataclass_fields__)
            if unknown:
                raise CascadeError(f"unknown key(s) {sorted(unknown)}", file=source, field=f"curriculum[{i}]")
            if "name" not in item:
                raise CascadeError("a sub-stage needs a name", file=source, field=f"curriculum[{i}].name")
            sub = SubStage(**item)
        last = i == len(items) - 1
        if sub.until_step is not None and sub.until_truncated_below is not None:
            raise CascadeError(
                "give until_step or until_truncated_below, not both", file=source, field=f"curriculum[{i}]"
            )
        if not last and sub.until_step is None and sub.until_truncated_below is None:
            raise CascadeError(
                "every sub-stage but the last needs until_step or until_truncated_below",
                file=source,
                field=f"curriculum[{i}]",
            )
        if sub.until_truncated_below is not None and not 0.0 < sub.until_truncated_below <= 1.0:
            raise CascadeError("must be in (0, 1]", file=source, field=f"curriculum[{i}].until_truncated_below")
        out.append(sub)
    steps = [s.until_step for s in out if s.until_step is not None]
    if steps != sorted(steps):
        raise CascadeError("until_step values must increase", file=source, field="curriculum")
    return out


def advance_substage(
    curriculum: Sequence[SubStage], index: int, *, steps_done: int, truncated_share: float
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

"""What a recipe will do, before anything runs: the table ``--dry-run`` prints.

Steps are ``max_steps`` when it is set (it wins over ``epochs``, the Hugging Face
convention, exactly as the trainers count), else ``epochs x rows / batch_size`` when every
data source can be counted: a local file, or a toy-world generator (the world of the
recipe's seed is built in memory to count it). Otherwise the estimate is
unknown, with the reason.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cascade.data.heldout import heldout_count
from cascade.data.io import count_rows
from cascade.errors import CascadeError

if TYPE_CHECKING:
    from cascade.config.recipe import DataSource, GRPOStage, Recipe, RMStage, SFTStage


@dataclass(frozen=True)
class StagePlan:
    name: str
    kind: str
    parent: str
    steps: int | None  # None: unknown
    how: str  # how the estimate was made, or why it is unknown

    @property
    def steps_text(self) -> str:
        return "unknown" if self.steps is None else str(self.steps)


@functools.lru_cache(maxsize=4)  # built only when a generator is counted, once per seed
def _toy_part_sizes(seed: int) -> dict[str, int]:
    from cascade.toyworld import part_sizes

    return part_sizes(seed)


def plan_recipe(recipe: "Recipe") -> list[StagePlan]:
    plans = []
    for stage in recipe.stages:
        steps, how = _estimate_steps(stage, recipe.seed)
        plans.append(StagePlan(stage.name, stage.kind, recipe.parent_of(stage.name), steps, how))
    return plans


def _estimate_steps(stage: "SFTStage | RMStage | GRPOStage", seed: int) -> tuple[int | None, str]:
    if stage.max_steps is not None:  # wins over epochs, in the trainers too
        return stage.max_steps, "max_steps" if stage.epochs is None else "max_steps (wins over epochs)"
    assert stage.epochs is not None
    epoch_steps: int | None = None
    rows, why_unknown = _count_rows(stage.data, seed)
    if rows is not None:
        if stage.kind == "rm":  # the trainer splits whole pairs
            rows = round(rows)
            rows -= heldout_count(rows, stage.heldout_fraction)
        epoch_steps = stage.planned_steps(math.ceil(rows))  # as the trainers count
    if epoch_steps is not None:
        unit = {"grpo": "prompts", "sft": "sequences", "rm": "pairs"}[stage.kind]
        how = f"{stage.epochs} epoch(s) x {rows:g} {unit} / batch {stage.batch_size}"
        sampled = getattr(stage, "sampled_pairs", None)
        if sampled is not None:  # how many rated pairs the policy's replies give is known only then
            prompts, _ = _count_rows(sampled.data, seed)
            bound = "the" if prompts is None else f"up to {round(prompts) * sampled.max_pairs_per_prompt}"
            how = f"at least {how}, + {bound} sampled pairs"
        return epoch_steps, how
    return None, why_unknown


def _count_rows(sources: "list[DataSource]", seed: int) -> tuple[float | None, str]:
    """Weighted row count of all sources, or None with the reason it cannot be counted."""
    total = 0.0
    for source in sources:
        if source.hub is not None:
            return None, f"hub dataset {source.hub} is not counted before download"
        if source.generator is not None:
            head, _, part = source.generator.partition("/")
            rows = _toy_part_sizes(seed).get(part) if head == "toy" else None
            if rows is None:
                return None, f"generator {source.generator} makes no toy-world part"
            if source.limit is not None:
                rows = min(rows, source.limit)
        else:
            path = Path(source.path).expanduser()
            if not path.is_file():
                return None, f"no such data file: {source.path}"
            try:
                rows = count_rows(path)
            except CascadeError as exc:
                return None, exc.format()
            if source.limit is not None:
                rows = min(rows, source.limit)
        total += rows * source.weight
    return total, ""

"""Mode mixing for unified models: a set share of each batch is ``/think``, the rest ``/no_think``.

Rounding rule: the number of thinking prompts is ``floor(n * think_fraction + 0.5)``
(round half up), so batch 8 at 0.5 gives exactly 4/4 and batch 3 at 0.5 gives 2 think.
Which prompts think is a seeded shuffle of (seed, step), so a resumed run repeats it.
"""

from __future__ import annotations

import math

import numpy as np

THINK = "think"
NO_THINK = "no_think"


def think_count(n_prompts: int, think_fraction: float) -> int:
    """How many of ``n_prompts`` prompts think (the rounding rule above)."""
    if not 0.0 <= think_fraction <= 1.0:
        raise ValueError(f"think_fraction must be in [0, 1], got {think_fraction}")
    return math.floor(n_prompts * think_fraction + 0.5)


def assign_modes(
    n_prompts: int, think_fraction: float, *, seed: int, step: int, draw: int = 0
) -> list[str]:
    """One mode per prompt (a prompt's whole group shares its mode). ``draw`` tells apart
    several sampling rounds of one step (dynamic filtering over-samples)."""
    n_think = think_count(n_prompts, think_fraction)
    modes = [THINK] * n_think + [NO_THINK] * (n_prompts - n_think)
    order = np.random.default_rng([seed, step, draw]).permutation(n_prompts)
    return [modes[i] for i in order]

"""Which examples form each optimizer update, and how they become padded tensors.

Length bucketing, not packing: the step's examples are drawn by a seeded shuffle (so every
update is an unbiased sample of the data), then sorted by length and cut into micro-batches,
so each micro-batch pads to a similar length. Packing several conversations into one row
would need a block-diagonal attention mask to keep them from attending to each other, which
the engine's ``[B, T]`` padded-batch contract does not carry; the paper's step counts also
suggest about one conversation per sequence.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from cascade.engine.padding import collate, right_pad  # noqa: F401  (the trainers' batches)

# One optimizer update = its micro-batches, each a list of example indices.
StepPlan = list[list[int]]


@dataclass(frozen=True)
class StepSlot:
    """Where an update sits in the data order (what a checkpoint's data cursor records)."""

    epoch: int
    batch_in_epoch: int
    micro_batches: StepPlan


def plan_epoch(lengths: Sequence[int], batch_size: int, grad_accum: int, seed: int, epoch: int) -> list[StepPlan]:
    """The updates of one epoch: a permutation seeded by ``(seed, epoch)`` cut into batches
    of ``batch_size``, each sorted longest first and split into ``grad_accum`` micro-batches
    (fewer when the last batch is smaller than ``grad_accum``)."""
    order = np.random.default_rng([seed, epoch]).permutation(len(lengths)).tolist()
    plans = []
    for start in range(0, len(order), batch_size):
        batch = sorted(order[start:start + batch_size], key=lambda i: (-lengths[i], i))
        parts = min(grad_accum, len(batch))
        plans.append([chunk.tolist() for chunk in np.array_split(np.array(batch), parts)])
    return plans


def iter_steps(
    lengths: Sequence[int], batch_size: int, grad_accum: int, seed: int, total_steps: int
) -> Iterator[StepSlot]:
    """Yield ``StepSlot`` for updates ``0 .. total_steps-1`` in order, epoch after epoch
    (the last batch of an epoch may be smaller; the next epoch starts a fresh shuffle)."""
    emitted = 0
    for epoch in itertools.count():
        for index, plan in enumerate(plan_epoch(lengths, batch_size, grad_accum, seed, epoch)):
            if emitted == total_steps:
                return
            yield StepSlot(epoch=epoch, batch_in_epoch=index, micro_batches=plan)
            emitted += 1

"""Which examples form each optimizer update, and how they become padded tensors: SFT and
reward-model examples (``iter_steps``, ``collate``) and GRPO's rollouts (``pack_rollouts``).

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
from typing import TYPE_CHECKING, Iterator, Sequence, TypedDict

import numpy as np
import torch

from cascade.engine.padding import collate, right_pad  # noqa: F401  (the trainers' batches)

if TYPE_CHECKING:
    from cascade.trainers.rollout import RolloutBatch

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


class PlannedSteps:
    """The data-order half of a trainer's steps for the shared loop (SFT, reward model): a
    planned number of updates walking ``iter_steps``; a resumed run skips to its step, as the
    order is a pure function of (seed, step)."""

    def __init__(self, lengths: Sequence[int], batch_size: int, grad_accum: int, seed: int, total_steps: int) -> None:
        self.total = total_steps
        self._slots = iter_steps(lengths, batch_size, grad_accum, seed, total_steps)
        self._next_slot = 0
        self._slot: StepSlot | None = None

    def finished(self, step: int) -> bool:
        """Done after the planned number of updates."""
        return step >= self.total

    def restore(self, state: object) -> None:
        """Nothing beyond the step, which the loop restores."""

    def slot_for(self, step: int) -> StepSlot:
        """Update ``step``'s slot of the data order (slots before a resumed step are skipped)."""
        while self._next_slot <= step:
            self._slot = next(self._slots)
            self._next_slot += 1
        assert self._slot is not None
        return self._slot

    def cursor_state(self) -> dict[str, int]:
        """Where the last update sat in the data order, for the checkpoint."""
        assert self._slot is not None
        return {"epoch": self._slot.epoch, "batch_in_epoch": self._slot.batch_in_epoch + 1, "planned_steps": self.total}


class RolloutMicroBatch(TypedDict, total=False):
    """One micro-batch of GRPO rollouts as the engine and ``GRPOLoss`` read it: B rows
    (prompt + completion, right-padded to the longest, width T)."""

    input_ids: torch.Tensor  # [B, T] long
    attention_mask: torch.Tensor  # [B, T] long, 1 on prompt and completion
    loss_mask: torch.Tensor  # [B, T] long, 1 on completion tokens only
    advantages: torch.Tensor  # [B] float32, one per rollout (broadcast over its tokens)
    prompt_lens: torch.Tensor  # [B] long
    micro_index: int  # which micro-batch of the update (captured log-probs are filed under it)
    sampler_logprobs: torch.Tensor  # [B, T] float32, the sampler's log-probs (temperature 1 only)
    ref_logprobs: torch.Tensor  # [B, T] the KL reference's log-probs (kl_coef > 0)
    old_logprobs: torch.Tensor  # [B, T] the first PPO epoch's log-probs (later epochs)


def pack_rollouts(batch: "RolloutBatch", n_micro: int, pad_id: int, with_sampler: bool) -> list[RolloutMicroBatch]:
    """The valid rollouts that sampled a token, in batch order, cut into ``n_micro``
    right-padded micro-batches. The prompt ids come from the sampler itself, so the training
    pass scores exactly the sampled tokens."""
    rows = [
        i for i, (g, ok) in enumerate(zip(batch.generations, batch.valid)) if ok and g.token_ids
    ]
    size = -(-len(rows) // n_micro) if rows else 0
    out = []
    for m, start in enumerate(range(0, len(rows), max(size, 1))):
        chunk = rows[start:start + size]
        seqs = [batch.generations[i].prompt_ids + batch.generations[i].token_ids for i in chunk]
        width = max(len(s) for s in seqs)
        input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(chunk), width), dtype=torch.long)
        loss_mask = torch.zeros((len(chunk), width), dtype=torch.long)
        sampler = torch.zeros((len(chunk), width), dtype=torch.float32)
        for r, i in enumerate(chunk):
            gen = batch.generations[i]
            p, n = len(gen.prompt_ids), len(gen.token_ids)
            input_ids[r, : p + n] = torch.tensor(seqs[r])
            attention[r, : p + n] = 1
            loss_mask[r, p : p + n] = 1
            sampler[r, p : p + n] = torch.tensor(gen.logprobs, dtype=torch.float32)
        micro = RolloutMicroBatch(
            input_ids=input_ids,
            attention_mask=attention,
            loss_mask=loss_mask,
            advantages=torch.tensor([batch.advantages[i] for i in chunk], dtype=torch.float32),
            # Lets the engine run each group's shared prompt once (the loss reads only the
            # completion positions).
            prompt_lens=torch.tensor([len(batch.generations[i].prompt_ids) for i in chunk], dtype=torch.long),
            micro_index=m,
        )
        if with_sampler:
            micro["sampler_logprobs"] = sampler
        out.append(micro)
    return out

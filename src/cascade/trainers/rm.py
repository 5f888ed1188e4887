"""Reward-model training: a Bradley-Terry scalar head on a causal LM.

The engine hosts ``AutoModelForSequenceClassification`` (``head="score"``, num_labels=1,
``pad_token_id`` set) initialised from the causal LM: the backbone is reused and only the
linear ``score`` head is new. The output in ``run_dir/final`` loads with
``AutoModelForSequenceClassification.from_pretrained`` and scores a conversation rendered by
:func:`reward_model_text` as ``logits[:, 0]`` at the last non-pad token. The paper trains one
epoch (longer was worse), so ``epochs`` stays 1 unless a recipe says otherwise.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from cascade.data.heldout import heldout_count
from cascade.engine.base import Engine
from cascade.errors import CascadeError
from cascade.trainers.batching import PlannedSteps, collate
from cascade.trainers.loop import run_loop

if TYPE_CHECKING:
    from cascade.config.recipe import RMStage


@dataclass(frozen=True)
class EncodedPair:
    """A preference pair as token ids: the chosen and the rejected reply, each with the conversation."""
    chosen: list[int]
    rejected: list[int]


def reward_model_text(messages: Sequence[Mapping[str, Any]], response: str) -> str:
    """What the reward model reads: the conversation plus the candidate reply, rendered by
    the chat template in instruct mode without a generation prompt. The scorer must render
    the same way, or train and use see different inputs."""
    from cascade.chat.template import render

    conversation = [dict(m) for m in messages] + [{"role": "assistant", "content": response}]
    return render(conversation, enable_thinking=False, add_generation_prompt=False)


def encode_pair(record: Any, tokenizer: Any) -> EncodedPair:
    """Render and tokenize both sides of a preference record as the reward model reads them."""
    from cascade.data.records import record_messages

    messages = record_messages(record)
    get = record.get if isinstance(record, Mapping) else lambda name: getattr(record, name)
    texts = [reward_model_text(messages, get(side)) for side in ("chosen", "rejected")]
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return EncodedPair(chosen=list(ids[0]), rejected=list(ids[1]))


def split_heldout(num_pairs: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """``(train, heldout)`` indices from a seeded permutation; at least one held-out pair
    when ``fraction > 0`` and there are two pairs or more. Both lists are sorted."""
    order = np.random.default_rng(seed).permutation(num_pairs).tolist()
    count = heldout_count(num_pairs, fraction)
    return sorted(order[count:]), sorted(order[:count])


def pair_batch(pairs: Sequence[EncodedPair], pad_id: int) -> dict[str, torch.Tensor]:
    """Chosen rows first, then rejected rows in the same order (the loss pairs row i with
    row i + n)."""
    return collate([p.chosen for p in pairs] + [p.rejected for p in pairs], None, pad_id)


class BradleyTerryLoss:
    """``-log sigmoid(r_chosen - r_rejected)`` summed and divided by the pairs of the WHOLE
    update, so micro-batch losses add up to the update's mean."""

    needs_entropy = False

    def __init__(self, total_pairs: int) -> None:
        self.total = total_pairs

    def __call__(self, scores: torch.Tensor, batch: dict[str, Any], entropy: Any = None) -> tuple[torch.Tensor, dict[str, Any]]:
        half = scores.shape[0] // 2
        margin = scores[:half] - scores[half:]
        loss = -F.logsigmoid(margin).sum() / self.total
        return loss, {"correct": (margin > 0).sum(), "margin_sum": margin.detach().sum()}


def pair_accuracy(engine: Engine, pairs: Sequence[EncodedPair], batch_size: int) -> float | None:
    """Fraction of pairs whose chosen reply outscores the rejected one (None: no pairs)."""
    if not pairs:
        return None
    pad_id = engine.pad_id
    correct = 0
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        scores = engine.score(pair_batch(chunk, pad_id))
        correct += sum(scores[i] > scores[i + len(chunk)] for i in range(len(chunk)))
    return correct / len(pairs)


def train_rm(
    engine: Engine,
    pairs: Sequence[Any],
    settings: "RMStage",
    run_dir: str | Path,
    *,
    progress: bool = True,
    resume: bool = True,
) -> dict[str, Any]:
    """Train (or resume) a reward model on preference records (``prompt`` or ``messages``,
    ``chosen``, ``rejected``) with an engine built with ``head="score"``.

    Pairs whose longer side exceeds ``max_seq_len`` tokens are dropped. A seeded
    ``heldout_fraction`` of the pairs is kept out of training; its pair accuracy is logged
    with the final update and returned. The shared loop (``cascade.trainers.loop``) logs,
    checkpoints, resumes and writes ``run_dir/final``. Returns ``{"step", "final", "metrics",
    "resumed_from", "pairs", "dropped", "heldout_pairs", "heldout_accuracy"}``.
    """
    if engine.head != "score":
        raise RuntimeError("train_rm needs an engine built with head='score'")
    encoded = []
    for index, pair in enumerate(pairs):
        try:
            encoded.append(encode_pair(pair, engine.tokenizer))
        except CascadeError as exc:
            raise CascadeError(f"preference pair {index}: {exc.message}", file=exc.file, line=exc.line, field=exc.field) from None
    kept = [p for p in encoded if max(len(p.chosen), len(p.rejected)) <= settings.max_seq_len]
    dropped = len(encoded) - len(kept)
    train_idx, heldout_idx = split_heldout(len(kept), settings.heldout_fraction, settings.train_seed)
    train, heldout = [kept[i] for i in train_idx], [kept[i] for i in heldout_idx]
    if not train:
        raise CascadeError(f"no preference pair left to train on ({len(pairs)} given, {dropped} too long)", field="max_seq_len")
    total_steps = settings.planned_steps(len(train))
    engine.configure_optimizer(settings.optim_config(total_steps))
    steps = RMSteps(engine, train, heldout, settings, total_steps)
    result = run_loop(engine, steps, run_dir, save_every=settings.save_every,
                      keep_checkpoints=settings.keep_checkpoints, resume=resume, progress=progress)
    heldout_accuracy = result.metrics.get("heldout_accuracy")
    if heldout_accuracy is None:  # resumed after the last update: measure again
        heldout_accuracy = pair_accuracy(engine, heldout, steps.micro_size)
    return {**result.summary(), "pairs": len(train), "dropped": dropped, "heldout_pairs": len(heldout),
            "heldout_accuracy": heldout_accuracy}


class RMSteps(PlannedSteps):
    """Reward-model steps for the shared loop: the seeded, length-bucketed pair order and one
    Bradley-Terry update per slot; the last update also measures the held-out pairs."""

    name = "rm"

    def __init__(self, engine: Engine, train: Sequence[EncodedPair], heldout: Sequence[EncodedPair],
                 settings: "RMStage", total_steps: int) -> None:
        super().__init__([len(p.chosen) + len(p.rejected) for p in train], settings.batch_size,
                         settings.grad_accum, settings.train_seed, total_steps)
        self.engine = engine
        self.train = train
        self.heldout = heldout
        self.pad_id = engine.pad_id
        self.micro_size = math.ceil(settings.batch_size / settings.grad_accum)

    def check_resume(self, state: Mapping[str, Any], checkpoint: Path) -> None:
        """A checkpoint made on other pairs cannot continue this run."""
        if state.get("pairs") != len(self.train):
            raise CascadeError(
                f"checkpoint was made with {state.get('pairs')} training pairs, the data now has {len(self.train)}",
                file=str(checkpoint),
            )

    def train_step(self, step: int) -> dict[str, Any]:
        """Update number ``step`` on its slot of the pair order."""
        slot = self.slot_for(step)
        metrics = rm_update(self.engine, self.train, slot.micro_batches, self.pad_id)
        metrics.update(step=step + 1, epoch=slot.epoch)
        if step + 1 == self.total:
            metrics["heldout_accuracy"] = pair_accuracy(self.engine, self.heldout, self.micro_size)
        return metrics

    def state(self, metrics: Mapping[str, Any]) -> dict[str, Any]:
        """The data cursor and the number of training pairs, checked on resume."""
        return {**self.cursor_state(), "pairs": len(self.train), "metrics": metrics}

    def status(self, metrics: Mapping[str, Any]) -> str:
        """Loss and pair accuracy of the update."""
        return f"loss {metrics['loss']:.4f} acc {metrics['accuracy']:.2f}"


def rm_update(engine: Engine, train: Sequence[EncodedPair], micro_batches: list[list[int]],
              pad_id: int) -> dict[str, Any]:
    """One optimizer update over ``micro_batches`` (lists of pair indices): the Bradley-Terry
    loss of the whole update, gradients accumulated micro-batch by micro-batch."""
    started = time.perf_counter()
    total = sum(len(m) for m in micro_batches)
    loss_fn = BradleyTerryLoss(total)
    loss = correct = margin = 0.0
    tokens = 0
    for micro in micro_batches:
        chunk = [train[i] for i in micro]
        tokens += sum(len(p.chosen) + len(p.rejected) for p in chunk)
        result = engine.forward_backward(pair_batch(chunk, pad_id), loss_fn)
        loss += result["loss"]
        correct += result["correct"]
        margin += result["margin_sum"]
    update = engine.optim_step()
    elapsed = time.perf_counter() - started
    return {"loss": loss, "accuracy": correct / total, "margin": margin / total, "lr": update["lr"],
            "grad_norm": update["grad_norm"], "tokens": tokens, "tokens_per_s": tokens / elapsed}

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
from cascade.engine.checkpoint import (
    latest_checkpoint,
    prune_checkpoints,
    read_trainer_state,
    write_checkpoint,
    write_final,
)
from cascade.errors import CascadeError
from cascade.trainers.batching import collate, iter_steps
from cascade.trainers.common import MetricsLogger, make_progress

if TYPE_CHECKING:
    from cascade.config.recipe import RMStage


@dataclass(frozen=True)
class EncodedPair:
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


def pair_accuracy(engine: Any, pairs: Sequence[EncodedPair], batch_size: int) -> float | None:
    """Fraction of pairs whose chosen reply outscores the rejected one (None: no pairs)."""
    if not pairs:
        return None
    pad_id = engine.tokenizer.pad_token_id
    correct = 0
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        scores = engine.score(pair_batch(chunk, pad_id))
        correct += sum(scores[i] > scores[i + len(chunk)] for i in range(len(chunk)))
    return correct / len(pairs)


def train_rm(
    engine: Any,
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
    with the final update and returned. Returns ``{"step", "final", "metrics",
    "resumed_from", "pairs", "dropped", "heldout_pairs", "heldout_accuracy"}``.
    """
    if getattr(engine, "head", None) != "score":
        raise RuntimeError("train_rm needs an engine built with head='score'")
    run_dir = Path(run_dir)
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

    step, resumed_from = 0, None
    if resume and (ckpt := latest_checkpoint(run_dir)) is not None:
        state = read_trainer_state(ckpt)
        if state.get("pairs") != len(train):
            raise CascadeError(
                f"checkpoint was made with {state.get('pairs')} training pairs, the data now has {len(train)}",
                file=str(ckpt),
            )
        engine.load(str(ckpt))
        step = resumed_from = int(state["step"])

    pad_id = engine.tokenizer.pad_token_id
    lengths = [len(p.chosen) + len(p.rejected) for p in train]
    micro_size = math.ceil(settings.batch_size / settings.grad_accum)
    logger = MetricsLogger(run_dir / "metrics.jsonl", resume_step=step)
    metrics: dict[str, Any] = {}
    slots = iter_steps(lengths, settings.batch_size, settings.grad_accum, settings.train_seed, total_steps)
    try:
        with make_progress(progress) as bar:
            task = bar.add_task("rm", total=total_steps, completed=step, status="")
            for index, slot in enumerate(slots):
                if index < step:
                    continue
                metrics = _train_step(engine, train, slot.micro_batches, pad_id)
                step = index + 1
                metrics.update(step=step, epoch=slot.epoch)
                if step == total_steps:
                    metrics["heldout_accuracy"] = pair_accuracy(engine, heldout, micro_size)
                logger.log(metrics)
                bar.update(task, completed=step, status=f"loss {metrics['loss']:.4f} acc {metrics['accuracy']:.2f}")
                state = {"epoch": slot.epoch, "batch_in_epoch": slot.batch_in_epoch + 1, "pairs": len(train),
                         "planned_steps": total_steps, "metrics": metrics}
                if step == total_steps or (settings.save_every and step % settings.save_every == 0):
                    write_checkpoint(run_dir, step, engine, state)
                    prune_checkpoints(run_dir, keep=settings.keep_checkpoints)
    finally:
        logger.close()
    heldout_accuracy = metrics.get("heldout_accuracy")
    if heldout_accuracy is None:  # resumed after the last update: measure again
        heldout_accuracy = pair_accuracy(engine, heldout, micro_size)
    final = write_final(run_dir / "final", engine)
    return {"step": step, "final": str(final), "metrics": metrics, "resumed_from": resumed_from,
            "pairs": len(train), "dropped": dropped, "heldout_pairs": len(heldout),
            "heldout_accuracy": heldout_accuracy}


def _train_step(engine: Any, train: Sequence[EncodedPair], micro_batches: list[list[int]], pad_id: int) -> dict[str, Any]:
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

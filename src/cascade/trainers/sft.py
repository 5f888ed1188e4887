"""Supervised fine-tuning on chat conversations (one SFT stage of the paper's curriculum).

Each record is rendered with the TRAINING variant of the chat template, which marks the
characters of the trained assistant text: every assistant turn, or only the final one, as the
record's ``train_turns`` says (default ``DEFAULT_TRAIN_TURNS``, "all"; the reason is at its
definition in ``cascade.data.records``), each with its ``<think>`` block where the render keeps
one; only tokens overlapping those characters carry loss. Records
longer than ``max_seq_len`` tokens are DROPPED, not truncated: a cut-off reasoning trace
would teach the model to stop mid-thought or lose the answer (the paper likewise filters
truncated responses). Multi-stage SFT is two calls with different data mixes and
``max_seq_len``; thinking and instruct targets for one prompt are simply two records.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence, TypeVar

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
    from cascade.config.recipe import SFTStage

T = TypeVar("T")


@dataclass(frozen=True)
class EncodedExample:
    input_ids: list[int]
    loss_mask: list[int]


def mix_sources(sources: Sequence[tuple[Sequence[T], float]], seed: int) -> list[T]:
    """Concatenate data sources with per-source upsampling, deterministically.

    Weight 2.0 repeats every record twice; 1.5 keeps every record once and adds a seeded
    sample (without replacement) of half of them; 0.5 keeps a seeded half. Sources stay in
    order (the trainer shuffles); the sample of source i depends only on ``seed`` and i.
    """
    mixed: list[T] = []
    for index, (records, weight) in enumerate(sources):
        if weight < 0:
            raise CascadeError(f"source {index} has negative weight {weight}", field="weight")
        records = list(records)
        whole = int(weight)
        extra = round((weight - whole) * len(records))
        mixed.extend(records * whole)
        picked = random.Random(f"{seed}/{index}").sample(range(len(records)), extra)
        mixed.extend(records[i] for i in sorted(picked))
    return mixed


def _field(record: Any, name: str) -> Any:
    return record.get(name) if isinstance(record, Mapping) else getattr(record, name, None)


def token_mask_from_spans(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]) -> list[int]:
    """1 for every token whose characters overlap a trained span."""
    return [
        int(any(start < span_end and end > span_start for span_start, span_end in spans) and end > start)
        for start, end in offsets
    ]


def encode_record(record: Any, tokenizer: Any) -> EncodedExample:
    """Render one SFT record (``messages`` + ``mode``) and mark its trained tokens."""
    from cascade.chat.template import render_training
    from cascade.data.records import DEFAULT_TRAIN_TURNS, record_messages

    mode = _field(record, "mode")
    if mode not in ("think", "no_think"):
        raise CascadeError(f"mode must be 'think' or 'no_think' (got {mode!r})", field="mode")
    turns = _field(record, "train_turns") or DEFAULT_TRAIN_TURNS
    if turns not in ("all", "final"):
        raise CascadeError(f"train_turns must be 'all' or 'final' (got {turns!r})", field="train_turns")
    text, spans = render_training(record_messages(record), enable_thinking=mode == "think",
                                  tools=_field(record, "tools"), every_turn=turns == "all")
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    mask = token_mask_from_spans(encoded["offset_mapping"], spans)
    mask[0] = 0  # the first token has no prefix to be predicted from
    return EncodedExample(input_ids=list(encoded["input_ids"]), loss_mask=mask)


def encode_records(records: Sequence[Any], tokenizer: Any, max_seq_len: int) -> tuple[list[EncodedExample], int]:
    """Encode all records; returns the kept examples and how many were dropped (too long,
    or nothing to train on)."""
    kept, dropped = [], 0
    for index, record in enumerate(records):
        try:
            example = encode_record(record, tokenizer)
        except CascadeError as exc:
            raise CascadeError(f"SFT record {index}: {exc.message}", file=exc.file, line=exc.line, field=exc.field) from None
        if len(example.input_ids) > max_seq_len or not any(example.loss_mask):
            dropped += 1
        else:
            kept.append(example)
    return kept, dropped


class TokenNLL:
    """Summed NLL of the masked tokens divided by the trained tokens of the WHOLE update,
    so the micro-batch losses add up to the update's per-token mean."""

    needs_entropy = False

    def __init__(self, total_target_tokens: int) -> None:
        self.total = total_target_tokens

    def __call__(self, token_logprobs: Any, batch: dict[str, Any], entropy: Any = None) -> tuple[Any, dict[str, Any]]:
        mask = batch["loss_mask"].to(token_logprobs.dtype)
        return -(token_logprobs * mask).sum() / self.total, {}


def train_sft(
    engine: Any,
    records: Sequence[Any],
    settings: "SFTStage",
    run_dir: str | Path,
    *,
    progress: bool = True,
    resume: bool = True,
) -> dict[str, Any]:
    """Run (or resume) one SFT stage on a LocalEngine built with ``head="lm"``.

    ``settings`` is the recipe's typed stage (``Recipe.resolved_stage``: its seed filled in).
    The engine's optimizer is (re)configured from it. Logs one JSON line per
    update to ``run_dir/metrics.jsonl`` (loss, lr, grad_norm, tokens/s), checkpoints every
    ``save_every`` updates and at the end, resumes from the latest complete checkpoint in the
    same data order, and writes the stage's Hugging Face model to ``run_dir/final``.
    Returns ``{"step", "final", "metrics", "resumed_from", "examples", "dropped"}``.
    """
    run_dir = Path(run_dir)
    examples, dropped = encode_records(records, engine.tokenizer, settings.max_seq_len)
    if not examples:
        raise CascadeError(
            f"none of the {len(records)} SFT records fits max_seq_len={settings.max_seq_len} with a trained turn",
            field="max_seq_len",
        )
    total_steps = settings.planned_steps(len(examples))
    engine.configure_optimizer(settings.optim_config(total_steps))

    step, resumed_from = 0, None
    if resume and (ckpt := latest_checkpoint(run_dir)) is not None:
        state = read_trainer_state(ckpt)
        if state.get("examples") != len(examples):
            raise CascadeError(
                f"checkpoint was made with {state.get('examples')} examples, the data now has {len(examples)}; "
                "resume needs the same data (or start a fresh run directory)",
                file=str(ckpt),
            )
        engine.load(str(ckpt))
        step = resumed_from = int(state["step"])

    pad_id = engine.tokenizer.pad_token_id
    lengths = [len(e.input_ids) for e in examples]
    logger = MetricsLogger(run_dir / "metrics.jsonl", resume_step=step)
    metrics: dict[str, Any] = {}
    slots = iter_steps(lengths, settings.batch_size, settings.grad_accum, settings.train_seed, total_steps)
    try:
        with make_progress(progress) as bar:
            task = bar.add_task("sft", total=total_steps, completed=step, status="")
            for index, slot in enumerate(slots):
                if index < step:
                    continue  # already trained before the checkpoint we resumed from
                metrics = _train_step(engine, examples, slot.micro_batches, pad_id)
                step = index + 1
                metrics.update(step=step, epoch=slot.epoch)
                logger.log(metrics)
                bar.update(task, completed=step,
                           status=f"loss {metrics['loss']:.4f} lr {metrics['lr']:.2e} {metrics['tokens_per_s']:.0f} tok/s")
                state = {"epoch": slot.epoch, "batch_in_epoch": slot.batch_in_epoch + 1,
                         "examples": len(examples), "planned_steps": total_steps, "metrics": metrics}
                if step == total_steps or (settings.save_every and step % settings.save_every == 0):
                    write_checkpoint(run_dir, step, engine, state)
                    prune_checkpoints(run_dir, keep=settings.keep_checkpoints)
    finally:
        logger.close()
    final = write_final(run_dir / "final", engine)
    return {"step": step, "final": str(final), "metrics": metrics, "resumed_from": resumed_from,
            "examples": len(examples), "dropped": dropped}


def _train_step(engine: Any, examples: Sequence[EncodedExample], micro_batches: list[list[int]], pad_id: int) -> dict[str, Any]:
    started = time.perf_counter()
    chosen = [[examples[i] for i in micro] for micro in micro_batches]
    target_tokens = sum(sum(e.loss_mask) for micro in chosen for e in micro)
    tokens = sum(len(e.input_ids) for micro in chosen for e in micro)
    loss_fn = TokenNLL(target_tokens)
    loss = 0.0
    for micro in chosen:
        batch = collate([e.input_ids for e in micro], [e.loss_mask for e in micro], pad_id)
        loss += engine.forward_backward(batch, loss_fn)["loss"]
    update = engine.optim_step()
    elapsed = time.perf_counter() - started
    return {"loss": loss, "lr": update["lr"], "grad_norm": update["grad_norm"], "tokens": tokens,
            "target_tokens": target_tokens, "tokens_per_s": tokens / elapsed}

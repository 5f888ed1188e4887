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

from cascade.engine.base import Engine
from cascade.errors import CascadeError
from cascade.trainers.batching import PlannedSteps, collate
from cascade.trainers.loop import run_loop

if TYPE_CHECKING:
    from cascade.config.recipe import SFTStage

T = TypeVar("T")


@dataclass(frozen=True)
class EncodedExample:
    """One SFT record as token ids, with 1 on the tokens that carry loss."""
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
    engine: Engine,
    records: Sequence[Any],
    settings: "SFTStage",
    run_dir: str | Path,
    *,
    progress: bool = True,
    resume: bool = True,
) -> dict[str, Any]:
    """Run (or resume) one SFT stage on an engine built with ``head="lm"``.

    ``settings`` is the recipe's typed stage (``Recipe.resolved_stage``: its seed filled in).
    The engine's optimizer is (re)configured from it. The shared loop
    (``cascade.trainers.loop``) logs one JSON line per update to ``run_dir/metrics.jsonl``
    (loss, lr, grad_norm, tokens/s), checkpoints every ``save_every`` updates and at the end,
    resumes from the latest complete checkpoint in the same data order, and writes the stage's
    Hugging Face model to ``run_dir/final``.
    Returns ``{"step", "final", "metrics", "resumed_from", "examples", "dropped"}``.
    """
    examples, dropped = encode_records(records, engine.tokenizer, settings.max_seq_len)
    if not examples:
        raise CascadeError(
            f"none of the {len(records)} SFT records fits max_seq_len={settings.max_seq_len} with a trained turn",
            field="max_seq_len",
        )
    total_steps = settings.planned_steps(len(examples))
    engine.configure_optimizer(settings.optim_config(total_steps))
    steps = SFTSteps(engine, examples, settings, total_steps)
    result = run_loop(engine, steps, run_dir, save_every=settings.save_every,
                      keep_checkpoints=settings.keep_checkpoints, resume=resume, progress=progress)
    return {**result.summary(), "examples": len(examples), "dropped": dropped}


class SFTSteps(PlannedSteps):
    """SFT's steps for the shared loop: the seeded, length-bucketed data order
    (``cascade.trainers.batching.iter_steps``) and one token-NLL update per slot."""

    name = "sft"

    def __init__(self, engine: Engine, examples: Sequence[EncodedExample], settings: "SFTStage",
                 total_steps: int) -> None:
        super().__init__([len(e.input_ids) for e in examples], settings.batch_size, settings.grad_accum,
                         settings.train_seed, total_steps)
        self.engine = engine
        self.examples = examples
        self.pad_id = engine.pad_id

    def check_resume(self, state: Mapping[str, Any], checkpoint: Path) -> None:
        """A checkpoint made on other data cannot continue this run."""
        if state.get("examples") != len(self.examples):
            raise CascadeError(
                f"checkpoint was made with {state.get('examples')} examples, the data now has {len(self.examples)}; "
                "resume needs the same data (or start a fresh run directory)",
                file=str(checkpoint),
            )

    def train_step(self, step: int) -> dict[str, Any]:
        """Update number ``step`` on its slot of the data order."""
        slot = self.slot_for(step)
        metrics = sft_update(self.engine, self.examples, slot.micro_batches, self.pad_id)
        metrics.update(step=step + 1, epoch=slot.epoch)
        return metrics

    def state(self, metrics: Mapping[str, Any]) -> dict[str, Any]:
        """The data cursor and data size, checked on resume."""
        return {**self.cursor_state(), "examples": len(self.examples), "metrics": metrics}

    def status(self, metrics: Mapping[str, Any]) -> str:
        """Loss, learning rate and throughput."""
        return f"loss {metrics['loss']:.4f} lr {metrics['lr']:.2e} {metrics['tokens_per_s']:.0f} tok/s"


def sft_update(engine: Engine, examples: Sequence[EncodedExample], micro_batches: list[list[int]],
               pad_id: int) -> dict[str, Any]:
    """One optimizer update over ``micro_batches`` (lists of example indices): the token NLL
    of the whole update, gradients accumulated micro-batch by micro-batch."""
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

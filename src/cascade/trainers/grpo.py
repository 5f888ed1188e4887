"""The GRPO trainer with the paper's semantics (paper section 4.1.2).

One step: draw prompts, give each a mode, sample G rollouts per prompt, score them
(overlapping generation and scoring), apply the overlong rule, compute group advantages,
optionally drop zero-variance groups and over-sample (dynamic filter), then ONE optimizer
update over the batch (strict on-policy) with a token-level loss. Every knob that the
paper varies per stage is a field of the recipe's ``GRPOStage``, which the trainer takes as is.

Resume: a checkpoint holds the engine state (weights, optimizer, scheduler, RNG) plus the
data cursor, the epoch-filter outcomes and the curriculum position. All trainer randomness
is a pure function of (seed, step), and every generation call gets its own seed, so on CPU
a resumed run reproduces the uninterrupted one.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import torch

from cascade.algo.advantages import group_advantages, group_slices, repeat_for_groups, tanh_group_shaping
from cascade.algo.curriculum import advance_substage
from cascade.algo.filters import apply_overlong, classify_group, select_signal_groups
from cascade.algo.losses import GRPOLoss
from cascade.algo.modes import assign_modes
from cascade.engine.base import Engine, Generation, SamplingParams
from cascade.engine.logprobs import shifted_token_logprobs
from cascade.errors import CascadeError
from cascade.config.recipe import StepKnobs
from cascade.trainers.common import MetricsLogger
from cascade.trainers.rollout import (
    PromptStream,
    RewardFn,
    generate_and_score,
    record_domain,
    record_messages,
    stage_reward_fn,
)
from cascade.verifiers.base import VerifyResult
from cascade.verifiers.stage_rewards import truncated_reward

if TYPE_CHECKING:
    from cascade.config.recipe import GRPOStage

# Metric keys that measure wall time; they differ between otherwise identical runs.
TIMING_KEYS = ("time_generate_s", "time_reward_s", "time_reward_compute_s", "time_train_s", "time_step_s", "tokens_per_s")


def knobs_for(settings: "GRPOStage", index: int) -> StepKnobs:
    """The knobs of curriculum entry ``index`` (any index without a curriculum)."""
    return settings.substage_knobs(settings.substage_name(index))


def resolve_reward_fn(settings: "GRPOStage") -> RewardFn:
    """The stage reward named by ``settings.reward``, else each record's own verifier."""
    if settings.reward is not None:
        return stage_reward_fn(settings.reward, reward_model=settings.reward_model)
    from cascade.verifiers.batch import score_batch

    return score_batch


def render_prompt(record: Mapping[str, Any], index: int, mode: str) -> str:
    from cascade.chat.template import render

    return render(record_messages(record, index), enable_thinking=mode == "think", add_generation_prompt=True)


def _load_reference(path: str, engine: Any) -> Any:
    """A frozen copy of the stage's starting policy, for the KL term only."""
    from cascade.engine.local import LocalEngine

    return LocalEngine(path, device=str(engine.device), optim=None)


@dataclass
class _Rollouts:
    """The rollouts of one step, flat and grouped G at a time."""

    records: list[Mapping[str, Any]] = field(default_factory=list)  # one per rollout
    modes: list[str] = field(default_factory=list)
    generations: list[Generation] = field(default_factory=list)
    results: list[VerifyResult] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)  # after the overlong rule
    valid: list[bool] = field(default_factory=list)
    advantages: list[float] = field(default_factory=list)

    def extend_groups(self, other: _Rollouts, groups: Sequence[int], group_size: int) -> None:
        for g in groups:
            sl = slice(g * group_size, (g + 1) * group_size)
            for name in ("records", "modes", "generations", "results", "rewards", "valid", "advantages"):
                getattr(self, name).extend(getattr(other, name)[sl])


def _sample_round(
    engine: Engine,
    stream: PromptStream,
    settings: "GRPOStage",
    knobs: StepKnobs,
    reward_fn: RewardFn,
    *,
    n_prompts: int,
    step: int,
    draw: int,
    tally: dict[str, float],
) -> tuple[_Rollouts, np.ndarray]:
    """One sampling round: n_prompts prompts x G rollouts, scored, with advantages."""
    G = settings.group_size
    records = stream.take(n_prompts)
    modes = assign_modes(len(records), settings.think_fraction, seed=settings.train_seed, step=step, draw=draw)
    prompts = [render_prompt(r, stream.position(r), m) for r, m in zip(records, modes)]
    tokenizer = getattr(engine, "tokenizer", None)
    if tokenizer is not None and prompts:
        # A prompt over the budget cannot be cut without breaking the chat format: skip it.
        lengths = [len(ids) for ids in tokenizer(prompts, add_special_tokens=False)["input_ids"]]
        fits = [n <= knobs.max_prompt_len for n in lengths]
        tally["prompts_too_long"] += fits.count(False)
        records, modes, prompts = (
            [x for x, ok in zip(items, fits) if ok] for items in (records, modes, prompts)
        )

    def sampling(chunk: int) -> SamplingParams:
        # One seed per (seed, step, draw, chunk): a resumed run draws the same samples.
        seed = int(np.random.default_rng([settings.train_seed, step, draw, chunk]).integers(2**31 - 1))
        return SamplingParams(
            max_new_tokens=knobs.max_response_len,
            temperature=knobs.temperature,
            top_p=settings.top_p,
            top_k=settings.top_k,
            seed=seed,
        )

    flat_records = repeat_for_groups(records, G)
    rollout = generate_and_score(
        engine,
        repeat_for_groups(prompts, G),
        flat_records,
        sampling=sampling,
        reward_fn=reward_fn,
        # RLHF's language-mixing floor is the batch minimum: score the round in one call.
        chunks=1 if settings.reward == "rlhf" else settings.generation_chunks,
        unit=G,
    )
    tally["time_generate_s"] += rollout.generate_s
    tally["time_reward_s"] += rollout.reward_s
    tally["time_reward_compute_s"] += rollout.reward_compute_s
    rewards, valid = apply_overlong(
        [r.score for r in rollout.results], [g.finish_reason for g in rollout.generations], knobs.overlong_filter,
        truncated_score=truncated_reward(settings.reward),
    )
    # Shaping feeds the advantages only; the logged rewards stay the stage's own.
    shaped = tanh_group_shaping(rewards, G, eps=settings.adv_eps, valid=valid) \
        if settings.reward_shaping == "group_tanh" else rewards
    adv = group_advantages(shaped, G, eps=settings.adv_eps, valid=valid)
    for g, sl in enumerate(group_slices(len(rewards), G)):
        stream.record_outcome(records[g], classify_group([r.passed for r in rollout.results[sl]]))
    out = _Rollouts(
        records=flat_records,
        modes=repeat_for_groups(modes, G),
        generations=rollout.generations,
        results=rollout.results,
        rewards=rewards,
        valid=valid,
        advantages=adv.advantages.tolist(),
    )
    return out, adv.zero_variance


def _collect_batch(
    engine: Engine,
    stream: PromptStream,
    settings: "GRPOStage",
    knobs: StepKnobs,
    reward_fn: RewardFn,
    *,
    step: int,
    tally: dict[str, float],
) -> tuple[_Rollouts, _Rollouts, dict[str, float]]:
    """Returns (the batch to train on, every rollout sampled this step, filter metrics).

    Without the dynamic filter the batch is one round. With it, groups without signal are
    dropped and more prompts are drawn until ``batch_size`` groups have signal or
    ``max_filter_tries`` rounds were drawn; a short batch then trains as it is (and a batch
    with no signal at all still takes its update, whose policy gradient is zero).
    """
    G = settings.group_size
    batch, seen = _Rollouts(), _Rollouts()
    n_groups = n_zero = tries = 0
    while tries < (settings.max_filter_tries if settings.dynamic_filter else 1):
        need = settings.batch_size - len(batch.records) // G
        if need <= 0:
            break
        round_, zero_var = _sample_round(
            engine, stream, settings, knobs, reward_fn, n_prompts=need, step=step, draw=tries,
            tally=tally,
        )
        tries += 1
        n_groups += len(zero_var)
        n_zero += int(zero_var.sum())
        seen.extend_groups(round_, range(len(zero_var)), G)
        keep = select_signal_groups(zero_var, need) if settings.dynamic_filter else list(range(len(zero_var)))
        batch.extend_groups(round_, keep, G)
    if not batch.records:
        batch = seen
    return batch, seen, {
        "zero_variance_share": n_zero / max(n_groups, 1),
        "filter_tries": float(tries),
        "groups_trained": float(len(batch.records) // G),
    }


def _micro_batches(batch: _Rollouts, n_micro: int, pad_id: int, with_sampler: bool) -> list[dict[str, Any]]:
    """Right-padded tensors per micro-batch; the prompt ids come from the sampler itself so
    the training pass scores exactly the sampled tokens."""
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
        micro = {
            "input_ids": input_ids,
            "attention_mask": attention,
            "loss_mask": loss_mask,
            "advantages": torch.tensor([batch.advantages[i] for i in chunk], dtype=torch.float32),
            # Lets the engine run each group's shared prompt once (the loss reads only the
            # completion positions).
            "prompt_lens": torch.tensor([len(batch.generations[i].prompt_ids) for i in chunk], dtype=torch.long),
            "micro_index": m,
        }
        if with_sampler:
            micro["sampler_logprobs"] = sampler
        out.append(micro)
    return out


@torch.no_grad()
def _reference_logprobs(reference: Any, micro: Mapping[str, Any]) -> torch.Tensor:
    model = reference.model
    device = next(model.parameters()).device
    logits = model(
        input_ids=micro["input_ids"].to(device), attention_mask=micro["attention_mask"].to(device)
    ).logits
    return shifted_token_logprobs(logits, micro["input_ids"].to(device), with_entropy=False)[0].cpu()


def _train_on_batch(
    engine: Engine, batch: _Rollouts, settings: "GRPOStage", knobs: StepKnobs, reference: Any, pad_id: int
) -> dict[str, float]:
    check_sampler = knobs.temperature == 1.0
    micros = _micro_batches(batch, settings.grad_accum, pad_id, with_sampler=check_sampler)
    if reference is not None:
        for micro in micros:
            micro["ref_logprobs"] = _reference_logprobs(reference, micro)
    total_tokens = float(sum(int(m["loss_mask"].sum()) for m in micros))
    total_seqs = float(sum(int((m["loss_mask"].sum(dim=1) > 0).sum()) for m in micros))
    metrics: dict[str, float] = {}
    captured: dict[int, torch.Tensor] = {}
    for epoch in range(settings.ppo_epochs):
        loss_fn = GRPOLoss(
            loss_agg=settings.loss_agg,
            total_tokens=total_tokens,
            total_seqs=total_seqs,
            clip_low=settings.clip_low,
            clip_high=settings.clip_high,
            kl_coef=settings.kl_coef,
            entropy_coef=settings.entropy_coef,
            capture_logprobs=settings.ppo_epochs > 1 and epoch == 0,
        )
        sums: dict[str, float] = {}
        gap_max = 0.0
        for micro in micros:
            if epoch > 0:
                micro = {**micro, "old_logprobs": captured[micro["micro_index"]]}
                micro.pop("sampler_logprobs", None)
            result = engine.forward_backward(micro, loss_fn)
            for key, value in result.items():
                if key == "sampler_logprob_gap_max":
                    gap_max = max(gap_max, float(value))
                else:
                    sums[key] = sums.get(key, 0.0) + float(value)
        captured = loss_fn.captured
        tokens = max(sums.get("loss_tokens", 0.0), 1.0)
        if "sampler_logprob_gap_sum" in sums:
            gap_mean = sums["sampler_logprob_gap_sum"] / tokens
            metrics["sampler_logprob_gap_mean"] = gap_mean
            metrics["sampler_logprob_gap_max"] = gap_max
            if gap_mean > settings.on_policy_tol:  # checked before the update is applied
                raise RuntimeError(
                    f"on-policy check failed: the training pass scores the sampled tokens "
                    f"{gap_mean:.4f} nats/token away from the sampler (tolerance "
                    f"{settings.on_policy_tol}); the batch is misaligned or the weights are stale"
                )
        step_metrics = engine.optim_step()
        if epoch == 0:
            metrics["loss"] = sums.get("loss", 0.0)
            metrics["pg_loss"] = sums.get("pg_loss_sum", 0.0) / tokens
            if "entropy_sum" in sums:
                metrics["entropy"] = sums["entropy_sum"] / tokens
            if "kl_sum" in sums:
                metrics["kl"] = sums["kl_sum"] / tokens
            metrics["grad_norm"] = float(step_metrics.get("grad_norm", float("nan")))
            metrics["lr"] = float(step_metrics.get("lr", float("nan")))
        else:
            metrics["clip_fraction"] = sums.get("clip_active_sum", 0.0) / tokens
    metrics["loss_tokens"] = total_tokens
    return metrics


def _rollout_metrics(seen: _Rollouts) -> dict[str, float]:
    """Rollout statistics over every rollout drawn this step. ``reward*`` is the training
    reward (after the overlong rule), ``pass_rate*`` the verifier's verdict."""
    n = max(len(seen.generations), 1)
    lengths = [len(g.token_ids) for g in seen.generations]
    metrics = {
        "reward_mean": float(np.mean(seen.rewards)) if seen.rewards else 0.0,
        "pass_rate": float(np.mean([r.passed for r in seen.results])) if seen.results else 0.0,
        "response_len_mean": float(np.mean(lengths)) if lengths else 0.0,
        "response_len_max": float(max(lengths, default=0)),
        "truncated_share": sum(g.finish_reason == "length" for g in seen.generations) / n,
        "generated_tokens": float(sum(lengths)),
    }
    # How each reward was reached (exact / lexical / judge / judge_fallback for SWE): a judge
    # that failed shows up here as a count, never as a silent change of score.
    methods = Counter(str(r.details.get("method")) for r in seen.results if r.details.get("method"))
    for method, count in sorted(methods.items()):
        metrics[f"reward_method/{method}"] = float(count)
    by_key: dict[str, list[tuple[float, bool]]] = {}
    for record, mode, reward, result in zip(seen.records, seen.modes, seen.rewards, seen.results):
        by_key.setdefault(f"{record_domain(record)}/{mode}", []).append((reward, result.passed))
    for key, pairs in sorted(by_key.items()):
        metrics[f"reward/{key}"] = float(np.mean([p[0] for p in pairs]))
        metrics[f"pass_rate/{key}"] = float(np.mean([p[1] for p in pairs]))
    return metrics


def train_grpo(
    engine: Engine,
    prompt_records: Sequence[Mapping[str, Any]],
    settings: "GRPOStage",
    run_dir: str | Path,
    *,
    reward_fn: RewardFn | None = None,
    progress: bool = True,
    resume: bool = True,
    reference_path: str | None = None,
) -> dict[str, Any]:
    """Run (or resume) one GRPO stage; returns ``{"step", "final", "metrics", "resumed_from"}``.

    ``settings`` is the recipe's typed stage (``Recipe.resolved_stage``: seed filled in, and
    ``reward_model`` a checkpoint path or hub id). ``engine`` must already carry its optimizer
    (``settings.optim_config(settings.planned_steps(n_prompts))``).
    ``reward_fn(records, completions) -> list[VerifyResult]`` overrides the reward that
    ``settings.reward`` names. The KL reference (loaded only when ``kl_coef`` > 0) is
    ``reference_path``, by default the checkpoint the engine was built from.
    """
    from cascade.engine.checkpoint import (
        latest_checkpoint,
        prune_checkpoints,
        read_trainer_state,
        write_checkpoint,
        write_final,
    )
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    reward_fn = reward_fn or resolve_reward_fn(settings)
    stream = PromptStream(
        prompt_records,
        seed=settings.train_seed,
        epoch_filter=settings.epoch_filter,
        readd_prob_all_correct=settings.readd_prob_all_correct,
        readd_prob_all_wrong=settings.readd_prob_all_wrong,
    )
    step, substage, resumed_from = 0, 0, None
    start_path = reference_path or getattr(engine, "model_path", None)
    if resume and (ckpt := latest_checkpoint(run_dir)) is not None:
        engine.load(str(ckpt))
        state = read_trainer_state(ckpt)
        step, substage, resumed_from = int(state["step"]), int(state["substage"]), int(state["step"])
        stream.load_state_dict(state["stream"])
    reference = None
    if settings.kl_coef > 0:
        if start_path is None:
            raise CascadeError("kl_coef > 0 needs the stage's starting checkpoint as reference", field="kl_coef")
        reference = _load_reference(str(start_path), engine)
    tokenizer = getattr(engine, "tokenizer", None)
    pad_id = 0
    if tokenizer is not None:
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    logger = MetricsLogger(run_dir / "metrics.jsonl", resume_step=resumed_from)
    metrics: dict[str, Any] = {}
    try:
        while not _finished(settings, step, stream):
            knobs = knobs_for(settings, substage)
            started = time.perf_counter()
            tally = {"time_generate_s": 0.0, "time_reward_s": 0.0, "time_reward_compute_s": 0.0, "prompts_too_long": 0}
            batch, seen, filter_metrics = _collect_batch(
                engine, stream, settings, knobs, reward_fn, step=step, tally=tally
            )
            train_start = time.perf_counter()
            train_metrics = _train_on_batch(engine, batch, settings, knobs, reference, pad_id)
            tally["time_train_s"] = time.perf_counter() - train_start
            step += 1
            metrics = {
                "step": step,
                "substage": knobs.substage,
                "epoch": stream.epoch,
                **_rollout_metrics(seen),
                **filter_metrics,
                **train_metrics,
                **tally,
            }
            metrics["time_step_s"] = time.perf_counter() - started
            metrics["tokens_per_s"] = metrics["generated_tokens"] / max(metrics["time_step_s"], 1e-9)
            logger.log(metrics)
            if progress:
                print(
                    f"[grpo] step {step} {knobs.substage} reward {metrics['reward_mean']:.3f} "
                    f"len {metrics['response_len_mean']:.0f} trunc {metrics['truncated_share']:.2f} "
                    f"zero-var {metrics['zero_variance_share']:.2f} "
                    f"gen {tally['time_generate_s']:.1f}s reward {tally['time_reward_s']:.1f}s "
                    f"train {tally['time_train_s']:.1f}s",
                    flush=True,
                )
            substage = advance_substage(
                settings.curriculum, substage, steps_done=step, truncated_share=metrics["truncated_share"]
            )
            done = _finished(settings, step, stream)
            if done or (settings.save_every and step % settings.save_every == 0):
                state = {
                    "step": step,
                    "substage": substage,
                    "stream": stream.state_dict(),
                    "metrics": _jsonable(metrics),
                }
                write_checkpoint(run_dir, step, engine, state)
                prune_checkpoints(run_dir, keep=settings.keep_checkpoints)
    finally:
        logger.close()
    final = write_final(run_dir / "final", engine)
    return {"step": step, "final": str(final), "metrics": metrics, "resumed_from": resumed_from}


def _finished(settings: "GRPOStage", step: int, stream: PromptStream) -> bool:
    if settings.max_steps is not None:
        return step >= settings.max_steps
    return stream.completed_epochs >= settings.epochs


def _jsonable(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(metrics, default=float))

"""The GRPO trainer with the paper's semantics (paper section 4.1.2), top to bottom.

One step: SAMPLE G rollouts for each of a batch of prompts (each prompt in its mode), SCORE
them with the stage reward (overlapping generation and scoring), SHAPE the rewards (the
overlong rule, optional reward shaping), compute group ADVANTAGES, FILTER out groups without
signal and over-sample (dynamic filter), PACK the rollouts into micro-batches, compute the
token-level LOSS and take ONE optimizer STEP over the batch (strict on-policy). Every knob
that the paper varies per stage is a field of the recipe's ``GRPOStage``, taken as is.

The loop around the step (resume, log, checkpoint, final save) is the one every trainer
shares (``cascade.trainers.loop``). A checkpoint holds the engine state (weights, optimizer,
scheduler, RNG) plus the data cursor, the epoch filter's verdicts and the curriculum
position. All trainer randomness is a pure function of (seed, step), and every generation
call gets its own seed, so on CPU a resumed run reproduces the uninterrupted one.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from cascade.algo.advantages import REWARD_SHAPINGS, group_advantages, group_slices, repeat_for_groups
from cascade.algo.curriculum import advance_substage
from cascade.algo.filters import GROUP_FILTERS, apply_overlong, classify_group
from cascade.algo.losses import GRPOLoss
from cascade.algo.modes import assign_modes
from cascade.algo.registry import pick
from cascade.config.recipe import StepKnobs
from cascade.engine.base import Engine, SamplingParams
from cascade.errors import CascadeError
from cascade.trainers.batching import pack_rollouts
from cascade.trainers.loop import run_loop
from cascade.trainers.rollout import (
    PromptStream,
    RewardFn,
    RolloutBatch,
    generate_and_score,
    render_prompt,
    rollout_metrics,
    stage_reward_fn,
)
from cascade.verifiers.stage_rewards import STAGE_REWARDS, truncated_reward

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


def sample_round(engine: Engine, stream: PromptStream, settings: "GRPOStage", knobs: StepKnobs,
                 reward_fn: RewardFn, *, n_prompts: int, step: int, draw: int,
                 counters: dict[str, float]) -> RolloutBatch:
    """One sampling round: ``n_prompts`` prompts x G rollouts, scored, shaped, with advantages."""
    G = settings.group_size
    # 1. Sample: each prompt in its mode; a prompt over the budget cannot be cut without
    # breaking the chat format, so it is skipped.
    records = stream.take(n_prompts)
    modes = assign_modes(len(records), settings.think_fraction, seed=settings.train_seed, step=step, draw=draw)
    prompts = [render_prompt(r, stream.position(r), m) for r, m in zip(records, modes)]
    if prompts:
        lengths = [len(ids) for ids in engine.tokenizer(prompts, add_special_tokens=False)["input_ids"]]
        fits = [n <= knobs.max_prompt_len for n in lengths]
        counters["prompts_too_long"] += fits.count(False)
        records, modes, prompts = ([x for x, ok in zip(items, fits) if ok] for items in (records, modes, prompts))

    def sampling(chunk: int) -> SamplingParams:
        # One seed per (seed, step, draw, chunk): a resumed run draws the same samples.
        seed = int(np.random.default_rng([settings.train_seed, step, draw, chunk]).integers(2**31 - 1))
        return SamplingParams(max_new_tokens=knobs.max_response_len, temperature=knobs.temperature,
                              top_p=settings.top_p, top_k=settings.top_k, seed=seed)

    # 2. Score, overlapping generation and reward by chunk; a reward computed over the whole
    # batch (RLHF's language-mixing floor is the batch minimum) scores the round in one call.
    batch_wide = settings.reward is not None and STAGE_REWARDS[settings.reward].scope == "batch"
    rollouts = generate_and_score(
        engine, repeat_for_groups(prompts, G), repeat_for_groups(records, G), modes=repeat_for_groups(modes, G),
        sampling=sampling, reward_fn=reward_fn, chunks=1 if batch_wide else settings.generation_chunks, unit=G,
    )
    counters["time_generate_s"] += rollouts.generate_s
    counters["time_reward_s"] += rollouts.reward_s
    counters["time_reward_compute_s"] += rollouts.reward_compute_s
    # 3. Shape: the overlong rule sets the training reward (and masks when filtering);
    # reward shaping feeds the advantages only, the logged rewards stay the stage's own.
    rollouts.rewards, rollouts.valid = apply_overlong(
        [r.score for r in rollouts.results], [g.finish_reason for g in rollouts.generations], knobs.overlong_filter,
        truncated_score=truncated_reward(settings.reward),
    )
    shape = pick("reward_shaping", REWARD_SHAPINGS, settings.reward_shaping)
    shaped = shape(rollouts.rewards, G, eps=settings.adv_eps, valid=rollouts.valid)
    # 4. Advantages: each reward against its group's mean and std.
    adv = group_advantages(shaped, G, eps=settings.adv_eps, valid=rollouts.valid)
    rollouts.advantages, rollouts.zero_variance = adv.advantages.tolist(), adv.zero_variance.tolist()
    for g, rows in enumerate(group_slices(len(rollouts.rewards), G)):
        stream.record_verdict(records[g], classify_group([r.passed for r in rollouts.results[rows]]))
    return rollouts


def collect_batch(engine: Engine, stream: PromptStream, settings: "GRPOStage", knobs: StepKnobs,
                  reward_fn: RewardFn, *, step: int,
                  counters: dict[str, float]) -> tuple[RolloutBatch, RolloutBatch, dict[str, float]]:
    """5. Filter: returns (the batch to train on, every rollout drawn this step, filter metrics).

    Without the dynamic filter the batch is one round. With it, groups without signal are
    dropped and more prompts are drawn until ``batch_size`` groups have signal or
    ``max_filter_tries`` rounds were drawn; a short batch then trains as it is (and a batch
    with no signal at all still takes its update, whose policy gradient is zero).
    """
    G = settings.group_size
    keep_groups = GROUP_FILTERS["signal" if settings.dynamic_filter else "all"]
    batch, drawn = RolloutBatch(), RolloutBatch()
    tries = 0
    while tries < (settings.max_filter_tries if settings.dynamic_filter else 1):
        need = settings.batch_size - len(batch) // G
        if need <= 0:
            break
        fresh = sample_round(engine, stream, settings, knobs, reward_fn, n_prompts=need, step=step, draw=tries,
                             counters=counters)
        tries += 1
        drawn.add_groups(fresh, range(len(fresh.zero_variance)), G)
        batch.add_groups(fresh, keep_groups(fresh.zero_variance, need), G)
    if not len(batch):
        batch = drawn
    return batch, drawn, {
        "zero_variance_share": sum(drawn.zero_variance) / max(len(drawn.zero_variance), 1),
        "filter_tries": float(tries),
        "groups_trained": float(len(batch) // G),
    }


def train_on_batch(engine: Engine, batch: RolloutBatch, settings: "GRPOStage", knobs: StepKnobs,
                   reference: Engine | None) -> dict[str, float]:
    """6-8. Pack the batch, compute the loss micro-batch by micro-batch, take the update
    (``ppo_epochs`` passes over the same rollouts; strict on-policy is one)."""
    check_sampler = knobs.temperature == 1.0
    micros = pack_rollouts(batch, settings.grad_accum, engine.pad_id, with_sampler=check_sampler)
    if reference is not None:
        for micro in micros:
            micro["ref_logprobs"] = reference.token_logprobs(micro)
    total_tokens = float(sum(int(m["loss_mask"].sum()) for m in micros))
    total_seqs = float(sum(int((m["loss_mask"].sum(dim=1) > 0).sum()) for m in micros))
    metrics: dict[str, float] = {}
    captured: dict[int, Any] = {}
    for epoch in range(settings.ppo_epochs):
        loss_fn = GRPOLoss(loss_agg=settings.loss_agg, total_tokens=total_tokens, total_seqs=total_seqs,
                           clip_low=settings.clip_low, clip_high=settings.clip_high, kl_coef=settings.kl_coef,
                           entropy_coef=settings.entropy_coef, capture_logprobs=settings.ppo_epochs > 1 and epoch == 0)
        sums: dict[str, float] = {}
        gap_max = 0.0
        for micro in micros:
            if epoch > 0:  # later epochs: the clipped ratio against the first pass's log-probs
                micro = {**micro, "old_logprobs": captured[micro["micro_index"]]}
                micro.pop("sampler_logprobs", None)
            for key, value in engine.forward_backward(micro, loss_fn).items():
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
        update = engine.optim_step()
        if epoch == 0:
            metrics["loss"] = sums.get("loss", 0.0)
            metrics["pg_loss"] = sums.get("pg_loss_sum", 0.0) / tokens
            if "entropy_sum" in sums:
                metrics["entropy"] = sums["entropy_sum"] / tokens
            if "kl_sum" in sums:
                metrics["kl"] = sums["kl_sum"] / tokens
            metrics["grad_norm"] = float(update.get("grad_norm", float("nan")))
            metrics["lr"] = float(update.get("lr", float("nan")))
        else:
            metrics["clip_fraction"] = sums.get("clip_active_sum", 0.0) / tokens
    metrics["loss_tokens"] = total_tokens
    return metrics


class GRPOSteps:
    """GRPO's steps for the shared loop: one step = collect a batch, train on it, move the
    curriculum on; a checkpoint holds the prompt stream and the curriculum position."""

    name = "grpo"
    total = None  # an epoch-bounded stage does not know its step count: one line per step

    def __init__(self, engine: Engine, stream: PromptStream, settings: "GRPOStage", reward_fn: RewardFn,
                 reference_path: str | None) -> None:
        self.engine, self.stream, self.settings, self.reward_fn = engine, stream, settings, reward_fn
        self.reference_path = reference_path
        self.reference: Engine | None = None
        self.curriculum_index = 0

    def finished(self, step: int) -> bool:
        """``max_steps`` when set, else ``epochs`` passes over the prompts."""
        if self.settings.max_steps is not None:
            return step >= self.settings.max_steps
        return self.stream.completed_epochs >= self.settings.epochs

    def check_resume(self, state: Mapping[str, Any], checkpoint: Path) -> None:
        """Any GRPO checkpoint of this stage fits: the prompt stream restores its own order."""

    def restore(self, state: Mapping[str, Any]) -> None:
        """The curriculum position and the prompt stream (cursor, order, verdicts)."""
        self.curriculum_index = int(state["substage"])
        self.stream.load_state_dict(state["stream"])

    def train_step(self, step: int) -> dict[str, Any]:
        """Step number ``step``: sample and score a batch, train on it, advance the curriculum."""
        if self.settings.kl_coef > 0 and self.reference is None:
            if self.reference_path is None:
                raise CascadeError("kl_coef > 0 needs the stage's starting checkpoint as reference", field="kl_coef")
            self.reference = self.engine.frozen_copy(self.reference_path)  # for the KL term only
        knobs = knobs_for(self.settings, self.curriculum_index)
        started = time.perf_counter()
        counters = {"time_generate_s": 0.0, "time_reward_s": 0.0, "time_reward_compute_s": 0.0, "prompts_too_long": 0}
        batch, drawn, filter_metrics = collect_batch(self.engine, self.stream, self.settings, knobs, self.reward_fn,
                                                     step=step, counters=counters)
        train_start = time.perf_counter()
        train_metrics = train_on_batch(self.engine, batch, self.settings, knobs, self.reference)
        counters["time_train_s"] = time.perf_counter() - train_start
        metrics = {"step": step + 1, "substage": knobs.substage, "epoch": self.stream.epoch,
                   **rollout_metrics(drawn), **filter_metrics, **train_metrics, **counters}
        metrics["time_step_s"] = time.perf_counter() - started
        metrics["tokens_per_s"] = metrics["generated_tokens"] / max(metrics["time_step_s"], 1e-9)
        self.curriculum_index = advance_substage(self.settings.curriculum, self.curriculum_index, steps_done=step + 1,
                                                 truncated_share=metrics["truncated_share"])
        return metrics

    def state(self, metrics: Mapping[str, Any]) -> dict[str, Any]:
        """The curriculum position (key ``substage``), the prompt stream and the metrics."""
        return {"substage": self.curriculum_index, "stream": self.stream.state_dict(), "metrics": dict(metrics)}

    def status(self, metrics: Mapping[str, Any]) -> str:
        """Sub-stage, reward, length, truncation, zero variance and where the time went."""
        return (f"{metrics['substage']} reward {metrics['reward_mean']:.3f} len {metrics['response_len_mean']:.0f} "
                f"trunc {metrics['truncated_share']:.2f} zero-var {metrics['zero_variance_share']:.2f} "
                f"gen {metrics['time_generate_s']:.1f}s reward {metrics['time_reward_s']:.1f}s "
                f"train {metrics['time_train_s']:.1f}s")


def train_grpo(engine: Engine, prompt_records: Sequence[Mapping[str, Any]], settings: "GRPOStage",
               run_dir: str | Path, *, reward_fn: RewardFn | None = None, progress: bool = True,
               resume: bool = True, reference_path: str | None = None) -> dict[str, Any]:
    """Run (or resume) one GRPO stage; returns ``{"step", "final", "metrics", "resumed_from"}``.

    ``settings`` is the recipe's typed stage (``Recipe.resolved_stage``: seed filled in, and
    ``reward_model`` a checkpoint path or hub id). ``engine`` must already carry its optimizer
    (``settings.optim_config(settings.planned_steps(n_prompts))``).
    ``reward_fn(records, completions) -> list[VerifyResult]`` overrides the reward that
    ``settings.reward`` names. The KL reference (loaded only when ``kl_coef`` > 0) is
    ``reference_path``, by default the checkpoint the engine was built from.
    """
    stream = PromptStream(prompt_records, seed=settings.train_seed, epoch_filter=settings.epoch_filter,
                          readd_prob_all_correct=settings.readd_prob_all_correct,
                          readd_prob_all_wrong=settings.readd_prob_all_wrong)
    start_path = reference_path or str(engine.model_path)  # read before a resume loads a checkpoint
    steps = GRPOSteps(engine, stream, settings, reward_fn or resolve_reward_fn(settings), start_path)
    result = run_loop(engine, steps, run_dir, save_every=settings.save_every,
                      keep_checkpoints=settings.keep_checkpoints, resume=resume, progress=progress)
    return result.summary()

"""A GRPO stage (or one sub-stage of its curriculum) as verl 0.9.1 trainer overrides.

verl runs ``python -m verl.trainer.main_ppo key=value ...`` on Hydra; ``stage_to_verl_overrides``
gives those keys and values as a dict (``hydra_args`` turns it into command-line words). Every key
exists in verl 0.9.1's ``ppo_trainer`` schema (tests/test_verl_adapter.py checks them against a key
list taken from the verl wheel), except ``data.cascade_epoch_filter``, our dataset's settings, which
Hydra adds (``++``).

What maps, and how (paper section 3 settings are our defaults):

- strict on-policy: ``ppo_mini_batch_size`` = ``data.train_batch_size`` (prompts; verl multiplies
  both by ``rollout.n``), so one optimizer update per rollout batch, and ``ppo_epochs`` = 1;
- GRPO advantages (group z-score), no KL (neither in the reward nor as a loss), no entropy bonus,
  token-mean (``token_mean``) or ``seq-mean-token-mean`` (``seq_mean``) loss aggregation;
- ``rollout.n`` = group size; lengths, temperature, top-p, top-k (0 -> verl's -1), vLLM rollouts;
- AdamW lr, betas, weight decay, gradient clipping, warmup, constant or cosine schedule;
- dynamic filtering -> verl's DAPO ``algorithm.filter_groups`` on the training reward, one prompt batch
  generating at a time (``max_inflight_gen_batches``; verl has no bound on the number of tries);
- our reward hook (``cascade.cluster.verl_reward.compute_score``) and the mode-aware chat template
  (``cascade.cluster.verl_data.verl_chat_template``);
- the stage's RoPE scaling (YaRN, ``Recipe.rope_scaling_for``) -> ``actor_rollout_ref.model.override_config``.

A curriculum runs as one verl job per sub-stage (``stage_phases``). All jobs of a stage share one
verl checkpoint folder and ``resume_mode=auto``, so each job resumes the previous one's weights,
optimizer and data order, and stops at its cumulative ``until_step`` (``total_training_steps``).

What verl 0.9.1 runs differently is listed by ``verl_gaps`` (and printed by the launcher), never
silently dropped: the bound on dynamic-filter tries, group and epoch-level filtering behind a
colocated reward model, switching sub-stages by truncation share, linear schedules and schedule
horizons that differ from the run length. Masking truncated responses (``overlong_filter: true``)
is our advantage estimator (``cascade.cluster.verl_overlong``); epoch-level filtering is our dataset
class fed by our replay buffer (``cascade.cluster.verl_epoch_filter``). The SWE stage's served judge is
called from the reward hook (``cascade.cluster.verl_judge``). The batch-level stage rewards
(``rlhf``, ``if_thinking``) run through verl's reward-model server and cascade's reward manager
(``cascade.cluster.verl_manager``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cascade.cluster.verl_data import verl_chat_template
from cascade.cluster.verl_judge import REWARD_KWARG, check_judge_reachable, judge_gap, judge_reward_kwargs, served_judge_stage
from cascade.cluster.verl_reward import is_batch_reward
from cascade.config.recipe import GRPOStage, Recipe, StepKnobs
from cascade.errors import CascadeError
from cascade.verifiers.stage_rewards import truncated_reward
from cascade.pipeline.layout import RunLayout

VERL_VERSION = "0.9.1"
REWARD_HOOK_PATH = "pkg://cascade.cluster.verl_reward"
REWARD_HOOK_NAME = "compute_score"
TEMPLATE_KEY = "actor_rollout_ref.model.custom_chat_template"
# Keyword arguments verl adds to every call of our hook; not in verl's schema (an empty slot), so
# Hydra gets it with "++".
JUDGE_KWARGS_KEY = "reward.custom_reward_function.reward_kwargs"
OVERLONG_MODULE = "pkg://cascade.cluster.verl_overlong"
OVERLONG_ESTIMATOR = "cascade_grpo"  # cascade.cluster.verl_overlong.ESTIMATOR (that module imports verl)
SAMPLER_KWARGS_KEY = "trainer.v1.sampler.sampler_kwargs"
EPOCH_FILTER_MODULE = "pkg://cascade.cluster.verl_epoch_filter"
# Not in verl's schema: our dataset's settings, added to verl's data config (Hydra's "++").
EPOCH_FILTER_SETTINGS_KEY = "data.cascade_epoch_filter"  # cascade.cluster.verl_epoch_filter.SETTINGS_KEY
# verl stops at whichever comes first, epochs or total_training_steps; with max_steps set the
# epoch count must not be the limit.
UNBOUNDED_EPOCHS = 10_000
# verl always saves at the last step when save_freq > 0; a period this long saves only there.
SAVE_AT_END_ONLY = 1_000_000_000
_HYDRA_WORDS = ("true", "false", "null", "inf", "nan")
_LOSS_AGG = {"token_mean": "token-mean", "seq_mean": "seq-mean-token-mean"}


@dataclass(frozen=True)
class VerlPhase:
    """One verl job of a stage: the whole stage, or one curriculum sub-stage."""

    stage: str
    substage: str | None  # None: the stage has no curriculum
    end_step: int | None  # cumulative step where the job stops; None: by epochs (or by hand, see note)
    note: str = ""  # how the job ends when verl cannot decide it itself

    @property
    def name(self) -> str:
        return self.stage if self.substage is None else f"{self.stage}.{self.substage}"


def stage_phases(stage: GRPOStage) -> list[VerlPhase]:
    """The verl jobs that run ``stage``, in order."""
    if not stage.curriculum:
        return [VerlPhase(stage.name, None, stage.max_steps)]
    phases = []
    for sub in stage.curriculum:
        if sub.until_step is not None:
            phases.append(VerlPhase(stage.name, sub.name, sub.until_step))
        elif sub.until_truncated_below is not None:
            note = (
                f"verl cannot switch on the truncated share: stop this job once the metric "
                f"response_length/clip_ratio stays below {sub.until_truncated_below:g}, then launch the next sub-stage"
            )
            phases.append(VerlPhase(stage.name, sub.name, stage.max_steps, note))
        else:  # the last entry runs until the stage ends
            phases.append(VerlPhase(stage.name, sub.name, stage.max_steps))
    return phases


def _knobs(stage: GRPOStage, substage: str | None) -> StepKnobs:
    """The phase's knobs, from the same method the local trainer reads."""
    try:
        return stage.substage_knobs(substage)
    except ValueError as exc:
        raise CascadeError(str(exc), field="substage") from None


def require_grpo(stage: Any) -> GRPOStage:
    """``stage`` if it is a GRPO stage; the verl path runs nothing else."""
    if not isinstance(stage, GRPOStage):
        raise CascadeError(
            f"stage '{stage.name}' is a {stage.kind} stage; the verl path runs GRPO stages only "
            "(run SFT and RM stages with `cascade run` or your SFT framework)",
            field=f"stages.{stage.name}.kind",
        )
    return stage


def default_checkpoint_dir(recipe: Recipe, stage_name: str, run_dir: str | None = None) -> Path:
    """Where verl keeps a stage's own checkpoints: next to the stage's ``final/`` in the local
    runner's layout."""
    root = Path(run_dir or recipe.output_dir or f"runs/{recipe.name}")
    return RunLayout(root, [s.name for s in recipe.stages]).stage_dir(stage_name) / "verl"


def stage_to_verl_overrides(
    stage: GRPOStage,
    recipe: Recipe,
    *,
    n_gpus_per_node: int,
    nnodes: int,
    model_path: str,
    data_files: Sequence[str],
    substage: str | None = None,
    checkpoint_dir: str | None = None,
    rollout_tp: int = 1,
    logger: Sequence[str] = ("console",),
    reward_model_path: str | None = None,
    reward_model_tp: int = 8,
) -> dict[str, Any]:
    """verl 0.9.1 overrides (dotted key -> value) for ``stage`` of ``recipe``, or for one
    sub-stage of its curriculum. ``model_path`` is the Hugging Face checkpoint the stage starts
    from; ``data_files`` are parquet files from ``export_verl_parquet``; ``checkpoint_dir`` is
    where verl keeps its own checkpoints (default: ``verl/`` in the stage's folder of the run
    layout, ``RUN_DIR/stages/NN-<stage>/verl``); ``logger`` is verl's ``trainer.logger`` list
    (console, tensorboard, wandb, ...). Stages with a batch-level reward (``rlhf``,
    ``if_thinking``) get verl's reward-model server (``reward_model_path``, default the stage's
    ``reward_model`` resolved in the default run layout; ``reward_model_tp`` GPUs per replica) and
    cascade's reward manager (``cascade.cluster.verl_manager``)."""
    stage = require_grpo(stage)
    check_judge_reachable(stage, nnodes)
    if stage.reward_shaping != "none":
        raise CascadeError(
            f"reward_shaping '{stage.reward_shaping}' needs each group's rewards together, which the "
            "per-sample verl hook does not see; run this stage locally (docs/cluster.md)",
            field=f"stages.{stage.name}.reward_shaping",
        )
    if n_gpus_per_node < 1 or nnodes < 1 or rollout_tp < 1:
        raise CascadeError("n_gpus_per_node, nnodes and rollout_tp must be at least 1", field="n_gpus_per_node")
    if not data_files:
        raise CascadeError("no data files: export the stage's prompts with export_verl_parquet first",
                           field="data_files")
    knobs = _knobs(stage, substage)
    phase = next(p for p in stage_phases(stage) if p.substage == substage)
    seed = recipe.stage_seed(stage.name)
    files = list(data_files)

    overrides: dict[str, Any] = {
        # ---- algorithm: GRPO, no KL in the reward
        "algorithm.adv_estimator": "grpo",
        "algorithm.norm_adv_by_std_in_grpo": True,
        "algorithm.use_kl_in_reward": False,
        "algorithm.filter_groups.enable": verl_dynamic_filter(stage),
        # ---- data
        "data.train_files": files,
        "data.val_files": files,  # verl builds a val loader even with validation off
        "data.prompt_key": "prompt",
        "data.train_batch_size": stage.batch_size,
        "data.max_prompt_length": knobs.max_prompt_len,
        "data.max_response_length": knobs.max_response_len,
        "data.filter_overlong_prompts": True,  # drop prompts over the input budget instead of failing
        "data.truncation": "error",
        "data.shuffle": True,
        "data.seed": seed,
        # ---- model and chat template
        "actor_rollout_ref.model.path": model_path,
        TEMPLATE_KEY: verl_chat_template(),
        # ---- actor: strict on-policy, no KL loss, no entropy bonus
        "actor_rollout_ref.actor.ppo_mini_batch_size": stage.batch_size,
        "actor_rollout_ref.actor.ppo_epochs": stage.ppo_epochs,
        "actor_rollout_ref.actor.use_kl_loss": stage.kl_coef > 0,
        "actor_rollout_ref.actor.kl_loss_coef": stage.kl_coef,
        "actor_rollout_ref.actor.entropy_coeff": stage.entropy_coef,
        "actor_rollout_ref.actor.loss_agg_mode": _LOSS_AGG[stage.loss_agg],
        "actor_rollout_ref.actor.clip_ratio_low": stage.clip_low,
        "actor_rollout_ref.actor.clip_ratio_high": stage.clip_high,
        # Token-budgeted micro-batches: one long rollout must fit, whatever the batch holds.
        "actor_rollout_ref.actor.use_dynamic_bsz": True,
        "actor_rollout_ref.actor.ppo_max_token_len_per_gpu": knobs.max_prompt_len + knobs.max_response_len,
        "actor_rollout_ref.actor.optim.lr": stage.lr,
        "actor_rollout_ref.actor.optim.betas": list(stage.adam_betas),
        "actor_rollout_ref.actor.optim.weight_decay": stage.weight_decay,
        "actor_rollout_ref.actor.optim.clip_grad": stage.max_grad_norm,
        "actor_rollout_ref.actor.optim.lr_warmup_steps": stage.warmup_steps,
        "actor_rollout_ref.actor.optim.lr_scheduler_type": "cosine" if stage.scheduler == "cosine" else "constant",
        "actor_rollout_ref.actor.optim.min_lr_ratio": stage.min_lr / stage.lr,
        # ---- rollout: vLLM, G samples per prompt
        "actor_rollout_ref.rollout.name": "vllm",
        "actor_rollout_ref.rollout.n": stage.group_size,
        "actor_rollout_ref.rollout.temperature": knobs.temperature,
        "actor_rollout_ref.rollout.top_p": stage.top_p,
        "actor_rollout_ref.rollout.top_k": stage.top_k if stage.top_k > 0 else -1,
        "actor_rollout_ref.rollout.tensor_model_parallel_size": rollout_tp,
        "actor_rollout_ref.rollout.seed": seed,
        # ---- reward: our verifiers through the per-sample hook
        "reward.custom_reward_function.path": REWARD_HOOK_PATH,
        "reward.custom_reward_function.name": REWARD_HOOK_NAME,
        # verl places its reward workers round-robin over the nodes and, for rule-based rewards,
        # scores while generation goes on; one worker per GPU spreads sandboxed verification over
        # every node's CPUs instead of the head node's alone (each worker runs a pool of
        # CASCADE_VERL_REWARD_WORKERS processes).
        "reward.num_workers": nnodes * n_gpus_per_node,
        # ---- trainer
        "trainer.nnodes": nnodes,
        "trainer.n_gpus_per_node": n_gpus_per_node,
        "trainer.project_name": "cascade",
        "trainer.experiment_name": f"{recipe.name}-{stage.name}",
        "trainer.default_local_dir": checkpoint_dir or str(default_checkpoint_dir(recipe, stage.name)),
        "trainer.resume_mode": "auto",
        "trainer.total_epochs": stage.epochs if stage.max_steps is None else UNBOUNDED_EPOCHS,
        "trainer.save_freq": stage.save_every or SAVE_AT_END_ONLY,  # the merger reads the last one
        "trainer.val_before_train": False,
        "trainer.test_freq": -1,
        "trainer.logger": list(logger),
    }
    rope = recipe.rope_scaling_for(stage.name)
    if rope is not None:
        # verl applies override_config to the actor's Hugging Face config and hands the same
        # config to its vLLM rollouts, so both train and sample with this YaRN.
        overrides["actor_rollout_ref.model.override_config"] = {"rope_scaling": rope.as_config()}
    if served_judge_stage(stage):
        # The served judge's settings reach our hook on every call (verl's reward_kwargs).
        from cascade.pipeline.runner import _judge_template

        settings = judge_reward_kwargs(stage, num_workers=nnodes * n_gpus_per_node, template=_judge_template(stage))
        overrides[JUDGE_KWARGS_KEY] = {REWARD_KWARG: settings}
    if is_batch_reward(stage.reward):
        overrides.update(batch_reward_overrides(stage, recipe, knobs, reward_model_path, reward_model_tp))
    if knobs.overlong_filter:
        overrides.update(overlong_overrides(stage, knobs))
    if verl_epoch_filter(stage):
        overrides.update(epoch_filter_overrides(stage, overrides.get(SAMPLER_KWARGS_KEY)))
    if phase.end_step is not None:
        overrides["trainer.total_training_steps"] = phase.end_step
    if verl_dynamic_filter(stage):
        # Keep only groups whose training rewards differ ("reward": verl's canonical reward).
        overrides["algorithm.filter_groups.metric"] = "reward"
        # verl 0.9.1's (v1) trainer refills evicted groups until the batch is full and ignores
        # max_num_gen_batches; what it honours is how many prompt batches generate at once.
        # One at a time is the local trainer's order (generate, filter, generate more).
        overrides["algorithm.filter_groups.max_inflight_gen_batches"] = 1
    return overrides


def verl_dynamic_filter(stage: GRPOStage) -> bool:
    """Whether verl filters the stage's groups. verl 0.9.1 filters when it samples a group, which
    needs the reward then: a batch-level reward comes from the colocated reward model after
    sampling, and verl's trainer refuses filter_groups with it."""
    return stage.dynamic_filter and not is_batch_reward(stage.reward)


def verl_epoch_filter(stage: GRPOStage) -> bool:
    """Whether verl filters the stage's prompts per epoch. Our replay buffer reads each group's
    verdict when verl samples it; a batch-level reward comes from the colocated reward model after
    sampling, so those stages keep every prompt (a listed gap)."""
    return stage.epoch_filter and not is_batch_reward(stage.reward)


def epoch_filter_overrides(stage: GRPOStage, sampler_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Epoch-level filtering (``cascade.cluster.verl_epoch_filter``): our dataset class serves the
    local trainer's prompt stream, our replay buffer (which keeps ``sampler_kwargs``, the overlong
    phase's, when given) reports each group's outcome to it in the trainer's process."""
    return {
        "data.custom_cls.path": EPOCH_FILTER_MODULE,
        "data.custom_cls.name": "EpochFilterDataset",
        "data.shuffle": False,  # the stream shuffles each pass as the local trainer does
        "data.dataloader_num_workers": 0,  # worker processes would hold copies the outcomes never reach
        EPOCH_FILTER_SETTINGS_KEY: {"readd_prob_all_correct": stage.readd_prob_all_correct,
                                    "readd_prob_all_wrong": stage.readd_prob_all_wrong},
        "trainer.v1.sampler.custom_sampler.path": EPOCH_FILTER_MODULE,
        "trainer.v1.sampler.custom_sampler.name": "EpochFilterReplayBuffer",
        SAMPLER_KWARGS_KEY: sampler_kwargs or {"builtin": builtin_replay_buffer_kwargs(stage)},
    }


def builtin_replay_buffer_kwargs(stage: GRPOStage) -> dict[str, Any]:
    """The arguments verl's trainer gives its own replay buffer (a custom sampler gets none)."""
    builtin: dict[str, Any] = {
        "train_batch_size": stage.batch_size,
        # verl fetches one prompt at a time when filtering groups, else one training batch at a time.
        "gen_batch_size": 1 if verl_dynamic_filter(stage) else stage.batch_size,
        "max_inflight_gen_batches": 1,
        "sync_refill_failed_groups": False,
    }
    if verl_dynamic_filter(stage):
        builtin["filter_groups_metric"] = "reward"
    return builtin


def overlong_overrides(stage: GRPOStage, knobs: StepKnobs) -> dict[str, Any]:
    """Truncated responses out of the loss (``cascade.cluster.verl_overlong``): our advantage
    estimator, registered by our replay buffer, which gets the arguments verl's trainer would give
    its own plus the phase's response budget."""
    return {
        "algorithm.adv_estimator": OVERLONG_ESTIMATOR,
        # The estimator's zeroed response_mask reaches the actor through rollout correction's write-back,
        # which needs the rollout's log-probabilities and the decoupled (non-bypass) mode.
        "actor_rollout_ref.rollout.calculate_log_probs": True,
        "algorithm.rollout_correction.bypass_mode": False,
        "trainer.v1.sampler.custom_sampler.path": OVERLONG_MODULE,
        "trainer.v1.sampler.custom_sampler.name": "CascadeReplayBuffer",
        SAMPLER_KWARGS_KEY: {
            "overlong": {"max_response_length": knobs.max_response_len, "eps": stage.adv_eps},
            "builtin": builtin_replay_buffer_kwargs(stage),
        },
    }


def batch_reward_overrides(stage: GRPOStage, recipe: Recipe, knobs: _Knobs, reward_model_path: str | None,
                           reward_model_tp: int) -> dict[str, Any]:
    """verl serves the reward model (vLLM, sharing the actor's GPUs and asleep while they train)
    and our manager combines each batch's RM scores into the stage reward."""
    if stage.reward_model is None and reward_model_path is None:
        raise CascadeError(f"stage reward '{stage.reward}' needs a reward model", field=f"stages.{stage.name}.reward_model")
    if reward_model_path is None:
        names = [s.name for s in recipe.stages]
        reward_model_path = (str(RunLayout(Path(recipe.output_dir or f"runs/{recipe.name}"), names).output(stage.reward_model))
                             if stage.reward_model in names else str(stage.reward_model))
    return {
        "reward.reward_manager.source": "importlib",
        "reward.reward_manager.name": "CascadeRewardManager",
        "reward.reward_manager.module.path": "pkg://cascade.cluster.verl_manager",
        "reward.reward_model.enable": True,
        # Colocated: verl then gathers the batch before scoring ends, where the batch step runs.
        "reward.reward_model.enable_resource_pool": False,
        "reward.reward_model.model_path": reward_model_path,
        "reward.reward_model.rollout.name": "vllm",
        "reward.reward_model.rollout.tensor_model_parallel_size": reward_model_tp,
        # The RM reads the prompt and the final answer, never more than the policy's budget.
        "reward.reward_model.rollout.prompt_length": knobs.max_prompt_len + knobs.max_response_len,
    }


def verl_gaps(stage: GRPOStage, substage: str | None = None, nnodes: int = 1) -> list[str]:
    """What of ``stage`` (or one sub-stage) verl 0.9.1 runs differently from the local trainer
    on ``nnodes`` nodes."""
    stage = require_grpo(stage)
    knobs = _knobs(stage, substage)
    gaps = []
    if knobs.overlong_filter:
        gaps.append(
            "overlong_filter: truncated responses (max_response_length tokens) get no advantage and leave "
            "their group's statistics and the loss's sum (cascade.cluster.verl_overlong), but verl's token-mean "
            "denominator still counts their tokens" + (
                "; dynamic filtering judges a group by all its rewards, truncated ones included"
                if verl_dynamic_filter(stage) else "")
        )
    elif truncated_reward(stage.reward) is not None:
        # A stage that scores a truncated reply as written (RLHF) runs the same in verl.
        gaps.append(
            "truncated -> 0: the reward hook does not see lengths; a response cut inside <think> scores 0 "
            "(no answer), one cut after </think> is scored as written"
        )
    judged = judge_gap(stage, nnodes)
    if judged is not None:
        gaps.append(judged)
    if stage.dynamic_filter and not verl_dynamic_filter(stage):
        gaps.append(
            f"dynamic_filter: verl 0.9.1 filters groups when it samples them, before the colocated reward model "
            f"has scored them (its trainer refuses the combination), so this {stage.reward} stage trains on every "
            "group; groups whose rewards are all equal get zero advantage and add no gradient"
        )
    if verl_dynamic_filter(stage):
        gaps.append(
            f"max_filter_tries {stage.max_filter_tries}: verl refills filtered groups until the batch is full, "
            "with no bound on the number of generation batches (the local trainer trains on what it has after "
            "that many tries)"
        )
    if verl_epoch_filter(stage):
        gaps.append(
            "epoch_filter: the local trainer's prompt stream and re-add draws (cascade.cluster.verl_epoch_filter); "
            "prompts over the input budget leave the pool when verl loads the data (locally they are skipped when "
            "drawn)" + ("; verl's dynamic filtering refills a different number of prompts per step than the local "
                        "trainer draws, so passes end at other steps" if verl_dynamic_filter(stage) else "")
            + ("; without max_steps verl stops after epochs x (prompts // batch_size) steps, where the local "
               "trainer stops after that many passes of the shrinking pool" if stage.max_steps is None else "")
        )
    elif stage.epoch_filter:
        gaps.append(f"epoch_filter: every prompt stays in the pool; verl scores this {stage.reward} stage's groups "
                    "with its colocated reward model after sampling, where the outcomes cannot reach the prompts")
    if stage.scheduler == "linear":
        gaps.append("scheduler linear: verl offers constant and cosine only; constant is used")
    if stage.scheduler == "cosine" and stage.scheduler_horizon not in (None, stage.max_steps):
        gaps.append("scheduler_horizon: verl decays over the run's own steps, not a separate horizon")
    if 0.0 < stage.think_fraction < 1.0:
        gaps.append(
            f"think_fraction {stage.think_fraction:g}: modes are fixed per prompt in the exported file, so a "
            "verl batch holds that share on average rather than exactly"
        )
    if stage.curriculum and substage is not None:
        gaps.extend(p.note for p in stage_phases(stage) if p.substage == substage and p.note)
    return gaps


def hydra_value(value: Any) -> str:
    """``value`` in Hydra's override syntax (strings quoted when they need it)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{key}:{hydra_value(v)}" for key, v in value.items()) + "}"
    if isinstance(value, str):
        plain = all(c.isalnum() or c in "_-./" for c in value)
        # Words Hydra would read as another type (null, true, 1e-5, ...) are quoted too.
        if value and plain and not value[0].isdigit() and value.lower() not in _HYDRA_WORDS:
            return value
        return _hydra_quote(value)
    raise TypeError(f"no Hydra form for {type(value).__name__}")


def _hydra_quote(text: str) -> str:
    # Hydra's quoted strings: a backslash escapes only a quote or another backslash that precedes
    # a quote (or the closing quote); every other backslash is kept as written.
    out = []
    run = 0
    for char in text:
        if char == "\\":
            run += 1
            continue
        if char == "'":
            out.append("\\" * (2 * run + 1) + "'")
        else:
            out.append("\\" * run + char)
        run = 0
    out.append("\\" * (2 * run))
    return "'" + "".join(out) + "'"


def hydra_arg(key: str, value: Any) -> str:
    """One ``key=value`` word. A mapping value goes into a dict that verl's schema leaves empty
    (``override_config: {}``), whose keys Hydra's struct mode refuses to add: ``++`` adds them."""
    return f"{'++' if isinstance(value, dict) else ''}{key}={hydra_value(value)}"


def hydra_args(overrides: dict[str, Any]) -> list[str]:
    """``key=value`` words for verl's command line, in the dict's order."""
    return [hydra_arg(key, value) for key, value in overrides.items()]

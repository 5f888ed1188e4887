"""One stage of a recipe as one cluster job: the bash script the launcher submits.

Each script runs an existing engine and leaves a Hugging Face checkpoint at the stage's
``final/`` (the local runner's layout), where the next stage, local or cluster, starts from:

| stage kind | engine | script |
|---|---|---|
| sft  | verl 0.9.1 SFT trainer on Ray (``verl.trainer.sft_trainer_ray``) | train, merge the last FSDP checkpoint |
| rm   | TRL ``RewardTrainer`` under ``accelerate launch`` (``cascade.cluster.trl_rm``) | train, save |
| grpo | verl 0.9.1 PPO trainer (``verl.trainer.main_ppo``), one job per curriculum sub-stage | train, merge |

Nothing here runs anything: ``cascade.cluster.engine_run`` writes the script, hands it to the
launcher and waits.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cascade.cluster.train_config import rm_arguments, rm_gaps, sft_gaps, sft_overrides
from cascade.cluster.verl_config import (
    TEMPLATE_KEY,
    VERL_VERSION,
    hydra_arg,
    hydra_value,
    stage_phases,
    stage_to_verl_overrides,
    verl_gaps,
)
from cascade.cluster.verl_data import verl_chat_template
from cascade.config.recipe import GRPOStage, Recipe, RMStage, SFTStage

TEMPLATE_VAR = "CASCADE_CHAT_TEMPLATE"
_HEREDOC_END = "CASCADE_TEMPLATE_END"
# Ray job submission runs the script on the head node and waits for it; RAY_ADDRESS names the cluster.
RAY_LAUNCHER = "ray job submit --submission-id {job_id} -- bash {script}"


@dataclass(frozen=True)
class ClusterSettings:
    """How stages are sized and launched on the cluster (``cascade run --engine verl`` options)."""

    nnodes: int = 1
    gpus_per_node: int = 8
    rollout_tp: int = 1
    launcher: str = RAY_LAUNCHER
    logger: tuple[str, ...] = ("console",)
    eval_backend: str = "vllm"
    reward_model_tp: int = 8  # GPUs per reward-model replica (rlhf, if_thinking stages)


def _q(text: str) -> str:
    return shlex.quote(text)


def chat_template_lines() -> list[str]:
    """Script lines that set ``TEMPLATE_VAR`` to the chat template verl renders prompts with: one
    shell variable holds the long template instead of every job's command line repeating it."""
    return [
        "# The chat template verl renders prompts with (cascade.cluster.verl_data.verl_chat_template),",
        "# already in Hydra's quoted-string form.",
        f"{TEMPLATE_VAR}=$(cat <<'{_HEREDOC_END}'",
        hydra_value(verl_chat_template()),
        _HEREDOC_END,
        ")",
    ]


def verl_ppo_command(overrides: dict[str, object]) -> str:
    """One ``verl.trainer.main_ppo`` call with ``overrides`` as quoted Hydra arguments; the chat
    template comes from ``TEMPLATE_VAR`` (see ``chat_template_lines``)."""
    words = ["python -m verl.trainer.main_ppo"]
    for key, value in overrides.items():
        if key == TEMPLATE_KEY:
            words.append(f'"{key}=${{{TEMPLATE_VAR}}}"')
        else:
            words.append(_q(hydra_arg(key, value)))
    return " \\\n    ".join(words)


def _header(recipe: Recipe, stage_name: str, engine: str, start: str, final_dir: Path) -> list[str]:
    return [
        "#!/usr/bin/env bash",
        f"# cascade -> {engine}: stage '{stage_name}' of recipe '{recipe.name}' (written by cascade run --engine verl).",
        f"# Starts from: {start}",
        f"# Hugging Face output: {final_dir}",
        "set -euo pipefail",
    ]


def _merge_lines(checkpoint_dir: Path, final_dir: Path, subdir: str) -> list[str]:
    """Merge verl's last FSDP checkpoint (``latest_checkpointed_iteration.txt``) into ``final_dir``."""
    return [
        "",
        "# Merge verl's last FSDP checkpoint into a Hugging Face checkpoint.",
        f"STEP=$(cat {_q(str(checkpoint_dir / 'latest_checkpointed_iteration.txt'))})",
        "python -m verl.model_merger merge --backend fsdp --local_dir "
        f"{_q(str(checkpoint_dir))}/global_step_\"$STEP\"{subdir} --target_dir {_q(str(final_dir))}",
    ]


def sft_job(recipe: Recipe, stage: SFTStage, *, start: str, data_file: str, checkpoint_dir: Path, final_dir: Path,
            settings: ClusterSettings) -> str:
    """The job script of an SFT stage (verl's Ray SFT trainer, then the merge)."""
    overrides = sft_overrides(stage, recipe, model_path=start, data_file=data_file, checkpoint_dir=str(checkpoint_dir),
                              n_gpus_per_node=settings.gpus_per_node, nnodes=settings.nnodes, logger=settings.logger)
    lines = _header(recipe, stage.name, f"verl {VERL_VERSION} SFT", start, final_dir)
    lines += [f"#   not as in the local trainer: {gap}" for gap in sft_gaps(stage)]
    words = ["python -m verl.trainer.sft_trainer_ray"] + [_q(hydra_arg(k, v)) for k, v in overrides.items()]
    lines += ["", " \\\n    ".join(words)]
    lines += _merge_lines(checkpoint_dir, final_dir, "")
    return "\n".join(lines) + "\n"


def rm_job(recipe: Recipe, stage: RMStage, *, start: str, pairs_file: str, final_dir: Path,
           settings: ClusterSettings) -> str:
    """The job script of a reward-model stage (TRL's RewardTrainer under accelerate, on every node)."""
    processes = settings.nnodes * settings.gpus_per_node
    args = rm_arguments(stage, recipe, output_dir=str(final_dir), n_processes=processes, logger=settings.logger)
    lines = _header(recipe, stage.name, "TRL RewardTrainer", start, final_dir)
    lines += [f"#   not as in the local trainer: {gap}" for gap in rm_gaps(stage)]
    lines += [
        "# accelerate starts one process per GPU; on several nodes run this script on each node with",
        "# MACHINE_RANK and MAIN_PROCESS_IP set (the Slurm launcher template does that with srun).",
        "",
        " \\\n    ".join(
            ["accelerate launch", f"--num_machines {settings.nnodes}", f"--num_processes {processes}",
             '--machine_rank "${MACHINE_RANK:-0}"', '--main_process_ip "${MAIN_PROCESS_IP:-127.0.0.1}"',
             "--main_process_port 29500", "-m cascade.cluster.trl_rm",
             f"--model {_q(start)}", f"--pairs {_q(pairs_file)}"]
            + [_q(word) for word in args]
        ),
    ]
    return "\n".join(lines) + "\n"


def grpo_job_lines(recipe: Recipe, stage: GRPOStage, *, start: str, data_files: Sequence[str], checkpoint_dir: Path,
                   settings: ClusterSettings, reward_model_path: str | None = None) -> list[str]:
    """The verl PPO jobs of a GRPO stage (one per curriculum sub-stage), each with its gaps."""
    lines = ["", *chat_template_lines()]
    for number, phase in enumerate(stage_phases(stage), start=1):
        overrides = stage_to_verl_overrides(
            stage, recipe, n_gpus_per_node=settings.gpus_per_node, nnodes=settings.nnodes, model_path=start,
            data_files=data_files, substage=phase.substage, checkpoint_dir=str(checkpoint_dir),
            rollout_tp=settings.rollout_tp, logger=settings.logger, reward_model_path=reward_model_path,
            reward_model_tp=settings.reward_model_tp,
        )
        lines += ["", f"# verl job {number}: {phase.name} (until step {phase.end_step or 'the end of the epochs'})"]
        lines += [f"#   not as in the local trainer: {gap}" for gap in verl_gaps(stage, phase.substage, settings.nnodes)]
        lines.append(verl_ppo_command(overrides))
    return lines


def grpo_job(recipe: Recipe, stage: GRPOStage, *, start: str, data_files: Sequence[str], checkpoint_dir: Path,
             final_dir: Path, settings: ClusterSettings, reward_model_path: str | None = None) -> str:
    """The job script of a GRPO stage (verl PPO jobs, then the merge)."""
    lines = _header(recipe, stage.name, f"verl {VERL_VERSION} GRPO", start, final_dir)
    lines += grpo_job_lines(recipe, stage, start=start, data_files=data_files, checkpoint_dir=checkpoint_dir,
                            settings=settings, reward_model_path=reward_model_path)
    lines += _merge_lines(checkpoint_dir, final_dir, "/actor")
    return "\n".join(lines) + "\n"

"""SFT and reward-model stages as jobs of existing multi-GPU engines.

- SFT -> verl 0.9.1's SFT trainer (``python -m verl.trainer.sft_trainer_ray``, Hydra config
  ``sft_trainer_engine``): the same engine family as the GRPO stages (FSDP, one checkpoint format,
  one merger), it runs on the Ray cluster the GRPO jobs use, and its multi-turn dataset takes a
  per-row ``enable_thinking`` so one file holds both modes, as our SFT records do.
- RM  -> TRL's ``RewardTrainer`` (Bradley-Terry on chosen/rejected pairs) under ``accelerate``
  (``cascade.cluster.trl_rm``). verl has no pairwise reward-model trainer; TRL's is the
  field's common one, saves a plain Hugging Face ``*ForSequenceClassification`` checkpoint (what
  the local RM trainer and the reward-model scorer use), and its arguments are a dataclass that
  transformers' own ``HfArgumentParser`` parses, so the mapping is checked against TRL itself.

Data is written on the head node before the job (``export_sft_parquet``, ``export_pairs``): the
run directory must be on storage every node sees, as verl's checkpoints must be.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cascade.config.recipe import Recipe, RMStage, SFTStage
from cascade.data.io import write_text_atomic

# verl's SFT loss counts assistant tokens only, as ours does (training template's generation spans).
SFT_MESSAGES_KEY = "messages"
SFT_THINKING_KEY = "enable_thinking"


def _messages(record: Any) -> list[dict[str, Any]]:
    return [m.model_dump(exclude_none=True) for m in record.messages]


def export_sft_parquet(records: Sequence[Any], path: str | Path) -> str:
    """SFT conversations -> verl's multi-turn SFT parquet: ``messages`` (as JSON text, so turns
    with and without tool calls share one Arrow type), ``enable_thinking`` from the record's mode,
    ``tools`` (JSON text or empty)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = {
        SFT_MESSAGES_KEY: [_messages(r) for r in records],
        SFT_THINKING_KEY: [r.mode == "think" for r in records],
        "tools": [json.dumps(r.tools) if r.tools else "" for r in records],
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    pq.write_table(pa.table(rows), tmp)
    tmp.replace(path)
    return str(path)


def export_pairs(records: Sequence[Any], path: str | Path) -> str:
    """Preference pairs -> JSONL in TRL's conversational preference form: ``chosen`` and
    ``rejected`` are whole conversations (prompt turns + one assistant answer)."""
    lines = []
    for r in records:
        prompt = _messages(r) if r.messages is not None else [{"role": "user", "content": r.prompt}]
        lines.append(json.dumps({
            "chosen": prompt + [{"role": "assistant", "content": r.chosen}],
            "rejected": prompt + [{"role": "assistant", "content": r.rejected}],
        }))
    write_text_atomic(Path(path), "".join(line + "\n" for line in lines))
    return str(path)


def sft_overrides(
    stage: SFTStage,
    recipe: Recipe,
    *,
    model_path: str,
    data_file: str,
    checkpoint_dir: str,
    n_gpus_per_node: int,
    nnodes: int,
    logger: Sequence[str] = ("console",),
) -> dict[str, Any]:
    """verl 0.9.1 ``sft_trainer_engine`` overrides for ``stage``."""
    seed = recipe.stage_seed(stage.name)
    overrides: dict[str, Any] = {
        "data.train_files": [data_file],
        "data.messages_key": SFT_MESSAGES_KEY,
        "data.enable_thinking_key": SFT_THINKING_KEY,
        "data.train_batch_size": stage.batch_size,
        "data.max_length": stage.max_seq_len,
        "data.max_token_len_per_gpu": stage.max_seq_len,  # one longest sequence always fits
        "data.use_dynamic_bsz": True,
        # Over-long conversations are dropped locally too (sft.encode_records); verl would fail.
        "data.truncation": "error",
        "model.path": model_path,
        "model.enable_gradient_checkpointing": stage.gradient_checkpointing,
        "optim.lr": stage.lr,
        "optim.betas": list(stage.adam_betas),
        "optim.weight_decay": stage.weight_decay,
        "optim.clip_grad": stage.max_grad_norm,
        "optim.lr_warmup_steps": stage.warmup_steps,
        "optim.lr_scheduler_type": "cosine" if stage.scheduler == "cosine" else "constant",
        "optim.min_lr_ratio": stage.min_lr / stage.lr,
        "trainer.default_local_dir": checkpoint_dir,
        "trainer.project_name": "cascade",
        "trainer.experiment_name": f"{recipe.name}-{stage.name}",
        # max_steps wins over epochs (as in the local trainer); verl stops at whichever comes first.
        "trainer.total_epochs": stage.epochs if stage.max_steps is None else 1_000_000,
        "trainer.logger": list(logger),
        "trainer.seed": seed,
        "trainer.save_freq": stage.save_every or -1,  # -1: at the last step only (verl always saves it)
        "trainer.resume_mode": "auto",
        "trainer.nnodes": nnodes,
        "trainer.n_gpus_per_node": n_gpus_per_node,
    }
    if stage.max_steps is not None:
        overrides["trainer.total_training_steps"] = stage.max_steps
    return overrides


def sft_gaps(stage: SFTStage) -> list[str]:
    """What of an SFT stage verl's SFT trainer runs differently from the local one."""
    gaps = []
    if stage.packing:
        gaps.append("packing: verl packs by its own dynamic batching (use_dynamic_bsz), not our packer")
    if stage.scheduler == "linear":
        gaps.append("scheduler linear: verl's SFT optimizer offers constant and cosine; constant is used")
    if stage.mode_mix != "both":
        gaps.append(f"mode_mix {stage.mode_mix}: applied when the data is exported (other-mode rows are left out)")
    return gaps


def rm_gaps(stage: RMStage) -> list[str]:
    """What of a reward-model stage TRL's RewardTrainer runs differently from the local one."""
    gaps = []
    if stage.min_lr > 0:
        gaps.append(f"min_lr {stage.min_lr:g}: TRL's schedulers decay to 0")
    if stage.heldout_fraction > 0:
        gaps.append("heldout_fraction: every pair trains; TRL reports no held-out pair accuracy here")
    if stage.scheduler_horizon is not None:
        gaps.append("scheduler_horizon: TRL schedules over the run's own steps")
    return gaps


def rm_arguments(
    stage: RMStage,
    recipe: Recipe,
    *,
    output_dir: str,
    n_processes: int,
    logger: Sequence[str] = ("console",),
) -> list[str]:
    """Command-line words for TRL's ``RewardConfig`` (parsed by ``HfArgumentParser``) that train
    ``stage``. ``n_processes`` (all GPUs of the job) splits the recipe's global batch of pairs."""
    if stage.batch_size % n_processes:
        from cascade.errors import CascadeError

        raise CascadeError(f"batch_size {stage.batch_size} must be divisible by the job's {n_processes} GPUs",
                           field=f"stages.{stage.name}.batch_size")
    per_device = stage.batch_size // n_processes
    accum = stage.grad_accum if per_device % stage.grad_accum == 0 else 1
    report_to = [name for name in logger if name in ("tensorboard", "wandb")] or ["none"]
    words = {
        "output_dir": output_dir,
        "learning_rate": stage.lr,
        "per_device_train_batch_size": per_device // accum,
        "gradient_accumulation_steps": accum,
        "adam_beta1": stage.adam_betas[0],
        "adam_beta2": stage.adam_betas[1],
        "weight_decay": stage.weight_decay,
        "max_grad_norm": stage.max_grad_norm,
        "warmup_steps": stage.warmup_steps,
        "lr_scheduler_type": stage.scheduler,
        "seed": recipe.stage_seed(stage.name),
        "max_length": stage.max_seq_len,
        "gradient_checkpointing": stage.gradient_checkpointing,
        "bf16": True,
        "save_strategy": "steps" if stage.save_every else "no",
        "report_to": report_to,
        "logging_steps": 1,
    }
    if stage.save_every:
        words["save_steps"] = stage.save_every
    if stage.max_steps is not None:
        words["max_steps"] = stage.max_steps
    if stage.epochs is not None:
        words["num_train_epochs"] = stage.epochs
    out = []
    for key, value in words.items():
        values = value if isinstance(value, list) else [value]
        out.append(f"--{key}")
        out.extend(str(v).lower() if isinstance(v, bool) else str(v) for v in values)
    return out

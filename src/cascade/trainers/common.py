"""What every trainer shares: the common recipe settings, the metrics log, the progress bar.

Torch-free at import time, so recipe validation can use the settings classes cheaply.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from cascade.errors import CascadeError

if TYPE_CHECKING:
    from rich.progress import Progress

    from cascade.engine.local import LocalEngine
    from cascade.engine.optim import OptimConfig


@dataclass
class TrainSettings:
    """The common recipe fields (names match the recipe 1:1).

    ``batch_size`` is the number of sequences (SFT) or pairs (RM) per optimizer update; it
    is split into ``grad_accum`` micro-batches whose gradients add up. The run ends after
    ``epochs`` passes or ``max_steps`` updates, whichever comes first (``epochs`` None: only
    ``max_steps`` counts, cycling the data). ``scheduler_horizon`` 0 means "the number of
    updates this run plans". ``save_every`` 0 saves only at the end.
    """

    lr: float = 1e-5
    min_lr: float = 0.0
    warmup_steps: int = 0
    scheduler: str = "cosine"
    scheduler_horizon: int = 0
    max_steps: int | None = None
    epochs: int | None = 1
    batch_size: int = 8
    grad_accum: int = 1
    weight_decay: float = 0.0
    adam_betas: tuple[float, float] = (0.9, 0.95)
    max_grad_norm: float = 1.0
    save_every: int = 0
    seed: int = 0
    gradient_checkpointing: bool = False
    dtype: str = "auto"
    keep_checkpoints: int = 2

    def __post_init__(self) -> None:
        self.adam_betas = tuple(self.adam_betas)  # type: ignore[assignment]
        checks = [
            ("batch_size", self.batch_size >= 1, "must be >= 1"),
            ("grad_accum", 1 <= self.grad_accum <= self.batch_size, "must be between 1 and batch_size"),
            ("epochs", self.epochs is None or self.epochs >= 1, "must be >= 1 when given"),
            ("max_steps", self.max_steps is None or self.max_steps >= 1, "must be >= 1 when given"),
            ("max_steps", self.max_steps is not None or self.epochs is not None, "give max_steps or epochs"),
            ("save_every", self.save_every >= 0, "must be >= 0"),
            ("keep_checkpoints", self.keep_checkpoints >= 1, "must be >= 1"),
            ("scheduler_horizon", self.scheduler_horizon >= 0, "must be >= 0"),
            ("adam_betas", len(self.adam_betas) == 2, "must be two numbers"),
        ]
        for name, ok, message in checks:
            if not ok:
                raise CascadeError(f"{message} (got {getattr(self, name)!r})", field=name)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, source: str | None = None) -> "TrainSettings":
        """Build from a recipe section; unknown keys are an error naming the key."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise CascadeError(f"unknown {cls.__name__} setting(s): {', '.join(unknown)}", file=source, field=unknown[0])
        try:
            return cls(**values)
        except CascadeError as exc:
            raise CascadeError(exc.message, file=source, field=exc.field) from None
        except TypeError as exc:
            raise CascadeError(str(exc), file=source) from None

    def planned_steps(self, num_examples: int) -> int:
        """Optimizer updates this run will take over ``num_examples`` examples."""
        per_epoch = math.ceil(num_examples / self.batch_size)
        if self.epochs is None:
            return self.max_steps or 0
        total = per_epoch * self.epochs
        return min(total, self.max_steps) if self.max_steps else total

    def optim_config(self, planned_steps: int) -> "OptimConfig":
        """AdamW + schedule; the horizon defaults to the updates this run plans."""
        from cascade.engine.optim import OptimConfig

        return OptimConfig(
            lr=self.lr,
            min_lr=self.min_lr,
            weight_decay=self.weight_decay,
            betas=self.adam_betas,
            warmup_steps=self.warmup_steps,
            scheduler=self.scheduler,  # type: ignore[arg-type]
            horizon_steps=self.scheduler_horizon or planned_steps,
            max_grad_norm=self.max_grad_norm,
        )


def build_engine(model_path: str | Path, settings: TrainSettings, *, head: str = "lm", device: str = "auto") -> "LocalEngine":
    """A LocalEngine with the settings' dtype, gradient checkpointing and seed (the trainer
    attaches the optimizer once it knows how many updates it plans)."""
    from cascade.engine.local import LocalEngine

    return LocalEngine(
        str(model_path),
        device=device,
        dtype=settings.dtype,
        gradient_checkpointing=settings.gradient_checkpointing,
        seed=settings.seed,
        head=head,  # type: ignore[arg-type]
    )


class MetricsLogger:
    """Appends one JSON object per step to ``path`` (each line flushed and fsynced, so a
    crash loses at most the line being written).

    ``resume_step``: drop lines with ``step`` above it first, so a run resumed from that
    checkpoint does not log those steps twice (a fresh run passes 0); None appends. TensorBoard / W&B mirrors are optional and
    only used when asked for and installed.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        resume_step: int | None = None,
        tensorboard: bool = False,
        wandb_project: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and self.path.exists():
            self._truncate_after(resume_step)
        self._handle = open(self.path, "a", encoding="utf-8")
        self._tensorboard = self._open_tensorboard() if tensorboard else None
        self._wandb = self._open_wandb(wandb_project, resume_step) if wandb_project else None

    def _truncate_after(self, step: int) -> None:
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by the crash
            if isinstance(row, dict) and row.get("step", 0) <= step:
                kept.append(line)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
        os.replace(tmp, self.path)

    def _open_tensorboard(self) -> Any:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise CascadeError("tensorboard logging needs the 'tensorboard' package", field="tensorboard") from None
        return SummaryWriter(log_dir=str(self.path.parent / "tensorboard"))

    def _open_wandb(self, project: str, resume_step: int | None) -> Any:
        try:
            import wandb
        except ImportError:
            raise CascadeError("W&B logging needs the 'wandb' package", field="wandb_project") from None
        return wandb.init(project=project, dir=str(self.path.parent), resume="allow" if resume_step else None)

    def log(self, metrics: Mapping[str, Any]) -> None:
        """Write one step's metrics; ``metrics["step"]`` is required."""
        if "step" not in metrics:
            raise ValueError("metrics need a 'step' key")
        self._handle.write(json.dumps(dict(metrics), sort_keys=True) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        step = int(metrics["step"])
        scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and k != "step"}
        if self._tensorboard is not None:
            for key, value in scalars.items():
                self._tensorboard.add_scalar(key, value, step)
        if self._wandb is not None:
            self._wandb.log(scalars, step=step)

    def close(self) -> None:
        self._handle.close()
        if self._tensorboard is not None:
            self._tensorboard.close()
        if self._wandb is not None:
            self._wandb.finish()

    def __enter__(self) -> "MetricsLogger":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_progress(enabled: bool) -> "Progress":
    """A rich progress bar with rate and ETA; ``enabled=False`` draws nothing (tests)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        disable=not enabled,
    )

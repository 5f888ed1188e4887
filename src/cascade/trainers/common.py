"""What every trainer's loop shares: the metrics log and the progress bar.

Trainers take the recipe's typed stages (``cascade.config.recipe``) as their settings; there
is no second copy of them here. Torch-free at import time.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from cascade.errors import CascadeError

if TYPE_CHECKING:
    from rich.progress import Progress


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
        """Close the log file and any mirror."""
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

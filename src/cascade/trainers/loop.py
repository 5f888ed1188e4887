"""The training loop every trainer shares: resume, step, log, checkpoint, prune, final save.

A trainer (SFT, reward model, GRPO) supplies only its steps, as a ``StageSteps``: what one
update does, when the stage is done, and what its checkpoints hold beyond the engine state.
The loop owns the rest, identically for all three:

- resume from the latest complete checkpoint in ``run_dir`` (the trainer first checks that it
  fits: a checkpoint made on other data is an error, not a silent restart);
- one JSON line of metrics per update (``metrics.jsonl``; lines past the resumed step are
  dropped first, so a resumed stage logs each step once);
- a checkpoint every ``save_every`` updates and after the last, keeping ``keep_checkpoints``;
- the stage's Hugging Face model in ``run_dir/final``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol

from cascade.engine.base import Engine
from cascade.engine.checkpoint import (
    latest_checkpoint,
    prune_checkpoints,
    read_trainer_state,
    write_checkpoint,
    write_final,
)
from cascade.trainers.common import MetricsLogger, make_progress


class StageSteps(Protocol):
    """What a trainer hands to :func:`run_loop`."""

    name: str  # the progress label ("sft", "rm", "grpo")
    total: int | None  # planned updates for a progress bar; None: one printed line per update

    def finished(self, step: int) -> bool:
        """Whether the stage is done after ``step`` updates."""

    def check_resume(self, state: Mapping[str, Any], checkpoint: Path) -> None:
        """Raise when a checkpoint's trainer state does not fit this run (other data)."""

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back the trainer's own state (data cursor, curriculum, ...) from a checkpoint."""

    def train_step(self, step: int) -> dict[str, Any]:
        """Take update number ``step`` (0-based); return its metrics, ``step`` included."""

    def state(self, metrics: Mapping[str, Any]) -> dict[str, Any]:
        """The trainer state a checkpoint taken now holds (JSON)."""

    def status(self, metrics: Mapping[str, Any]) -> str:
        """A short progress line for the update that gave ``metrics``."""


@dataclass(frozen=True)
class LoopResult:
    """How a stage's loop ended: updates done, the final model, the last update's metrics
    (empty when nothing was left to train) and the step it resumed from (None: fresh)."""

    step: int
    final: str
    metrics: dict[str, Any]
    resumed_from: int | None

    def summary(self) -> dict[str, Any]:
        """The ``{"step", "final", "metrics", "resumed_from"}`` every trainer returns."""
        return {"step": self.step, "final": self.final, "metrics": self.metrics, "resumed_from": self.resumed_from}


def run_loop(
    engine: Engine,
    steps: StageSteps,
    run_dir: str | Path,
    *,
    save_every: int | None,
    keep_checkpoints: int,
    resume: bool = True,
    progress: bool = True,
) -> LoopResult:
    """Run (or resume) ``steps`` on ``engine`` until ``steps.finished``; see the module docstring."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    step, resumed_from = 0, None
    if resume and (checkpoint := latest_checkpoint(run_dir)) is not None:
        state = read_trainer_state(checkpoint)
        steps.check_resume(state, checkpoint)
        engine.load(str(checkpoint))
        step = resumed_from = int(state["step"])
        steps.restore(state)
    logger = MetricsLogger(run_dir / "metrics.jsonl", resume_step=step)
    metrics: dict[str, Any] = {}
    try:
        with make_progress(progress and steps.total is not None) as bar:
            task = bar.add_task(steps.name, total=steps.total, completed=step, status="")
            while not steps.finished(step):
                metrics = steps.train_step(step)
                step = int(metrics["step"])
                logger.log(metrics)
                bar.update(task, completed=step, status=steps.status(metrics))
                if progress and steps.total is None:
                    print(f"[{steps.name}] step {step} {steps.status(metrics)}", flush=True)
                if steps.finished(step) or (save_every and step % save_every == 0):
                    write_checkpoint(run_dir, step, engine, steps.state(_jsonable(metrics)))
                    prune_checkpoints(run_dir, keep=keep_checkpoints)
    finally:
        logger.close()
    final = write_final(run_dir / "final", engine)
    return LoopResult(step=step, final=str(final), metrics=metrics, resumed_from=resumed_from)


def _jsonable(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(metrics, default=float))

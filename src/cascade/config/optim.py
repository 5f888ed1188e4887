"""The optimizer's settings as one checked value: AdamW and its learning-rate schedule.

A recipe stage builds it (``optim_config``); the engine turns it into an optimizer and a
schedule (``cascade.engine.optim``). Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cascade.errors import CascadeError

Scheduler = Literal["cosine", "constant", "linear"]
SCHEDULERS: tuple[str, ...] = ("cosine", "constant", "linear")


@dataclass(frozen=True)
class OptimConfig:
    """AdamW + schedule settings; field names follow the recipe (``horizon_steps`` is the
    recipe's ``scheduler_horizon``, ``betas`` its ``adam_betas``)."""

    lr: float
    min_lr: float = 0.0
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    warmup_steps: int = 0
    scheduler: Scheduler = "cosine"
    horizon_steps: int = 0  # must be >= 1 for the decaying schedules
    max_grad_norm: float = 1.0

    def __post_init__(self) -> None:
        if self.scheduler not in SCHEDULERS:
            raise CascadeError(
                f"unknown scheduler {self.scheduler!r}; expected one of {', '.join(SCHEDULERS)}",
                field="scheduler",
            )
        if self.lr < 0 or self.min_lr < 0:
            raise CascadeError("learning rates must be >= 0", field="lr")
        if self.min_lr > self.lr:
            raise CascadeError(f"min_lr {self.min_lr} is above lr {self.lr}", field="min_lr")
        if self.warmup_steps < 0:
            raise CascadeError("warmup_steps must be >= 0", field="warmup_steps")
        if self.scheduler != "constant" and self.horizon_steps < 1:
            raise CascadeError(
                f"a {self.scheduler} schedule needs a horizon of at least 1 step",
                field="scheduler_horizon",
            )
        if self.max_grad_norm <= 0:
            raise CascadeError("max_grad_norm must be > 0", field="max_grad_norm")

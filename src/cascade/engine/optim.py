"""AdamW and the learning-rate schedule shared by every trainer.

The schedule is a pure function of the step so it can be tested by hand and so a resumed run
reproduces it exactly. The horizon is separate from the steps actually run: the paper's SFT
uses a 100K-step cosine horizon but stops at 20-41K steps, so the LR never reaches its floor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from cascade.errors import CascadeError

if TYPE_CHECKING:
    import torch

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


def lr_at(step: int, cfg: OptimConfig) -> float:
    """The learning rate of the optimizer update that follows ``step`` completed updates.

    Warmup ramps linearly so the first update already moves (``lr * 1/warmup``) and update
    ``warmup_steps`` (0-based ``warmup_steps - 1``) reaches the peak. After warmup the decay
    runs over ``horizon_steps - warmup_steps`` updates and then stays at ``min_lr``.
    """
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.scheduler == "constant":
        return cfg.lr
    decay_steps = max(cfg.horizon_steps - cfg.warmup_steps, 1)
    progress = min((step - cfg.warmup_steps) / decay_steps, 1.0)
    if cfg.scheduler == "linear":
        scale = 1.0 - progress
    else:
        scale = 0.5 * (1.0 + math.cos(math.pi * progress))
    return cfg.min_lr + (cfg.lr - cfg.min_lr) * scale


def build_optimizer(model: torch.nn.Module, cfg: OptimConfig) -> torch.optim.AdamW:
    """AdamW; weight decay skips 1-D tensors (norm gains, biases), which decay would only
    pull towards zero without regularising anything useful."""
    import torch

    decayed, plain = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decayed if param.ndim >= 2 else plain).append(param)
    groups = [
        {"params": decayed, "weight_decay": cfg.weight_decay},
        {"params": plain, "weight_decay": 0.0},
    ]
    # The fused kernel updates every tensor in one pass (CPU and CUDA); on the tiny models
    # the per-tensor loop of the default implementation costs more than the arithmetic.
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, fused=True)


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: OptimConfig
) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR whose factor reproduces :func:`lr_at` (the optimizer's base LR is ``cfg.lr``)."""
    import torch

    def factor(step: int) -> float:
        return lr_at(step, cfg) / cfg.lr if cfg.lr > 0 else 0.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

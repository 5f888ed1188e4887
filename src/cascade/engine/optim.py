"""AdamW and the learning-rate schedule shared by every trainer (their settings: ``OptimConfig``).

The schedule is a pure function of the step so it can be tested by hand and so a resumed run
reproduces it exactly. The horizon is separate from the steps actually run: the paper's SFT
uses a 100K-step cosine horizon but stops at 20-41K steps, so the LR never reaches its floor.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from cascade.config.optim import OptimConfig

if TYPE_CHECKING:
    import torch

__all__ = ["OptimConfig", "build_optimizer", "build_scheduler", "lr_at"]


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

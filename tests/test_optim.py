"""AdamW groups and the LR schedule, against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from cascade.engine.optim import OptimConfig, build_optimizer, build_scheduler, lr_at
from cascade.errors import CascadeError

torch.set_num_threads(1)


def test_cosine_horizon_100_at_step_10():
    cfg = OptimConfig(lr=1e-3, scheduler="cosine", horizon_steps=100)
    # 0.5 * (1 + cos(pi * 10/100)) = 0.5 * (1 + 0.9510565163) = 0.97552825815
    assert lr_at(10, cfg) == pytest.approx(9.7552825815e-4, rel=1e-9)
    assert lr_at(0, cfg) == pytest.approx(1e-3)
    assert lr_at(50, cfg) == pytest.approx(5e-4)
    assert lr_at(100, cfg) == pytest.approx(0.0, abs=1e-15)
    assert lr_at(250, cfg) == pytest.approx(0.0, abs=1e-15)  # stays at the floor past the horizon


def test_horizon_longer_than_the_run_never_reaches_the_floor():
    # The paper's SFT: 100K-step horizon, training stops at 20K.
    cfg = OptimConfig(lr=5e-5, scheduler="cosine", horizon_steps=100_000)
    # 0.5 * (1 + cos(0.2 pi)) = 0.5 * (1 + 0.8090169944) = 0.9045084972
    assert lr_at(20_000, cfg) == pytest.approx(4.522542486e-5, rel=1e-9)


def test_warmup_then_cosine_to_min_lr():
    cfg = OptimConfig(lr=1e-3, min_lr=1e-4, warmup_steps=10, scheduler="cosine", horizon_steps=110)
    assert lr_at(0, cfg) == pytest.approx(1e-4)  # 1/10 of the peak on the first update
    assert lr_at(4, cfg) == pytest.approx(5e-4)
    assert lr_at(9, cfg) == pytest.approx(1e-3)
    assert lr_at(10, cfg) == pytest.approx(1e-3)  # decay starts after warmup
    assert lr_at(60, cfg) == pytest.approx(1e-4 + 0.5 * 9e-4)  # half-way through 100 decay steps
    assert lr_at(110, cfg) == pytest.approx(1e-4)


def test_linear_and_constant():
    linear = OptimConfig(lr=1.0, scheduler="linear", horizon_steps=4)
    assert [lr_at(s, linear) for s in range(6)] == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0, 0.0])
    constant = OptimConfig(lr=0.3, scheduler="constant", warmup_steps=2)
    assert [lr_at(s, constant) for s in range(4)] == pytest.approx([0.15, 0.3, 0.3, 0.3])


def test_scheduler_drives_the_optimizer_lr_step_by_step():
    cfg = OptimConfig(lr=1e-2, warmup_steps=2, scheduler="cosine", horizon_steps=6)
    model = torch.nn.Linear(3, 2)
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg)
    seen = []
    for _ in range(8):
        seen.append(optimizer.param_groups[0]["lr"])
        model(torch.ones(1, 3)).sum().backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    # warmup 0.005, 0.01; then cosine over 4 steps: 1, (1+cos(pi/4))/2, 0.5, (1-cos(pi/4))/2, 0, 0
    c = math.cos(math.pi / 4)
    expected = [0.005, 0.01, 0.01, 0.01 * (1 + c) / 2, 0.005, 0.01 * (1 - c) / 2, 0.0, 0.0]
    assert seen == pytest.approx(expected, abs=1e-12)


def test_weight_decay_skips_one_dimensional_parameters():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.LayerNorm(2))
    optimizer = build_optimizer(model, OptimConfig(lr=1e-3, weight_decay=0.1, scheduler="constant"))
    decayed, plain = optimizer.param_groups
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert [tuple(p.shape) for p in decayed["params"]] == [(2, 3)]
    assert sorted(tuple(p.shape) for p in plain["params"]) == [(2,), (2,), (2,)]
    assert optimizer.param_groups[0]["betas"] == (0.9, 0.95)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"scheduler": "cosine", "horizon_steps": 0}, "scheduler_horizon"),
        ({"scheduler": "exponential", "horizon_steps": 10}, "scheduler"),
        ({"min_lr": 1.0, "horizon_steps": 10}, "min_lr"),
        ({"max_grad_norm": 0.0, "horizon_steps": 10}, "max_grad_norm"),
    ],
)
def test_bad_settings_name_their_field(kwargs, field):
    with pytest.raises(CascadeError) as info:
        OptimConfig(lr=1e-3, **kwargs)
    assert info.value.field == field

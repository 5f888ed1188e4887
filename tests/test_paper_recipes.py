"""The packaged paper recipes load, plan offline, and carry the paper's numbers."""

from __future__ import annotations

import socket

import pytest

from cascade.config import GRPOStage, SFTStage, load_recipe, packaged_recipe_names

UNIFIED = "nemotron-cascade-8b"
THINKING = "nemotron-cascade-8b-thinking"
ORDER = ["sft-1", "sft-2", "rlhf", "if-rl-ifeval", "if-rl-ifbench", "math-rl", "code-rl", "swe-rl"]
RM = "nvidia/Qwen2.5-CascadeRL-RM-72B"


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access during recipe validation")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _by_name(recipe):
    return {s.name: s for s in recipe.stages}


@pytest.mark.parametrize("name", [UNIFIED, THINKING])
def test_loads_and_plans_offline(name, no_network):
    assert name in packaged_recipe_names()
    recipe = load_recipe(name)
    plans = recipe.plan()
    assert [p.name for p in plans] == ORDER
    assert [p.parent for p in plans] == ["base", *ORDER[:-1]]
    # Hub data is never counted (or downloaded): every stage sets max_steps, which wins over epochs.
    assert all(p.how in ("max_steps", "max_steps (wins over epochs)") for p in plans)
    assert recipe.base_model == "Qwen/Qwen3-8B-Base"


def test_unified_sft_numbers():
    stages = _by_name(load_recipe(UNIFIED))
    s1, s2 = stages["sft-1"], stages["sft-2"]
    assert isinstance(s1, SFTStage) and isinstance(s2, SFTStage)
    assert (s1.max_seq_len, s1.lr, s1.max_steps, s1.scheduler_horizon) == (16384, 5e-5, 20000, 100000)
    assert (s2.max_seq_len, s2.lr, s2.max_steps, s2.scheduler_horizon) == (32768, 2e-5, 32000, 100000)
    for s in (s1, s2):
        assert (s.batch_size, s.adam_betas, s.weight_decay, s.scheduler, s.min_lr) == (256, (0.9, 0.95), 1e-4, "cosine", 0.0)
        assert s.mode_mix == "both"
    weights = {(d.hub, d.name): d.weight for d in s2.data}
    assert weights[("nvidia/Nemotron-Cascade-SFT-Stage-2", "science")] == 2
    assert weights[("nvidia/Nemotron-Cascade-SFT-SWE", None)] == 3
    assert s1.data[0].hub == "nvidia/Nemotron-Cascade-SFT-Stage-1"


def test_unified_rl_numbers():
    stages = _by_name(load_recipe(UNIFIED))
    rl = {name: s for name, s in stages.items() if isinstance(s, GRPOStage)}
    # name: (lr, group size, think fraction, temperature, max response, steps, reward)
    expected = {
        "rlhf": (2e-6, 8, 0.5, 0.6, 12288, 800, "rlhf"),
        "if-rl-ifeval": (2e-6, 8, 0.0, 0.6, 8192, 2300, "if"),
        "if-rl-ifbench": (2e-6, 8, 0.0, 0.6, 8192, 800, "if"),
        "math-rl": (2e-6, 8, 1.0, 1.0, 24576, 500, "math"),
        "code-rl": (4e-6, 8, 1.0, 1.0, 45056, 90, "code"),
        "swe-rl": (2.5e-6, 16, 1.0, 1.0, 16384, 60, "swe"),
    }
    got = {
        n: (s.lr, s.group_size, s.think_fraction, s.temperature, s.max_response_len, s.max_steps, s.reward)
        for n, s in rl.items()
    }
    assert got == expected
    for s in rl.values():  # paper 4.1.2: strict on-policy, no KL, no entropy, token-level loss; batch 128
        assert (s.ppo_epochs, s.kl_coef, s.entropy_coef, s.loss_agg, s.batch_size) == (1, 0.0, 0.0, "token_mean", 128)
        assert s.top_p == 0.95
    assert rl["rlhf"].reward_model == RM and rl["rlhf"].overlong_filter is False
    for name in ("if-rl-ifeval", "if-rl-ifbench"):
        assert (rl[name].top_k, rl[name].dynamic_filter, rl[name].overlong_filter) == (20, True, False)
    assert rl["math-rl"].epoch_filter and (rl["math-rl"].readd_prob_all_wrong, rl["math-rl"].readd_prob_all_correct) == (0.10, 0.01)
    assert rl["math-rl"].data[0].hub == "nvidia/Nemotron-Cascade-RL-Math"
    assert rl["swe-rl"].data[0].hub == "nvidia/Nemotron-Cascade-RL-SWE"


def _curriculum(stage):
    return [
        (c.name, c.max_response_len, c.max_prompt_len, c.temperature, c.overlong_filter, c.until_step)
        for c in stage.curriculum
    ]


def test_unified_curricula():
    stages = _by_name(load_recipe(UNIFIED))
    assert _curriculum(stages["math-rl"]) == [
        ("compress", 24576, None, 1.0, True, 190),
        ("extend", 32768, None, 1.0, False, 430),
        ("long", 40960, None, 0.8, False, None),
    ]
    assert _curriculum(stages["code-rl"]) == [
        ("len44k", 45056, None, 1.0, None, 45),
        ("len48k", 49152, None, 0.8, None, None),
    ]
    assert stages["code-rl"].overlong_filter is False
    assert _curriculum(stages["swe-rl"]) == [
        ("ctx16k", None, 16384, None, True, 30),
        ("ctx24k", None, 24576, None, False, None),
    ]


def test_thinking_variant_differences():
    unified, thinking = _by_name(load_recipe(UNIFIED)), _by_name(load_recipe(THINKING))
    assert thinking["sft-1"].mode_mix == thinking["sft-2"].mode_mix == "think"
    assert thinking["rlhf"].think_fraction == 1.0 and thinking["rlhf"].max_steps == 800
    ifeval, ifbench = thinking["if-rl-ifeval"], thinking["if-rl-ifbench"]
    for s in (ifeval, ifbench):
        assert (s.reward, s.reward_model, s.think_fraction, s.top_k, s.dynamic_filter) == ("if_thinking", RM, 1.0, 20, True)
    assert (ifeval.max_response_len, ifeval.overlong_filter, ifeval.max_steps) == (8192, False, 550)
    assert (ifbench.max_response_len, ifbench.overlong_filter, ifbench.max_steps) == (16384, True, 300)
    code = thinking["code-rl"]
    assert (code.temperature, code.max_response_len, code.max_steps, code.curriculum) == (1.2, 45056, 64, [])
    for same in ("math-rl", "swe-rl"):
        assert thinking[same].model_dump() == unified[same].model_dump()


@pytest.mark.parametrize("name, ifeval_mode", [(UNIFIED, "no_think"), (THINKING, "think")])
def test_eval_protocol(name, ifeval_mode):
    recipe = load_recipe(name)
    card = {s.name: s for s in recipe.eval["card"]}
    assert (card["aime24"].k, card["aime25"].k, card["aime25"].max_new_tokens) == (64, 64, 65536)
    assert (card["gpqa_diamond"].k, card["lcb_v5"].k, card["lcb_v6"].k) == (8, 8, 8)
    assert (card["ifeval"].k, card["ifeval"].modes, card["ifeval"].max_new_tokens) == (8, ifeval_mode, 32768)
    assert (card["swe_bench_verified"].k, card["swe_bench_verified"].max_new_tokens) == (4, 32768)
    assert all((s.temperature, s.top_p) == (0.6, 0.95) for s in card.values())
    assert recipe.eval_suites_for("swe-rl") == ["card"]


def test_override_to_table_batch_size():
    recipe = load_recipe(UNIFIED, ["stages.rlhf.batch_size=256"])
    assert recipe.stage("rlhf").batch_size == 256

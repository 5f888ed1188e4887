"""The table of stage rewards is the one place that knows a stage reward: every reader
(recipe validation, the local trainer, the runner, the verl adapter) follows it, and a
stage reward added to it is accepted everywhere without another edit."""

from __future__ import annotations

import dataclasses
import json

import pytest
from pydantic import ValidationError
from stage_helpers import grpo_stage

from cascade.verifiers.rewards import RewardInputs
from cascade.verifiers.stage_rewards import STAGE_REWARDS, StageReward, rewards_needing, truncated_reward

MATH = {"id": "m1", "prompt": "What is 2+2?", "verifier": "math", "ground_truth": "4"}


def half_credit(inputs: RewardInputs) -> list[float]:
    return [0.5 * v.score for v in inputs.verifier]


FAKE = StageReward(half_credit, domain="math", reads_verifier=True, reward_model=False, judge=False,
                   language_mixing=None, scope="rollout", truncated=-0.5)


@pytest.fixture
def fake_kind(monkeypatch):
    monkeypatch.setitem(STAGE_REWARDS, "half", FAKE)
    return "half"


def test_a_new_entry_is_accepted_by_the_recipe_the_trainer_and_the_verl_hook(fake_kind):
    from cascade.cluster.verl_reward import compute_score, is_batch_reward
    from cascade.trainers.rollout import stage_reward_fn

    stage = grpo_stage(reward=fake_kind)  # recipe validation: nothing more to set
    assert stage.reward == fake_kind
    results = stage_reward_fn(fake_kind)([MATH, MATH], [r"\boxed{4}", r"\boxed{5}"])
    assert [r.score for r in results] == [0.5, 0.0] and [r.passed for r in results] == [True, False]
    assert truncated_reward(fake_kind) == -0.5
    assert not is_batch_reward(fake_kind)
    extra = {"verifier": "math", "reward": fake_kind, "record": json.dumps({k: MATH[k] for k in ("id", "prompt")})}
    assert compute_score("toy", r"\boxed{4}", json.dumps("4"), extra)["score"] == 0.5


def test_an_entry_needing_a_reward_model_makes_the_recipe_ask_for_one(fake_kind, monkeypatch):
    monkeypatch.setitem(STAGE_REWARDS, fake_kind, dataclasses.replace(FAKE, reward_model=True))
    with pytest.raises(ValidationError, match="reward_model"):
        grpo_stage(reward=fake_kind)
    assert grpo_stage(reward=fake_kind, reward_model="/rm").reward_model == "/rm"


def test_the_stage_domain_comes_from_the_table(fake_kind):
    from cascade.config.recipe import Recipe
    from cascade.pipeline.runner import _stage_domain

    recipe = Recipe.model_validate({
        "name": "t", "base_model": {"init": {"size": "tiny"}},
        "eval": {"all": [{"name": "math", "generator": "toy/eval/math"}]},
        "stages": [{"name": "rl", "kind": "grpo", "data": {"generator": "toy/rl/math"}, "reward": fake_kind,
                    "max_steps": 1}],
    })
    assert _stage_domain(recipe, recipe.stages[0]) == "math"


def test_readers_agree_with_the_table():
    from cascade.cluster.verl_reward import BATCH_REWARDS

    assert rewards_needing("reward_model") == ("rlhf", "if_thinking")
    assert rewards_needing("judge") == ("swe",)
    assert BATCH_REWARDS == ("rlhf", "if_thinking")
    assert {name: entry.truncated for name, entry in STAGE_REWARDS.items()} == {
        "rlhf": None, "if": 0.0, "if_thinking": 0.0, "math": 0.0, "code": 0.0, "swe": -1.0}
    assert {name for name, entry in STAGE_REWARDS.items() if entry.language_mixing} == {"rlhf", "math", "code"}
    assert {name: entry.domain for name, entry in STAGE_REWARDS.items()} == {
        "rlhf": "chat", "if": "if", "if_thinking": "if", "math": "math", "code": "code", "swe": "swe"}
    assert [name for name, entry in STAGE_REWARDS.items() if entry.scope == "batch"] == ["rlhf"]


def test_an_unknown_stage_reward_lists_the_known_ones():
    from cascade.errors import CascadeError
    from cascade.trainers.rollout import stage_reward_fn

    with pytest.raises(CascadeError, match="unknown stage reward 'mathz'; known: code, if, if_thinking, math, rlhf, swe"):
        stage_reward_fn("mathz")

"""Stage rewards, each checked against values computed by hand."""

from __future__ import annotations

import math

import pytest

from cascade.verifiers import VerifyResult
from cascade.verifiers.rewards import RewardInputs, group_z_scores
from cascade.verifiers.stage_rewards import STAGE_REWARDS


def passed(*flags: bool) -> list[VerifyResult]:
    return [VerifyResult(float(f), f) for f in flags]


def sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_registry_has_every_stage() -> None:
    assert set(STAGE_REWARDS) == {"rlhf", "if", "if_thinking", "math", "code", "swe"}


def test_rlhf_mixing_gets_batch_minimum_minus_ten() -> None:
    rlhf = STAGE_REWARDS["rlhf"].reward
    assert rlhf(RewardInputs(rm_scores=[1.0, -0.5, 2.0], language_mixing=[False, True, False])) == [1.0, -10.5, 2.0]
    # The minimum is over the whole batch, not just the mixed rollouts.
    assert rlhf(RewardInputs(rm_scores=[-3.0, 4.0], language_mixing=[False, True])) == [-3.0, -13.0]
    assert rlhf(RewardInputs(rm_scores=[0.25, 0.5])) == [0.25, 0.5]


def test_if_is_the_binary_verifier() -> None:
    assert STAGE_REWARDS["if"].reward(RewardInputs(verifier=passed(True, False, True))) == [1.0, 0.0, 1.0]
    assert STAGE_REWARDS["if"].reward(RewardInputs(verifier=[1.0, 0.0])) == [1.0, 0.0]


def test_group_z_scores() -> None:
    # Group a: [1, 3] -> mean 2, population std 1 -> [-1, 1]; group b: [5, 5] -> std 0 -> [0, 0].
    assert group_z_scores([1.0, 5.0, 3.0, 5.0], ["a", "b", "a", "b"]) == [-1.0, 0.0, 1.0, 0.0]
    # One group: [0, 2, 4] -> mean 2, std sqrt(8/3).
    z = group_z_scores([0.0, 2.0, 4.0], None)
    assert z == pytest.approx([-2 / math.sqrt(8 / 3), 0.0, 2 / math.sqrt(8 / 3)])


def test_if_thinking_adds_sigmoid_of_group_z_when_all_constraints_hold() -> None:
    reward = STAGE_REWARDS["if_thinking"].reward(RewardInputs(
        verifier=passed(True, False, True, True),
        rm_scores=[1.0, 9.0, 3.0, 7.0],
        group_ids=["a", "b", "a", "b"],
    ))
    # Group a z = [-1, 1]; group b holds a single failing rollout plus 7.0: [9, 7] -> z [1, -1].
    assert reward == pytest.approx([1 + sig(-1), 0.0, 1 + sig(1), 1 + sig(-1)])
    same = STAGE_REWARDS["if_thinking"].reward(RewardInputs(verifier=passed(True, True), rm_scores=[2.0, 2.0]))
    assert same == [1.5, 1.5]  # std 0 -> z 0 -> 1 + sigmoid(0)


def test_math_mixing_is_minus_one() -> None:
    reward = STAGE_REWARDS["math"].reward(RewardInputs(verifier=passed(True, True, False), language_mixing=[False, True, True]))
    assert reward == [1.0, -1.0, -1.0]


def test_code_mixing_is_zero() -> None:
    reward = STAGE_REWARDS["code"].reward(RewardInputs(verifier=passed(True, True, False), language_mixing=[False, True, False]))
    assert reward == [1.0, 0.0, 0.0]


def test_swe_is_the_verifier_score() -> None:
    results = [VerifyResult(1.0, True), VerifyResult(-1.0, False), VerifyResult(0.42, False)]
    assert STAGE_REWARDS["swe"].reward(RewardInputs(verifier=results)) == [1.0, -1.0, 0.42]


def test_uniform_signature_and_missing_inputs() -> None:
    for name, reward in STAGE_REWARDS.items():
        kwargs = {"verifier": passed(True), "rm_scores": [0.5], "language_mixing": [False], "group_ids": [0]}
        assert len(reward.reward(RewardInputs(**kwargs))) == 1, name
    with pytest.raises(ValueError, match="rm_scores"):
        STAGE_REWARDS["rlhf"].reward(RewardInputs(verifier=passed(True)))
    with pytest.raises(ValueError, match="language_mixing"):
        STAGE_REWARDS["math"].reward(RewardInputs(verifier=passed(True, False), language_mixing=[True]))

"""The stage rewards' input contract, stage by stage: which missing or mis-sized input each
one names, float outcomes, an empty batch, and the score a truncated rollout gets.

`make mutation` found these unpinned (docs/testing.md): a stage could name the wrong input
in its error, skip a length check, or mishandle a float outcome without a test failing.
"""

from __future__ import annotations

import pytest

from cascade.verifiers import VerifyResult
from cascade.verifiers.rewards import RewardInputs, group_z_scores
from cascade.verifiers.stage_rewards import STAGE_REWARDS, truncated_reward

ONE = [VerifyResult(1.0, True)]


@pytest.mark.parametrize(("stage", "missing"), [
    ("rlhf", "rm_scores"),
    ("if", "verifier"),
    ("if_thinking", "verifier"),
    ("math", "verifier"),
    ("code", "verifier"),
    ("swe", "verifier"),
])
def test_each_stage_names_the_input_it_lacks(stage, missing):
    with pytest.raises(ValueError, match=f"needs '{missing}'$"):
        STAGE_REWARDS[stage].reward(RewardInputs())


def test_if_thinking_needs_rm_scores_one_per_rollout():
    with pytest.raises(ValueError, match="needs 'rm_scores'$"):
        STAGE_REWARDS["if_thinking"].reward(RewardInputs(verifier=ONE))
    with pytest.raises(ValueError, match="'rm_scores' has 2 entries, expected 1"):
        STAGE_REWARDS["if_thinking"].reward(RewardInputs(verifier=ONE, rm_scores=[0.1, 0.2]))


@pytest.mark.parametrize("stage", ["rlhf", "math", "code"])
def test_language_mixing_flags_are_one_per_rollout(stage):
    with pytest.raises(ValueError, match="'language_mixing' has 2 entries, expected 1"):
        STAGE_REWARDS[stage].reward(RewardInputs(verifier=ONE, rm_scores=[0.5], language_mixing=[False, True]))


def test_group_ids_are_one_per_value():
    with pytest.raises(ValueError, match="'group_ids' has 1 entries, expected 2"):
        group_z_scores([1.0, 2.0], ["a"])


def test_swe_takes_float_outcomes_as_scores():
    assert STAGE_REWARDS["swe"].reward(RewardInputs(verifier=[0.25, -1.0])) == [0.25, -1.0]


def test_rlhf_on_an_empty_batch_is_empty():
    assert STAGE_REWARDS["rlhf"].reward(RewardInputs(rm_scores=[], language_mixing=[])) == []


@pytest.mark.parametrize(("stage", "score"), [("swe", -1.0), ("math", 0.0), ("code", 0.0), ("if", 0.0),
                                            ("if_thinking", 0.0), (None, 0.0), ("rlhf", None)])
def test_a_truncated_rollout_scores_the_stage_failure(stage, score):
    # a number replaces a cut-off reply's reward; None (RLHF) keeps the RM's score of its text
    assert truncated_reward(stage) == score
    assert score is None or isinstance(truncated_reward(stage), float)

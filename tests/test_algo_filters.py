"""Overlong, dynamic and epoch-level filters, against hand-worked cases."""

import numpy as np
import pytest

from cascade.algo.advantages import group_advantages
from cascade.algo.filters import apply_overlong, classify_group, epoch_pool, select_signal_groups

REWARDS = [1.0, 0.7, 0.0, 1.0]
REASONS = ["stop", "length", "stop", "length"]


def test_overlong_filter_on_skips_truncated_samples():
    rewards, valid = apply_overlong(REWARDS, REASONS, overlong_filter=True)
    assert rewards == REWARDS
    assert valid == [True, False, True, False]


def test_overlong_filter_off_scores_truncated_samples_zero():
    rewards, valid = apply_overlong(REWARDS, REASONS, overlong_filter=False)
    assert rewards == [1.0, 0.0, 0.0, 0.0]
    assert valid == [True] * 4


def test_overlong_filter_off_scores_truncated_samples_the_stages_failure_score():
    rewards, valid = apply_overlong([1.0, 0.4, -1.0, 0.4], REASONS, overlong_filter=False, truncated_score=-1.0)
    assert rewards == [1.0, -1.0, -1.0, -1.0]
    assert valid == [True] * 4


def test_truncated_reward_per_stage():
    from cascade.verifiers.stage_rewards import truncated_reward

    assert truncated_reward("swe") == -1.0  # no parseable patch, like an unparseable one
    assert truncated_reward("math") == 0.0
    assert truncated_reward(None) == 0.0
    assert truncated_reward("mcq") == 0.0  # a verifier name: its failure score
    assert truncated_reward("rlhf") is None  # the reward model scores the unfinished text


def test_overlong_filter_off_can_keep_the_scored_reward():
    rewards, valid = apply_overlong([1.5, -0.3, 0.2, -2.0], REASONS, overlong_filter=False, truncated_score=None)
    assert rewards == [1.5, -0.3, 0.2, -2.0]
    assert valid == [True] * 4


def test_overlong_choice_changes_the_advantages():
    # filter on: valid rewards 1, 0 -> +1, -1; the truncated ones get 0
    rewards, valid = apply_overlong(REWARDS, REASONS, True)
    on = group_advantages(rewards, 4, eps=0.0, valid=valid)
    np.testing.assert_allclose(on.advantages, [1.0, 0.0, -1.0, 0.0])
    # filter off: rewards 1, 0, 0, 0: mean 0.25, std sqrt(3)/4 = 0.433013 -> 1.732051, -0.577350 x3
    off = group_advantages(apply_overlong(REWARDS, REASONS, False)[0], 4, eps=0.0)
    np.testing.assert_allclose(off.advantages, [3**0.5, -(3**-0.5), -(3**-0.5), -(3**-0.5)], atol=1e-6)


def test_dynamic_filter_keeps_first_groups_with_signal():
    assert select_signal_groups([True, False, True, False, False], needed=2) == [1, 3]
    assert select_signal_groups([True, True], needed=2) == []


def test_classify_group():
    assert classify_group([True, True]) == "all_correct"
    assert classify_group([False, False, False]) == "all_wrong"
    assert classify_group([False, True]) == "mixed"
    with pytest.raises(ValueError):
        classify_group([])


def test_epoch_pool_with_certain_probabilities():
    ids = ["a", "b", "c", "d"]
    outcomes = {"a": "all_correct", "b": "all_wrong", "c": "mixed"}  # d never seen
    pool = epoch_pool(ids, outcomes, epoch=1, seed=0, readd_prob_all_correct=0.0, readd_prob_all_wrong=1.0)
    assert pool == ["b", "c", "d"]
    pool = epoch_pool(ids, outcomes, epoch=1, seed=0, readd_prob_all_correct=1.0, readd_prob_all_wrong=0.0)
    assert pool == ["a", "c", "d"]


def test_epoch_pool_readd_rates_and_determinism():
    n = 20000
    ids = list(range(n))
    outcomes = {i: ("all_correct" if i % 2 else "all_wrong") for i in ids}
    pool = epoch_pool(ids, outcomes, epoch=3, seed=7)
    assert pool == epoch_pool(ids, outcomes, epoch=3, seed=7)
    assert pool != epoch_pool(ids, outcomes, epoch=4, seed=7)
    correct = sum(1 for i in pool if i % 2)
    wrong = len(pool) - correct
    # expected 10000 * 0.01 = 100 (sd ~10) and 10000 * 0.10 = 1000 (sd 30)
    assert 60 < correct < 140
    assert 900 < wrong < 1100


def test_epoch_pool_never_empties():
    ids = ["a", "b"]
    outcomes = {"a": "all_correct", "b": "all_correct"}
    assert epoch_pool(ids, outcomes, epoch=1, seed=0, readd_prob_all_correct=0.0) == ids

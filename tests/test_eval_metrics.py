"""Eval metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest

from cascade.eval.metrics import (
    avg_at_k,
    majority_correct,
    mean_pass_at_k,
    pass_at_k,
    stderr_across_seeds,
    summarize,
)


def test_avg_at_k_weighs_prompts_equally():
    # prompt a: 1/2, prompt b: 3/4 -> (0.5 + 0.75) / 2
    assert avg_at_k({"a": [True, False], "b": [True, True, True, False]}) == pytest.approx(0.625)


def test_pass_at_k_hand_values():
    # n=4, c=1, k=2: 1 - C(3,2)/C(4,2) = 1 - 3/6
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)
    # n=5, c=2, k=3: 1 - C(3,3)/C(5,3) = 1 - 1/10
    assert pass_at_k(5, 2, 3) == pytest.approx(0.9)
    assert pass_at_k(4, 0, 2) == 0.0
    assert pass_at_k(4, 3, 2) == 1.0  # n - c < k
    assert pass_at_k(8, 3, 1) == pytest.approx(3 / 8)  # pass@1 is the plain mean
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)


def test_mean_pass_at_k_skips_prompts_with_too_few_samples():
    assert mean_pass_at_k({"a": [True, False, False, False], "b": [True]}, 2) == pytest.approx(0.5)


def test_majority_vote():
    assert majority_correct(["5", "5", "3"], [True, True, False]) is True
    assert majority_correct(["3", "5", "3"], [False, True, False]) is False
    # tie 1-1: the first seen ("7") wins
    assert majority_correct(["7", "5", None], [False, True, False]) is False
    assert majority_correct([None, None], [False, False]) is False


def test_stderr_across_seeds():
    # per-seed accuracies 0.5 and 1.0: sample std = 0.35355, / sqrt(2) = 0.25
    assert stderr_across_seeds({0: [True, False], 1: [True, True]}) == pytest.approx(0.25)
    assert stderr_across_seeds({0: [True, False]}) == 0.0


def test_summarize():
    samples = [
        {"id": "p1", "seed": 0, "passed": True, "answer": "4"},
        {"id": "p1", "seed": 1, "passed": False, "answer": "5"},
        {"id": "p1", "seed": 2, "passed": True, "answer": "4"},
        {"id": "p2", "seed": 0, "passed": False, "answer": "1"},
        {"id": "p2", "seed": 1, "passed": False, "answer": "1"},
        {"id": "p2", "seed": 2, "passed": True, "answer": "2"},
    ]
    s = summarize(samples, k=3)
    assert s.n_prompts == 2
    assert s.avg_at_k == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert s.pass_at_k == pytest.approx(1.0)
    assert s.majority_at_k == pytest.approx(0.5)
    # per-seed accuracy 0.5, 0.0, 1.0 -> mean 0.5, sample std 0.5, stderr 0.5/sqrt(3)
    assert s.stderr == pytest.approx(0.5 / math.sqrt(3))

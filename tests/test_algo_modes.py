"""Mode mixing: exact counts with the round-half-up rule, seeded placement."""

import pytest

from cascade.algo.modes import NO_THINK, THINK, assign_modes, think_count


@pytest.mark.parametrize(
    ("n", "fraction", "expected"),
    [
        (8, 0.5, 4),  # RLHF half-half
        (8, 0.0, 0),  # IF-RL: instruct only
        (8, 1.0, 8),  # thinking models
        (3, 0.5, 2),  # 1.5 rounds half up
        (5, 0.3, 2),  # 1.5 -> 2 (floor(1.5 + 0.5))
        (7, 0.25, 2),  # 1.75 -> 2
        (6, 0.2, 1),  # 1.2 -> 1
    ],
)
def test_think_count(n, fraction, expected):
    assert think_count(n, fraction) == expected
    modes = assign_modes(n, fraction, seed=0, step=0)
    assert modes.count(THINK) == expected
    assert modes.count(NO_THINK) == n - expected


def test_assignment_is_deterministic_and_varies_with_step():
    a = assign_modes(16, 0.5, seed=3, step=10)
    assert a == assign_modes(16, 0.5, seed=3, step=10)
    others = {tuple(assign_modes(16, 0.5, seed=3, step=s)) for s in range(11, 16)}
    assert len(others | {tuple(a)}) > 1
    redraws = [assign_modes(16, 0.5, seed=3, step=s, draw=1) != assign_modes(16, 0.5, seed=3, step=s) for s in range(5)]
    assert any(redraws)


def test_fraction_out_of_range_is_rejected():
    with pytest.raises(ValueError):
        think_count(4, 1.5)

"""Group advantages, checked against numbers worked out by hand."""

import math

import numpy as np
import pytest

from cascade.algo.advantages import group_advantages, group_slices, repeat_for_groups


def test_repeat_and_slices_lay_out_groups_contiguously():
    assert repeat_for_groups(["a", "b"], 3) == ["a", "a", "a", "b", "b", "b"]
    assert group_slices(6, 3) == [slice(0, 3), slice(3, 6)]
    with pytest.raises(ValueError):
        group_slices(5, 2)


def test_binary_group_gives_plus_minus_one_and_constant_group_is_zero_variance():
    # group 1: mean 0.5, population std 0.5 -> (1-0.5)/0.5 = 1, (0-0.5)/0.5 = -1
    # group 2: all equal -> zero variance, advantages 0
    out = group_advantages([1, 0, 0, 1, 1, 1, 1, 1], 4, eps=0.0)
    np.testing.assert_allclose(out.advantages, [1, -1, -1, 1, 0, 0, 0, 0])
    assert out.zero_variance.tolist() == [False, True]
    assert out.zero_variance_count == 1


def test_std_is_population_not_sample():
    # rewards 3,1,2: mean 2, population std sqrt(2/3) = 0.81650 -> +-1.22474
    # (the sample std would be 1 and give +-1)
    out = group_advantages([3, 1, 2], 3, eps=0.0)
    np.testing.assert_allclose(out.advantages, [1.224744871, -1.224744871, 0.0], atol=1e-8)


def test_eps_enters_the_denominator():
    out = group_advantages([1, 0], 2, eps=0.5)  # std 0.5 -> 0.5 / (0.5 + 0.5)
    np.testing.assert_allclose(out.advantages, [0.5, -0.5])


def test_invalid_samples_are_left_out_of_the_group_statistics():
    # valid rewards 1, 0, 0: mean 1/3, population std sqrt(2/9) = 0.471405
    # -> (2/3)/0.471405 = 1.414214 and (-1/3)/0.471405 = -0.707107; the skipped one gets 0
    out = group_advantages([1, 0, 5, 0], 4, eps=0.0, valid=[True, True, False, True])
    np.testing.assert_allclose(out.advantages, [math.sqrt(2), -1 / math.sqrt(2), 0.0, -1 / math.sqrt(2)], atol=1e-6)
    assert out.zero_variance.tolist() == [False]


def test_group_with_one_valid_sample_has_no_signal():
    out = group_advantages([1, 0, 0], 3, valid=[True, False, False])
    assert out.zero_variance.tolist() == [True]
    assert out.advantages.tolist() == [0.0, 0.0, 0.0]


def test_algo_core_imports_without_torch():
    import subprocess
    import sys

    code = (
        "import sys, cascade.algo; "
        "print('torch' in sys.modules or 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_tanh_group_shaping_by_hand():
    from cascade.algo.advantages import tanh_group_shaping

    # Group 1: mean 3, population std sqrt(6); z = -/+ 3/sqrt(6) = -/+1.2247, tanh -> -/+0.84105.
    # Group 2 has equal rewards: left as it is (GRPO gives it no advantage).
    shaped = tanh_group_shaping([0.0, 3.0, 6.0, 2.0, 2.0, 2.0], 3, eps=0.0)
    assert np.allclose(shaped, [-0.84105, 0.0, 0.84105, 2.0, 2.0, 2.0], atol=1e-5)
    # An invalid sample is left out of its group's statistics and keeps its reward:
    # valid [1, 3, 5] has mean 3 and std sqrt(8/3), so z = -/+1.2247 again.
    shaped = tanh_group_shaping([1.0, 100.0, 3.0, 5.0], 4, eps=0.0, valid=[True, False, True, True])
    assert np.allclose(shaped, [-0.84105, 100.0, 0.0, 0.84105], atol=1e-5)


def test_tanh_shaping_caps_an_outlier_but_leaves_two_valued_groups_alone():
    from cascade.algo.advantages import tanh_group_shaping

    binary = [0.0, 1.0, 1.0, 0.0]
    assert np.allclose(group_advantages(tanh_group_shaping(binary, 4), 4).advantages,
                       group_advantages(binary, 4).advantages)
    # One reply scored far above the rest (a reward hack): its advantage over the ordinary
    # good replies shrinks once the rewards are shaped.
    hacked = [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 10.0]
    raw = group_advantages(hacked, 8).advantages
    shaped = group_advantages(tanh_group_shaping(hacked, 8), 8).advantages
    assert shaped[7] - shaped[1] < raw[7] - raw[1]

"""Edges of the GRPO pure functions that `make mutation` found unpinned (docs/testing.md):
the curriculum's errors (message, file and field), its switching boundaries, group sizes
of one, a group whose one valid sample is not the last, and valid flags given as 0/1.
"""

from __future__ import annotations

import json

import pytest

from cascade.algo.advantages import group_advantages, group_slices, repeat_for_groups, tanh_group_shaping
from cascade.algo.curriculum import advance_substage
from cascade.config import load_recipe
from cascade.config.recipe import SubStage
from cascade.errors import CascadeError


def _recipe_with_curriculum(tmp_path, items) -> str:
    path = tmp_path / "recipe.yaml"
    stage = {"name": "rl", "kind": "grpo", "data": "p.jsonl", "max_steps": 9, "batch_size": 1, "curriculum": items}
    path.write_text(json.dumps({"name": "r", "base_model": "m", "stages": [stage]}))  # JSON is YAML
    return str(path)


@pytest.mark.parametrize(("items", "message", "field"), [
    ([{"name": "a", "colour": 1}], "unknown key", "stages.rl.curriculum[0].colour"),
    ([{"until_step": 3}], "required key missing", "stages.rl.curriculum[0].name"),
    ([{"name": "a", "until_step": 1}, {"name": "b", "until_step": 2, "until_truncated_below": 0.5}, {"name": "c"}],
     "give until_step or until_truncated_below, not both", "stages.rl.curriculum[1].until_truncated_below"),
    ([{"name": "a"}, {"name": "b"}],
     "every sub-stage but the last needs until_step or until_truncated_below", "stages.rl.curriculum[0]"),
    ([{"name": "a", "until_truncated_below": 0.0}, {"name": "b"}], "greater than 0",
     "stages.rl.curriculum[0].until_truncated_below"),
    ([{"name": "a", "until_truncated_below": 1.5}, {"name": "b"}], "less than or equal to 1",
     "stages.rl.curriculum[0].until_truncated_below"),
    ([{"name": "a", "until_step": 4}, {"name": "b", "until_step": 2}, {"name": "c"}],
     "until_step must grow", "stages.rl.curriculum[1].until_step"),
])
def test_curriculum_errors_name_the_file_and_field(tmp_path, items, message, field):
    """The curriculum is the recipe's typed SubStage list: a bad entry is a recipe error naming
    the file, the YAML line and the key path."""
    path = _recipe_with_curriculum(tmp_path, items)
    with pytest.raises(CascadeError) as err:
        load_recipe(path)
    assert message in err.value.message and (err.value.file, err.value.field) == (path, field)


def test_curriculum_bounds_and_sub_stage_objects(tmp_path):
    (stage,) = load_recipe(_recipe_with_curriculum(tmp_path, [{"name": "a", "until_truncated_below": 1.0},
                                                              {"name": "b"}])).stages
    assert stage.curriculum[0].until_truncated_below == 1.0
    assert stage.curriculum[1] == SubStage(name="b")


def test_advance_substage_boundaries():
    two = [SubStage(name="a", until_truncated_below=0.5), SubStage(name="b")]
    assert advance_substage(two, 0, steps_done=1, truncated_share=0.5) == 0  # strictly below
    assert advance_substage(two, 0, steps_done=1, truncated_share=0.49) == 1
    assert advance_substage(two, 1, steps_done=9, truncated_share=0.0) == 1  # the last one stays
    three = [SubStage(name="a", until_step=1), SubStage(name="b", until_step=2), SubStage(name="c")]
    assert advance_substage(three, 1, steps_done=2, truncated_share=1.0) == 2
    ends = [SubStage(name="a", until_step=1), SubStage(name="b", until_step=2)]  # the last one may have an end too
    assert advance_substage(ends, 1, steps_done=5, truncated_share=0.0) == 1


def test_groups_of_one_and_their_errors():
    assert repeat_for_groups(["a", "b"], 1) == ["a", "b"]
    assert group_slices(2, 1) == [slice(0, 1), slice(1, 2)]
    with pytest.raises(ValueError, match="group_size must be >= 1, got 0"):
        repeat_for_groups(["a"], 0)
    with pytest.raises(ValueError, match="5 samples do not split into groups of 2"):
        group_slices(5, 2)
    with pytest.raises(ValueError, match="valid has 1 entries for 2 rewards"):
        group_advantages([1.0, 0.0], 2, valid=[True])


def test_advantage_groups_after_a_zero_variance_one_still_count():
    # group 0 has no variance; group 1 must still get its +-1 advantages
    out = group_advantages([1.0, 1.0, 0.0, 1.0], 2)
    assert out.zero_variance.tolist() == [True, False]
    assert out.advantages.tolist() == pytest.approx([0.0, 0.0, -1.0, 1.0], abs=1e-5)
    assert out.zero_variance.dtype == bool


def test_valid_flags_given_as_numbers_are_flags():
    flags = [1, 0, 1, 1]
    out = group_advantages([0.0, 5.0, 0.0, 2.0], 2, valid=flags)
    assert out.zero_variance.tolist() == [True, False]
    assert out.advantages.tolist() == pytest.approx([0.0, 0.0, -1.0, 1.0], abs=1e-5)


def test_tanh_shaping_values_and_its_eps():
    # a group [0, 2]: z = +-1 / (1 + eps); integer rewards shape like floats
    assert tanh_group_shaping([0, 2], 2).tolist() == pytest.approx([-0.7615941, 0.7615941], abs=1e-6)
    assert tanh_group_shaping([0.0, 2.0], 2, eps=1.0).tolist() == pytest.approx([-0.4621172, 0.4621172], abs=1e-6)


def test_policy_loss_scales_with_the_advantage():
    import torch

    from cascade.algo.losses import clipped_policy_loss

    logp = torch.tensor([[0.0, 0.0]])
    old = torch.tensor([[0.0, -1.0]])  # ratios 1 and e (clipped to 1.2 for a positive advantage)
    loss, active = clipped_policy_loss(logp, old, torch.tensor([2.0]), clip_low=0.2, clip_high=0.2)
    assert loss[0].tolist() == pytest.approx([-2.0, -2.4])
    assert active.tolist() == [[False, True]]
    loss, _ = clipped_policy_loss(logp, old, torch.tensor([0.5]), clip_low=0.2, clip_high=0.2)
    assert loss[0].tolist() == pytest.approx([-0.5, -0.6])


def test_aggregate_with_a_single_token_or_sequence_and_a_bad_name():
    import torch

    from cascade.algo.losses import aggregate

    one = torch.tensor([[3.0, 7.0]])
    mask = torch.tensor([[1, 0]])
    assert float(aggregate(one, mask, "token_mean", total_tokens=1, total_seqs=1)) == 3.0
    assert float(aggregate(one, mask, "seq_mean", total_tokens=1, total_seqs=1)) == 3.0
    with pytest.raises(ValueError, match="^unknown loss_agg 'sum'; known: seq_mean, token_mean$"):
        aggregate(one, mask, "sum", total_tokens=1, total_seqs=1)


def test_grpo_loss_defaults_and_entropy_need():
    from cascade.algo.losses import GRPOLoss

    loss = GRPOLoss(loss_agg="token_mean", total_tokens=1, total_seqs=1)
    assert (loss.clip_low, loss.clip_high, loss.kl_coef, loss.entropy_coef) == (0.2, 0.2, 0.0, 0.0)
    assert loss.needs_entropy is True
    assert GRPOLoss(loss_agg="token_mean", total_tokens=1, total_seqs=1, needs_entropy=False).needs_entropy is False
    assert GRPOLoss(loss_agg="token_mean", total_tokens=1, total_seqs=1, needs_entropy=False,
                    entropy_coef=0.1).needs_entropy is True


def test_grpo_loss_metrics_skip_masked_tokens():
    import torch

    from cascade.algo.losses import GRPOLoss

    logp = torch.tensor([[-1.0, -2.0, -3.0]])
    batch = {"loss_mask": torch.tensor([[0, 1, 1]]), "advantages": torch.tensor([1.5]),
             "sampler_logprobs": torch.tensor([[-9.0, -2.5, -3.0]])}
    _, metrics = GRPOLoss(loss_agg="token_mean", total_tokens=2, total_seqs=1)(logp, batch)
    assert metrics["pg_loss_sum"] == pytest.approx(-3.0)  # two loss tokens at -A each
    assert metrics["sampler_logprob_gap_sum"] == pytest.approx(0.5)
    assert metrics["sampler_logprob_gap_max"] == pytest.approx(0.5)
    batch["loss_mask"] = torch.zeros((1, 3), dtype=torch.long)
    _, metrics = GRPOLoss(loss_agg="token_mean", total_tokens=0, total_seqs=0)(logp, batch)
    assert metrics["sampler_logprob_gap_max"] == 0.0 and metrics["loss_tokens"] == 0.0


def test_filter_errors_say_what_is_wrong():
    from cascade.algo.filters import apply_overlong, classify_group

    with pytest.raises(ValueError, match="^2 rewards for 1 finish reasons$"):
        apply_overlong([1.0, 0.0], ["stop"], False)
    with pytest.raises(ValueError, match="^an empty group has no outcome$"):
        classify_group([])


def test_think_fraction_outside_the_unit_interval_is_named():
    from cascade.algo.modes import think_count

    with pytest.raises(ValueError, match=r"^think_fraction must be in \[0, 1\], got 1.5$"):
        think_count(4, 1.5)

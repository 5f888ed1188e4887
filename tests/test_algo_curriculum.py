"""Length curriculum: the recipe's sub-stages, their validation and the switching rules."""

import pytest
from pydantic import ValidationError
from stage_helpers import grpo_stage

from cascade.algo.curriculum import advance_substage
from cascade.config.recipe import StepKnobs, SubStage

PAPER_8B = [  # paper Table 17 shape, lengths scaled down
    {"name": "compress", "max_response_len": 24, "temperature": 1.0, "overlong_filter": True, "until_step": 190},
    {"name": "extend", "max_response_len": 32, "overlong_filter": False, "until_truncated_below": 0.1},
    {"name": "long", "max_response_len": 40, "temperature": 0.8, "overlong_filter": False},
]


def test_switch_at_step_then_on_truncation_share():
    cur = grpo_stage(curriculum=PAPER_8B).curriculum
    assert cur[0] == SubStage(name="compress", max_response_len=24, temperature=1.0, overlong_filter=True,
                              until_step=190)
    assert advance_substage(cur, 0, steps_done=189, truncated_share=0.0) == 0
    assert advance_substage(cur, 0, steps_done=190, truncated_share=0.9) == 1
    assert advance_substage(cur, 1, steps_done=300, truncated_share=0.12) == 1
    assert advance_substage(cur, 1, steps_done=301, truncated_share=0.09) == 2
    assert advance_substage(cur, 2, steps_done=10_000, truncated_share=0.0) == 2  # the last never ends


def test_substage_knobs_fall_back_to_the_stage():
    stage = grpo_stage(curriculum=PAPER_8B + [], max_response_len=99, max_prompt_len=50, temperature=0.6)
    assert stage.substage_knobs("compress") == StepKnobs("compress", 24, 50, 1.0, True)
    assert stage.substage_knobs("extend") == StepKnobs("extend", 32, 50, 0.6, False)
    assert stage.substage_knobs("long") == StepKnobs("long", 40, 50, 0.8, False)
    plain = grpo_stage(max_response_len=99, max_prompt_len=50, temperature=0.6, overlong_filter=True)
    assert plain.substage_knobs(None) == StepKnobs("main", 99, 50, 0.6, True)
    with pytest.raises(ValueError, match="no sub-stage 'nope'"):
        stage.substage_knobs("nope")
    with pytest.raises(ValueError, match="has a curriculum"):
        stage.substage_knobs(None)


def test_a_substage_may_grow_the_prompt_budget():
    """SWE RL's curriculum grows the input context (paper section 5.5): the sub-stage's
    max_prompt_len is a knob, not an unknown key."""
    stage = grpo_stage(max_prompt_len=100, curriculum=[
        {"name": "short", "max_prompt_len": 16, "until_step": 1}, {"name": "long", "max_prompt_len": 32}])
    assert [stage.substage_knobs(s.name).max_prompt_len for s in stage.curriculum] == [16, 32]


@pytest.mark.parametrize("curriculum, where", [
    ([{"name": "a"}, {"name": "b"}], "every sub-stage but the last"),
    ([{"name": "a", "until_step": 3, "until_truncated_below": 0.1}, {"name": "b"}], "not both"),
    ([{"name": "a", "max_len": 3}], "max_len"),
    ([{"name": "a", "until_step": 5}, {"name": "b", "until_step": 3}, {"name": "c"}], "must grow"),
    ([{"name": "a", "until_truncated_below": 10}, {"name": "b"}], "until_truncated_below"),
])
def test_bad_curricula_name_the_field(curriculum, where):
    with pytest.raises(ValidationError, match=where):
        grpo_stage(curriculum=curriculum)

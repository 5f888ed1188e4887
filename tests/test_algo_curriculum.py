"""Length curriculum: parsing and the switching rules."""

import pytest

from cascade.algo.curriculum import SubStage, advance_substage, parse_curriculum
from cascade.errors import CascadeError

PAPER_8B = [  # paper Table 17 shape, lengths scaled down
    {"name": "compress", "max_response_len": 24, "temperature": 1.0, "overlong_filter": True, "until_step": 190},
    {"name": "extend", "max_response_len": 32, "overlong_filter": False, "until_truncated_below": 0.1},
    {"name": "long", "max_response_len": 40, "temperature": 0.8, "overlong_filter": False},
]


def test_switch_at_step_then_on_truncation_share():
    cur = parse_curriculum(PAPER_8B)
    assert cur[0] == SubStage("compress", 24, 1.0, True, until_step=190)
    assert advance_substage(cur, 0, steps_done=189, truncated_share=0.0) == 0
    assert advance_substage(cur, 0, steps_done=190, truncated_share=0.9) == 1
    assert advance_substage(cur, 1, steps_done=300, truncated_share=0.12) == 1
    assert advance_substage(cur, 1, steps_done=301, truncated_share=0.09) == 2
    assert advance_substage(cur, 2, steps_done=10_000, truncated_share=0.0) == 2  # the last never ends


def test_bad_curricula_name_the_field():
    with pytest.raises(CascadeError, match=r"curriculum\[0\]"):
        parse_curriculum([{"name": "a"}, {"name": "b"}], source="r.yaml")
    with pytest.raises(CascadeError, match="not both"):
        parse_curriculum([{"name": "a", "until_step": 3, "until_truncated_below": 0.1}, {"name": "b"}])
    with pytest.raises(CascadeError, match="unknown key"):
        parse_curriculum([{"name": "a", "max_len": 3}])
    with pytest.raises(CascadeError, match="increase"):
        parse_curriculum([{"name": "a", "until_step": 5}, {"name": "b", "until_step": 3}, {"name": "c"}])
    with pytest.raises(CascadeError, match=r"until_truncated_below"):
        parse_curriculum([{"name": "a", "until_truncated_below": 10}, {"name": "b"}])

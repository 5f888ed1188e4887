"""The training core's structure: the trainers reach the engine only through its seam, every
algorithm variant a recipe names is a registry entry, and an unknown name is one line that
lists the known ones."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import pytest

import cascade.trainers
from cascade.algo.advantages import REWARD_SHAPINGS
from cascade.algo.filters import GROUP_FILTERS
from cascade.algo.registry import pick
from cascade.config.recipe import GRPOStage

TRAINERS = Path(cascade.trainers.__file__).parent


@pytest.mark.parametrize("path", sorted(TRAINERS.glob("*.py")), ids=lambda p: p.name)
def test_trainers_use_only_the_engine_seam(path):
    text = path.read_text()
    assert not re.search(r"getattr\(\s*engine\b", text), "reach the engine through cascade.engine.base.Engine"
    assert "LocalEngine" not in text, "the trainers know the Engine protocol, not one engine"
    assert "engine.local" not in text


def test_local_engine_implements_the_seam():
    from cascade.engine.base import Engine
    from cascade.engine.local import LocalEngine

    members = {name for name in dir(Engine) if not name.startswith("_")} | set(Engine.__annotations__)
    missing = [name for name in sorted(members) if not hasattr(LocalEngine, name)
               and name not in ("tokenizer", "head", "model_path")]  # instance attributes, set in __init__
    assert missing == []


def test_the_recipe_offers_exactly_the_registered_variants():
    from cascade.algo.losses import LOSS_AGGREGATIONS

    fields = GRPOStage.model_fields
    assert set(get_args(fields["loss_agg"].annotation)) == set(LOSS_AGGREGATIONS)
    assert set(get_args(fields["reward_shaping"].annotation)) == set(REWARD_SHAPINGS)
    assert set(GROUP_FILTERS) == {"all", "signal"}  # dynamic_filter off / on


def test_an_unknown_variant_is_one_line_listing_the_known_ones():
    from cascade.algo.losses import aggregate

    with pytest.raises(ValueError, match=r"^unknown reward_shaping 'tanh'; known: group_tanh, none$"):
        pick("reward_shaping", REWARD_SHAPINGS, "tanh")
    import torch

    with pytest.raises(ValueError, match=r"^unknown loss_agg 'sum'; known: seq_mean, token_mean$"):
        aggregate(torch.ones(1, 2), torch.ones(1, 2), "sum", total_tokens=2, total_seqs=1)  # type: ignore[arg-type]


def test_group_filters_keep_what_they_say():
    zero = [True, False, False, True, False]
    assert GROUP_FILTERS["all"](zero, 2) == [0, 1, 2, 3, 4]
    assert GROUP_FILTERS["signal"](zero, 2) == [1, 2]

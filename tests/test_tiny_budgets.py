"""The tiny recipe's length budgets fit its own right answers.

A budget shorter than the SFT targets cuts off replies the verifier would accept, so the
eval measures length, not correctness, and an RL stage is rewarded for being short. Both
happened (chat at 48 tokens, SWE at 64), so each budget is checked against the longest SFT
target of its domain and mode, counted with the tokenizer the recipe builds.
"""

from __future__ import annotations

import pytest

from cascade.config.loading import load_recipe
from cascade.models.tiny import SIZES
from cascade.models.tokenizer_factory import build_tokenizer
from cascade.toyworld import build_toy_world

# IF instruct targets run to ~106 tokens (90% under 75); the recipe keeps IF at 64 on purpose
# (the IF scores at 112 were within 2 points, and IF-RL's time grows with its budget).
EXEMPT = {("if", "no_think")}


@pytest.fixture(scope="module")
def longest_target() -> dict[tuple[str, str], int]:
    recipe = load_recipe("tiny")
    init = recipe.base_model.init
    # The seed the pipeline builds the base model's tokenizer with.
    tokenizer = build_tokenizer(SIZES[init.size]["vocab_size"], seed=recipe.seed if init.seed is None else init.seed)
    world = build_toy_world(recipe.seed)
    longest: dict[tuple[str, str], int] = {}
    for domain, rows in world.sft.items():
        for row in rows:
            # The reply and the end-of-turn token the model must also generate.
            n = len(tokenizer(row["messages"][-1]["content"] + "<|im_end|>", add_special_tokens=False)["input_ids"])
            key = (domain, row["mode"])
            longest[key] = max(longest.get(key, 0), n)
    return longest


def _modes(setting: str) -> list[str]:
    return ["think", "no_think"] if setting == "both" else [setting]


def test_eval_budgets_fit_the_longest_sft_answer(longest_target):
    recipe = load_recipe("tiny")
    checked = 0
    for spec in recipe.eval["all"]:
        domain = spec.generator.rsplit("/", 1)[-1]
        for mode in _modes(spec.modes):
            if (domain, mode) in EXEMPT or (domain, mode) not in longest_target:
                continue
            assert spec.max_new_tokens >= longest_target[(domain, mode)], (spec.name, mode)
            checked += 1
    assert checked >= 5  # chat, math (both modes), code, swe


def test_rl_budgets_fit_the_longest_sft_answer(longest_target):
    recipe = load_recipe("tiny")
    checked = 0
    for stage in recipe.stages:
        if stage.kind != "grpo":
            continue
        domain = stage.data[0].generator.rsplit("/", 1)[-1]
        modes = {0.0: ["no_think"], 1.0: ["think"]}.get(stage.think_fraction, ["think", "no_think"])
        budgets = [stage.max_response_len] + [s.max_response_len for s in stage.curriculum if s.max_response_len]
        for mode in modes:
            if (domain, mode) in EXEMPT or (domain, mode) not in longest_target:
                continue
            assert min(budgets) >= longest_target[(domain, mode)], (stage.name, mode, budgets)
            checked += 1
    assert checked >= 5  # rlhf (both modes), math-rl, code-rl, swe-rl

"""Recipe configuration: typed loading, defaults, overrides and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cascade.config import GRPOStage, SFTStage, load_recipe, packaged_recipe_names
from cascade.config.yaml_lines import load_yaml_with_lines, parse_yaml_value
from cascade.errors import CascadeError

# Line numbers matter: the error tests below point into this text.
RECIPE = """\
name: demo
seed: 3
base_model: {init: {size: tiny}}
eval:
  quick:
    - {name: math, path: eval.jsonl, verifier: math, k: 4}
stages:
  - name: sft
    kind: sft
    data: {path: sft.jsonl, weight: 2}
    batch_size: 4
  - name: rlhf
    kind: grpo
    data: prompts.jsonl
    reward: rlhf
    reward_model: runs/rm
    think_fraction: 0.5
    max_steps: 20
  - name: math-rl
    kind: grpo
    parent: sft
    data: [nvidia/Nemotron-Cascade-RL-Math]
    reward: math
    max_steps: 500
    eval: [quick]
    curriculum:
      - {name: short, max_response_len: 24, until_step: 190, overlong_filter: true}
      - {name: long, max_response_len: 32, until_truncated_below: 0.1}
      - {name: longer, temperature: 0.8}
"""


@pytest.fixture
def recipe_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)  # data paths in the recipe are relative
    (tmp_path / "recipe.yaml").write_text(RECIPE, encoding="utf-8")
    sft_row = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "mode": "no_think"}
    (tmp_path / "sft.jsonl").write_text("\n".join(json.dumps(sft_row) for _ in range(10)) + "\n", encoding="utf-8")
    return tmp_path


def _error_for(recipe_dir: Path, text: str, overrides=()) -> str:
    (recipe_dir / "bad.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(CascadeError) as info:
        load_recipe("bad.yaml", overrides)
    message = info.value.format()
    assert "\n" not in message
    return message


def _edit(old: str, new: str) -> str:
    assert old in RECIPE
    return RECIPE.replace(old, new, 1)


# ---------------------------------------------------------------- a valid recipe


def test_valid_recipe_loads_into_typed_objects_with_defaults(recipe_dir):
    recipe = load_recipe("recipe.yaml")
    assert recipe.name == "demo" and recipe.seed == 3
    assert recipe.base_model.init.size == "tiny"
    assert recipe.output_dir == "runs/demo"
    assert [s.name for s in recipe.stages] == ["sft", "rlhf", "math-rl"]

    sft, rlhf, math = recipe.stages
    assert isinstance(sft, SFTStage) and isinstance(math, GRPOStage)
    # Paper defaults (Appendix D.1, sections 4.1.2 and 4.3-4.7).
    assert (sft.lr, sft.epochs, sft.scheduler, sft.weight_decay) == (5e-5, 1, "cosine", 1e-4)
    assert sft.adam_betas == (0.9, 0.95) and sft.mode_mix == "both" and sft.packing is False
    assert sft.data[0].path == "sft.jsonl" and sft.data[0].weight == 2.0
    assert (rlhf.group_size, rlhf.lr, rlhf.batch_size, rlhf.top_p) == (8, 2e-6, 128, 0.95)
    assert (rlhf.loss_agg, rlhf.kl_coef, rlhf.entropy_coef, rlhf.ppo_epochs) == ("token_mean", 0.0, 0.0, 1)
    assert (rlhf.readd_prob_all_correct, rlhf.readd_prob_all_wrong) == (0.01, 0.10)
    assert rlhf.think_fraction == 0.5 and rlhf.overlong_filter is False
    assert rlhf.data[0].path == "prompts.jsonl"
    assert math.data[0].hub == "nvidia/Nemotron-Cascade-RL-Math"
    assert [c.name for c in math.curriculum] == ["short", "long", "longer"]
    assert math.curriculum[0].overlong_filter is True and math.curriculum[2].temperature == 0.8
    assert math.curriculum[1].temperature is None  # unset: keeps the stage's value

    assert recipe.eval["quick"][0].k == 4 and recipe.eval["quick"][0].modes is None  # None: think for a plain file
    assert [recipe.parent_of(s.name) for s in recipe.stages] == ["base", "sft", "sft"]
    assert recipe.eval_suites_for("sft") == ["quick"]
    assert recipe.stage_seed("rlhf") == 3


def test_plan_estimates_steps_from_max_steps_or_countable_data(recipe_dir):
    plan = {p.name: p for p in load_recipe("recipe.yaml").plan()}
    # 1 epoch x (10 rows x weight 2) / batch 4 = 5 steps.
    assert (plan["sft"].steps, plan["sft"].parent, plan["sft"].kind) == (5, "base", "sft")
    assert plan["rlhf"].steps == 20 and plan["rlhf"].how == "max_steps"
    assert plan["math-rl"].steps_text == "500"

    hub_only = load_recipe("recipe.yaml", ["stages.sft.data=org/sft-set"])
    sft_plan = hub_only.plan()[0]
    assert sft_plan.steps is None and sft_plan.steps_text == "unknown" and "org/sft-set" in sft_plan.how
    capped = load_recipe("recipe.yaml", ["stages.sft.max_steps=3"]).plan()[0]
    assert (capped.steps, capped.how) == (3, "max_steps (wins over epochs)")
    # A hub source with max_steps too: max_steps decides, nothing needs counting.
    bounded = load_recipe("recipe.yaml", ["stages.sft.data=org/sft-set", "stages.sft.max_steps=3"]).plan()[0]
    assert (bounded.steps, bounded.how) == (3, "max_steps (wins over epochs)")


def test_plan_counts_toy_generators_for_the_recipe_seed():
    from cascade.toyworld import part_sizes

    sizes = part_sizes(0)
    recipe = load_recipe("tiny")
    plan = {p.name: p for p in recipe.plan()}
    sft2 = next(s for s in recipe.stages if s.name == "sft-2")
    # sft-2: one epoch over each source's rows (capped by its limit) times its weight.
    rows = sum(min(sizes[src.generator.removeprefix("toy/")], src.limit or 10**9) * src.weight for src in sft2.data)
    assert sft2.max_steps is None
    assert plan["sft-2"].steps == -(-int(rows) // sft2.batch_size)
    assert plan["sft-2"].how.startswith("1 epoch(s) x ")
    assert plan["sft-1"].steps is not None
    # rm: the trainer holds out round(pairs x fraction) whole pairs and trains on the rest.
    rm = next(s for s in recipe.stages if s.name == "rm")
    pairs = sizes["preference"] - round(sizes["preference"] * rm.heldout_fraction)
    assert plan["rm"].steps == rm.epochs * -(-pairs // rm.batch_size)
    assert f" x {pairs} pairs / batch" in plan["rm"].how
    # Another seed draws another world: the counts come from that seed's world.
    assert part_sizes(1) != sizes


def test_yaml_floats_merge_keys_and_duplicates():
    data, lines = load_yaml_with_lines("a: &d {lr: 1e-5, x: 1}\nb:\n  <<: *d\n  x: 2\nc: 12\n", "t.yaml")
    assert data == {"a": {"lr": 1e-5, "x": 1}, "b": {"lr": 1e-5, "x": 2}, "c": 12}
    assert lines[("b", "x")] == 4 and lines[("c",)] == 5
    assert parse_yaml_value("[0.9,0.99]") == [0.9, 0.99] and parse_yaml_value("false") is False
    with pytest.raises(CascadeError, match=r"^t.yaml:2: field 'a': duplicate key"):
        load_yaml_with_lines("a: 1\na: 2\n", "t.yaml")


# ---------------------------------------------------------------- overrides


def test_overrides_change_values_with_yaml_types(recipe_dir):
    recipe = load_recipe("recipe.yaml", [
        "stages.math-rl.lr=1e-5",
        "stages.rlhf.overlong_filter=true",
        "stages.sft.adam_betas=[0.9,0.99]",
        "seed=7",
        "base_model.init.size=small",
        "eval.quick.math.k=8",
        "stages.math-rl.curriculum.longer.temperature=0.7",
        "stages.1.max_steps=30",
    ])
    sft, rlhf, math = recipe.stages
    assert math.lr == 1e-5 and isinstance(math.lr, float)
    assert rlhf.overlong_filter is True and rlhf.max_steps == 30
    assert sft.adam_betas == (0.9, 0.99)
    assert recipe.seed == 7 and recipe.base_model.init.size == "small"
    assert recipe.eval["quick"][0].k == 8 and math.curriculum[2].temperature == 0.7


@pytest.mark.parametrize(
    "override, expected",
    [
        ("stages.nope.lr=1", "recipe.yaml: field 'stages.nope.lr': no stage named 'nope' in stages; names: sft, rlhf, math-rl"),
        ("stages.sft.lrr=1", "recipe.yaml: field 'stages.sft.lrr': unknown key; allowed: name, parent, data,"),
        ("stages.sft.lr=fast", "recipe.yaml: field 'stages.sft.lr': input should be a valid number"),
        ("eval.slow.0.k=2", "recipe.yaml: field 'eval.slow.0.k': no key 'slow' under eval"),
        ("base_model.init.size.x=1", "recipe.yaml: field 'base_model.init.size.x': base_model.init.size is a str, not a mapping"),
        ("seed", "recipe.yaml: an override looks like key=value"),
    ],
)
def test_bad_overrides_fail_clearly(recipe_dir, override, expected):
    with pytest.raises(CascadeError) as info:
        load_recipe("recipe.yaml", [override])
    message = info.value.format()
    assert message.startswith(expected) and "\n" not in message
    if not override == "seed":
        assert message.endswith(f"(from --set '{override}')")


# ---------------------------------------------------------------- one-line errors: file, line, key


def test_unknown_key_at_top_level(recipe_dir):
    assert _error_for(recipe_dir, _edit("seed: 3", "sede: 3")) == (
        "bad.yaml:2: field 'sede': unknown key; allowed: name, description, seed, base_model, output_dir, eval, stages"
    )


def test_unknown_key_in_a_stage_lists_that_kinds_keys(recipe_dir):
    message = _error_for(recipe_dir, _edit("    max_steps: 500\n", "    max_steps: 500\n    group_sise: 16\n"))
    assert message.startswith("bad.yaml:25: field 'stages.math-rl.group_sise': unknown key; allowed: name, parent,")
    assert "group_size, reward, reward_model" in message and "max_seq_len" not in message


def test_unknown_key_in_a_curriculum_entry(recipe_dir):
    message = _error_for(recipe_dir, _edit("temperature: 0.8}", "temprature: 0.8}"))
    assert message == (
        "bad.yaml:29: field 'stages.math-rl.curriculum[2].temprature': unknown key; allowed: name, "
        "max_response_len, max_prompt_len, temperature, overlong_filter, until_step, until_truncated_below"
    )


def test_wrong_type(recipe_dir):
    assert _error_for(recipe_dir, _edit("max_steps: 20", "max_steps: lots")) == (
        "bad.yaml:18: field 'stages.rlhf.max_steps': input should be a valid integer (got 'lots')"
    )


def test_wrong_literal_names_the_allowed_values(recipe_dir):
    assert _error_for(recipe_dir, _edit("    batch_size: 4\n", "    batch_size: 4\n    scheduler: cosin\n")) == (
        "bad.yaml:12: field 'stages.sft.scheduler': input should be 'cosine', 'constant' or 'linear' (got 'cosin')"
    )


def test_bad_parent_references(recipe_dir):
    assert _error_for(recipe_dir, _edit("parent: sft", "parent: nope")) == (
        "bad.yaml:21: field 'stages.math-rl.parent': 'nope' is not a stage; allowed: base, sft, rlhf"
    )
    later = _edit("    reward_model: runs/rm\n", "    reward_model: runs/rm\n    parent: math-rl\n")
    assert _error_for(recipe_dir, later) == (
        "bad.yaml:17: field 'stages.rlhf.parent': 'math-rl' comes later; a parent must be an earlier stage; "
        "allowed: base, sft"
    )


def test_duplicate_stage_names(recipe_dir):
    assert _error_for(recipe_dir, _edit("name: rlhf", "name: sft")) == (
        "bad.yaml:12: field 'stages.sft.name': duplicate stage name 'sft'"
    )


def test_unknown_or_missing_stage_kind(recipe_dir):
    assert _error_for(recipe_dir, _edit("kind: sft", "kind: ppo")) == (
        "bad.yaml:9: field 'stages.sft.kind': got 'ppo'; allowed: sft, rm, grpo"
    )
    assert _error_for(recipe_dir, _edit("    kind: sft\n", "")) == (
        "bad.yaml:8: field 'stages.sft.kind': required key missing; allowed: sft, rm, grpo"
    )


def test_missing_required_key_points_at_its_stage(recipe_dir):
    assert _error_for(recipe_dir, _edit("    data: [nvidia/Nemotron-Cascade-RL-Math]\n", "")) == (
        "bad.yaml:19: field 'stages.math-rl.data': required key missing"
    )


def test_curriculum_switch_rules_that_make_no_sense(recipe_dir):
    backwards = _edit("until_truncated_below: 0.1}", "until_step: 100}")
    assert _error_for(recipe_dir, backwards) == (
        "bad.yaml:28: field 'stages.math-rl.curriculum[1].until_step': until_step must grow from one "
        "sub-stage to the next (previous: 190)"
    )
    no_rule = _edit(", until_truncated_below: 0.1}", "}")
    assert _error_for(recipe_dir, no_rule) == (
        "bad.yaml:28: field 'stages.math-rl.curriculum[1]': every sub-stage but the last needs until_step "
        "or until_truncated_below"
    )
    rule_on_last = _edit("temperature: 0.8}", "temperature: 0.8, until_step: 400}")
    assert _error_for(recipe_dir, rule_on_last) == (
        "bad.yaml:29: field 'stages.math-rl.curriculum[2].until_step': the last sub-stage runs until the "
        "stage ends; remove its switch rule"
    )
    past_the_end = _edit("until_step: 190", "until_step: 600")
    assert "leaves no steps for later sub-stages (max_steps: 500)" in _error_for(recipe_dir, past_the_end)
    share = _edit("until_truncated_below: 0.1", "until_truncated_below: 10")
    assert _error_for(recipe_dir, share).startswith(
        "bad.yaml:28: field 'stages.math-rl.curriculum[1].until_truncated_below': input should be less than or equal to 1"
    )


def test_cross_field_checks(recipe_dir):
    no_rm = _edit("    reward_model: runs/rm\n", "")
    assert _error_for(recipe_dir, no_rm) == (
        "bad.yaml:12: field 'stages.rlhf.reward_model': reward 'rlhf' scores with a reward model: set reward_model"
    )
    unknown_suite = _edit("eval: [quick]", "eval: [quik]")
    assert _error_for(recipe_dir, unknown_suite) == (
        "bad.yaml:25: field 'stages.math-rl.eval[0]': unknown eval suite 'quik'; defined: quick"
    )
    two_origins = _edit("{path: sft.jsonl, weight: 2}", "{path: sft.jsonl, hub: org/x}")
    assert _error_for(recipe_dir, two_origins) == (
        "bad.yaml:10: field 'stages.sft.data[0]': give exactly one of path, hub or generator (given: path, hub)"
    )


def test_base_model_init_block_forbids_unknown_keys(recipe_dir):
    assert _error_for(recipe_dir, _edit("size: tiny", "sise: tiny")) == (
        "bad.yaml:3: field 'base_model.init.sise': unknown key; allowed: size, seed"
    )


def test_yaml_syntax_and_shape_errors(recipe_dir):
    assert _error_for(recipe_dir, _edit("seed: 3", "seed: [3")).startswith("bad.yaml:3: invalid YAML: ")
    assert _error_for(recipe_dir, "- just\n- a list\n").startswith("bad.yaml:1: a recipe is a YAML mapping")


# ---------------------------------------------------------------- finding recipes


def test_missing_recipe_file_and_packaged_name(recipe_dir):
    with pytest.raises(CascadeError, match=r"^nowhere/r\.yaml: no such recipe file$"):
        load_recipe("nowhere/r.yaml")
    with pytest.raises(CascadeError, match="no recipe file or packaged recipe named 'no-such-recipe'; packaged recipes: "):
        load_recipe("no-such-recipe")


def test_every_packaged_recipe_loads():
    # Recipes are written by another module owner; each must satisfy this schema.
    for name in packaged_recipe_names():
        recipe = load_recipe(name)
        assert recipe.stages and len(recipe.plan()) == len(recipe.stages)


def test_the_example_in_docs_recipes_md_is_valid(tmp_path):
    docs = Path(__file__).resolve().parents[1] / "docs" / "recipes.md"
    example = docs.read_text(encoding="utf-8").split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "example.yaml").write_text(example, encoding="utf-8")
    recipe = load_recipe(tmp_path / "example.yaml")
    assert [recipe.parent_of(s.name) for s in recipe.stages] == ["base", "sft-1", "base", "sft-2", "rlhf"]

"""RoPE scaling (YaRN) as a model setting: a stage's checkpoint carries it, the local engine
computes it as transformers does, recipes inherit it, and the verl job receives it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cascade.config import load_recipe
from cascade.engine.local import LocalEngine
from cascade.pipeline.options import RunOptions
from cascade.pipeline.runner import run_recipe

torch.set_num_threads(1)

WINDOW = 32  # the tiny model's "original" window: positions past it are where YaRN matters
YARN = {"rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": WINDOW}

RECIPE = f"""\
name: yarn
seed: 0
base_model: {{init: {{size: tiny}}}}
stages:
  - name: sft
    kind: sft
    data: {{generator: toy/sft/math, limit: 8}}
    lr: 1.0e-3
    batch_size: 4
    max_steps: 1
    max_seq_len: 160
    eval: []
    rope_scaling: {{factor: 2.0, original_max_position_embeddings: {WINDOW}}}
"""


@pytest.fixture(scope="module")
def yarn_checkpoint(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("yarn")
    (folder / "recipe.yaml").write_text(RECIPE)
    out = folder / "run"
    run_recipe(load_recipe(folder / "recipe.yaml"), RunOptions(out_dir=out, progress=False, device="cpu",
                                                               echo=lambda s: None))
    return out / "stages" / "01-sft" / "final"


def test_a_yarn_stage_writes_the_scaling_into_config_json(yarn_checkpoint):
    config = json.loads((yarn_checkpoint / "config.json").read_text())
    assert config["rope_scaling"] == YARN  # the model card's key
    assert {k: config["rope_parameters"][k] for k in YARN} == YARN  # transformers 5's key
    # The base model itself was not scaled: the setting starts at the stage that names it.
    base = json.loads((yarn_checkpoint.parents[2] / "base" / "config.json").read_text())
    assert "rope_scaling" not in base and base["rope_parameters"]["rope_type"] == "default"


def _logits_of(engine: LocalEngine, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        if engine.lean is not None:
            return engine.lean.forward(ids, torch.ones_like(ids))
        return engine.model(input_ids=ids).logits


def test_local_engine_logits_past_the_window_are_transformers_yarn(yarn_checkpoint):
    from transformers import AutoModelForCausalLM

    ids = torch.randint(10, 500, (1, 3 * WINDOW), generator=torch.Generator().manual_seed(0))
    engine = LocalEngine(str(yarn_checkpoint), device="cpu", dtype="float32", seed=0)
    assert engine.lean is not None  # the fast path is the one under test
    ours = _logits_of(engine, ids)

    reference = AutoModelForCausalLM.from_pretrained(yarn_checkpoint, dtype=torch.float32).eval()
    assert reference.model.rotary_emb.rope_type == "yarn"
    with torch.no_grad():
        theirs = reference(input_ids=ids).logits
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)

    unscaled = LocalEngine(str(yarn_checkpoint), device="cpu", dtype="float32", seed=0)
    unscaled.model.config.rope_parameters = {"rope_type": "default",
                                             "rope_theta": unscaled.model.config.rope_parameters["rope_theta"]}
    unscaled.model.model.rotary_emb = type(unscaled.model.model.rotary_emb)(unscaled.model.config)
    plain = _logits_of(unscaled, ids)
    past = slice(WINDOW, None)
    assert (ours[:, past] - plain[:, past]).abs().max() > 1e-2


def test_set_rope_scaling_on_a_live_engine_matches_a_scaled_checkpoint(tiny_model_dir, yarn_checkpoint):
    ids = torch.randint(10, 500, (1, 2 * WINDOW), generator=torch.Generator().manual_seed(1))
    live = LocalEngine(str(yarn_checkpoint), device="cpu", dtype="float32", seed=0)
    before = _logits_of(live, ids)
    live.set_rope_scaling(YARN)  # the same setting again: nothing changes
    torch.testing.assert_close(_logits_of(live, ids), before, rtol=0, atol=0)
    fresh = LocalEngine(str(tiny_model_dir), device="cpu", dtype="float32", seed=0)
    plain = _logits_of(fresh, ids)
    fresh.set_rope_scaling(YARN)
    assert not torch.allclose(_logits_of(fresh, ids), plain)
    assert fresh.model.model.rotary_emb.rope_type == "yarn"


def test_recipe_stages_inherit_the_scaling_and_verl_gets_it():
    from cascade.cluster.verl_config import hydra_args, stage_to_verl_overrides

    recipe = load_recipe("nemotron-cascade-8b")
    card = {"rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": 32768}
    scaled = {s.name for s in recipe.stages if recipe.rope_scaling_for(s.name) is not None}
    # Set where the budgets first pass 32K (math RL's 40K sub-stage), inherited after it.
    assert scaled == {"math-rl", "code-rl", "swe-rl"}
    assert recipe.rope_scaling_for("code-rl").as_config() == card
    overrides = stage_to_verl_overrides(recipe.stage("math-rl"), recipe, n_gpus_per_node=8, nnodes=1,
                                        model_path="/ckpt", data_files=["/d.parquet"], substage="compress")
    assert overrides["actor_rollout_ref.model.override_config"] == {"rope_scaling": card}
    # ++: verl's schema leaves override_config an empty struct dict, so Hydra must force-add its keys.
    assert ("++actor_rollout_ref.model.override_config={rope_scaling:{rope_type:yarn,factor:2.0,"
            "original_max_position_embeddings:32768}}") in hydra_args(overrides)
    if_rl = stage_to_verl_overrides(recipe.stage("if-rl-ifeval"), recipe, n_gpus_per_node=8, nnodes=1,
                                    model_path="/ckpt", data_files=["/d.parquet"])
    assert "actor_rollout_ref.model.override_config" not in if_rl


def test_base_model_section_sets_the_scaling(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(
        "name: b\nbase_model: {path: /models/qwen3, rope_scaling: {factor: 2.0, original_max_position_embeddings: 32768}}\n"
        "stages:\n  - {name: s, kind: sft, data: d.jsonl, max_steps: 1}\n"
    )
    recipe = load_recipe(path)
    assert recipe.base_model_source == "/models/qwen3"
    assert recipe.rope_scaling_for("s").factor == 2.0
    path.write_text("name: b\nbase_model: {init: {size: tiny}, rope_scaling: {factor: 0.5, "
                    "original_max_position_embeddings: 32}}\nstages:\n  - {name: s, kind: sft, data: d.jsonl, max_steps: 1}\n")
    from cascade.errors import CascadeError

    with pytest.raises(CascadeError, match="factor"):
        load_recipe(path)

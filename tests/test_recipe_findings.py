"""The six findings of the paper-recipe review, each reproduced as a user meets it, plus the
one-config-type guarantees: every packaged recipe's stages become trainer inputs, and the
local trainer and the verl adapter read a sub-stage's knobs from the same method.

Runs use a tiny model, one SFT step and a handful of prompts (a few seconds each).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from stage_helpers import grpo_stage

from cascade.cli import main
from cascade.config import GRPOStage, load_recipe, packaged_recipe_names
from cascade.pipeline.options import RunOptions
from cascade.pipeline.runner import run_recipe


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _sft_rows(n: int) -> list[dict]:
    return [{"messages": [{"role": "user", "content": f"Say {i}."}, {"role": "assistant", "content": f"{i}."}],
             "mode": "no_think"} for i in range(n)]


def _recipe(folder: Path, body: str) -> Path:
    path = folder / "recipe.yaml"
    path.write_text("name: finding\nseed: 0\nbase_model: {init: {size: tiny}}\n" + body)
    return path


def _run(recipe: Path, out: Path) -> None:
    run_recipe(load_recipe(recipe), RunOptions(out_dir=out, progress=False, device="cpu", recipe_file=str(recipe),
                                               echo=lambda s: None))


def _steps(run_dir: Path, stage_folder: str) -> list[int]:
    lines = (run_dir / "stages" / stage_folder / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["step"] for line in lines]


# ---------------------------------------------------------------- finding 1: SWE-RL's curriculum


def test_swe_rl_input_context_curriculum_runs_with_the_substage_prompt_budget(tmp_path):
    """Both paper recipes' SWE-RL curriculum sets `max_prompt_len` per sub-stage, which the
    recipe accepted and the trainer's own curriculum type refused once the stage started
    (`unknown key(s) ['max_prompt_len']`). Now the trainer reads the typed stage: a prompt
    over the sub-stage's budget is skipped in that sub-stage only."""
    sft = _jsonl(tmp_path / "sft.jsonl", _sft_rows(2))
    prompts = _jsonl(tmp_path / "p.jsonl", [{"id": f"p{i}", "prompt": f"Fix bug {i}.", "verifier": "math",
                                             "ground_truth": "1"} for i in range(4)])
    recipe = _recipe(tmp_path, f"""\
stages:
  - {{name: sft, kind: sft, data: {sft}, max_steps: 1, batch_size: 2, lr: 1.0e-3, max_seq_len: 64}}
  - name: swe
    kind: grpo
    data: {prompts}
    max_steps: 2
    batch_size: 2
    group_size: 2
    max_response_len: 4
    curriculum:
      - {{name: ctx-small, max_prompt_len: 2, until_step: 1}}
      - {{name: ctx-large, max_prompt_len: 4096}}
""")
    _run(recipe, tmp_path / "run")
    lines = (tmp_path / "run" / "stages" / "02-swe" / "metrics.jsonl").read_text().splitlines()
    first, second = (json.loads(line) for line in lines)
    assert (first["substage"], first["prompts_too_long"]) == ("ctx-small", 2)  # no prompt fits 2 tokens
    assert (second["substage"], second["prompts_too_long"]) == ("ctx-large", 0)


# ---------------------------------------------------------------- finding 2: max_steps vs epochs


def test_epochs_null_with_max_steps_trains_max_steps(tmp_path):
    """`epochs: null, max_steps: N` planned one epoch's worth of steps (the null was lost
    between the typed stage, a dict and the trainer's own defaults); max_steps now decides,
    and wins over epochs when both are set."""
    sft = _jsonl(tmp_path / "sft.jsonl", _sft_rows(4))
    recipe = _recipe(tmp_path, f"""\
stages:
  - {{name: a, kind: sft, data: {sft}, epochs: null, max_steps: 3, batch_size: 4, lr: 1.0e-3, max_seq_len: 64}}
  - {{name: b, kind: sft, data: {sft}, epochs: 1, max_steps: 2, batch_size: 4, lr: 1.0e-3, max_seq_len: 64}}
""")
    plan = {p.name: p.steps for p in load_recipe(recipe).plan()}
    assert plan == {"a": 3, "b": 2}
    _run(recipe, tmp_path / "run")
    assert _steps(tmp_path / "run", "01-a") == [1, 2, 3]  # 4 rows / batch 4 = 1 step per epoch
    assert _steps(tmp_path / "run", "02-b") == [1, 2]


def test_one_set_of_defaults_no_trainer_side_settings_copy():
    """The trainers have no settings types of their own; their defaults were the second set
    (top_p 1.0 vs 0.95, max_response_len 256 vs 8192, weight_decay 0 vs 1e-4)."""
    import cascade.trainers.common as common
    import cascade.trainers.grpo as grpo
    import cascade.trainers.rm as rm
    import cascade.trainers.sft as sft

    for module, name in ((common, "TrainSettings"), (sft, "SFTSettings"), (rm, "RMSettings"), (grpo, "GRPOSettings")):
        assert not hasattr(module, name), f"{module.__name__}.{name} is a second copy of the recipe's settings"
    import cascade.algo.curriculum as curriculum

    assert not hasattr(curriculum, "SubStage") and not hasattr(curriculum, "parse_curriculum")


# ---------------------------------------------------------------- findings 3 and 4: eval sets


AIME_ROWS = [{"id": f"aime-{i}", "problem": f"What is {i} + 1?", "expected_answer": str(i + 1)} for i in range(3)]


def _lcb_row(qid: str, when: str) -> dict:
    tests = json.dumps([{"input": "1\n", "output": "1\n", "testtype": "stdin"}])
    return {"question_title": qid, "question_content": "Echo n.", "platform": "atcoder", "question_id": qid,
            "contest_id": "c", "contest_date": when, "starter_code": "", "difficulty": "easy",
            "public_test_cases": tests, "metadata": "{}"}


def _eval_metrics(tmp_path: Path, eval_sets: str) -> dict:
    """One SFT step, then the given eval sets; the stage's eval metrics."""
    sft = _jsonl(tmp_path / "sft.jsonl", _sft_rows(2))
    recipe = _recipe(tmp_path, f"""\
eval:
  all:
{eval_sets}
stages:
  - {{name: sft, kind: sft, data: {sft}, max_steps: 1, batch_size: 2, lr: 1.0e-3, max_seq_len: 64}}
""")
    _run(recipe, tmp_path / "run")
    return json.loads((tmp_path / "run" / "stages" / "01-sft" / "eval" / "metrics.json").read_text())


def test_prompt_shorthand_eval_set_is_evaluated(tmp_path):
    """A recipe eval set of `prompt`-shorthand records crashed after SFT with KeyError 'messages'."""
    path = _jsonl(tmp_path / "shorthand.jsonl", [{"id": f"s{i}", "prompt": f"What is {i} + 1?", "verifier": "math",
                                                  "ground_truth": str(i + 1)} for i in range(2)])
    metrics = _eval_metrics(tmp_path, f"    - {{name: shorthand, path: {path}, max_new_tokens: 4}}")
    assert metrics["shorthand.think"]["n_prompts"] == 2


def test_benchmark_eval_sets_use_the_registry_loaders_and_windows(tmp_path):
    """A benchmark file laid out like the benchmark data folder (aime25/test.jsonl) failed
    after SFT (`field 'verifier': required key missing`), and no LiveCodeBench window
    applied. `benchmark:` reads it with `cascade eval`'s loader: AIME's fields, the math
    verifier, k, and lcb_v5's date window (one problem inside it, one before)."""
    aime = _jsonl(tmp_path / "bench" / "aime25" / "test.jsonl", AIME_ROWS)
    lcb = _jsonl(tmp_path / "bench" / "lcb.jsonl", [_lcb_row("in-window", "2024-09-01T00:00:00"),
                                                    _lcb_row("too-early", "2023-01-01T00:00:00")])
    metrics = _eval_metrics(tmp_path, f"""\
    - {{name: aime25, benchmark: aime25, path: {aime}, k: 2, max_new_tokens: 4}}
    - {{name: lcb, benchmark: lcb_v5, path: {lcb}, k: 1, max_new_tokens: 4}}""")
    assert metrics["aime25.think"]["n_prompts"] == 3 and metrics["aime25.think"]["k"] == 2
    assert metrics["lcb.think"]["n_prompts"] == 1  # the 2023 problem is outside lcb_v5


def test_benchmark_eval_set_defaults_follow_the_benchmark_protocol(tmp_path):
    """k, budget and mode left unset take the benchmark's protocol (IFEval: avg@8, 32K, instruct)."""
    from cascade.eval.benchmarks import get_benchmark
    from cascade.pipeline.stage_eval import eval_set_data

    path = _jsonl(tmp_path / "ifeval.jsonl", [{"key": 1, "prompt": "Write a haiku.",
                                                "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}])
    recipe = load_recipe("nemotron-cascade-8b", ["eval.card.ifeval.k=null", "eval.card.ifeval.max_new_tokens=null",
                                                 "eval.card.ifeval.modes=null", f"eval.card.ifeval.path={path}"])
    ifeval = next(es for es in recipe.eval["card"] if es.name == "ifeval")
    bench = get_benchmark("ifeval")
    resolved, rows = eval_set_data(ifeval, tmp_path)
    assert (resolved.k, resolved.max_tokens, resolved.mode) == (bench.k, bench.max_tokens, bench.mode) == (8, 32768, "no_think")
    assert [r["verifier"] for r in rows] == ["instruction_following"]


# ---------------------------------------------------------------- finding 5: dry run reads the data


def test_dry_run_reads_released_format_rows_and_names_every_bad_field(tmp_path, capsys):
    """Files in a released layout passed `--dry-run` (it only checked that they exist) and
    failed at run time naming one field "and 2 more errors". Now the dry run reads the first
    rows through the format's adapter and names file, line and every bad field, for data
    sources and eval files alike, and trains nothing."""
    bad_sft = _jsonl(tmp_path / "bad_sft.jsonl", _sft_rows(1) + [{"messages": [{"role": "user", "content": 3}], "source": 5}])
    plain = _recipe(tmp_path, f"""\
stages:
  - {{name: sft, kind: sft, data: {bad_sft}, max_steps: 1, batch_size: 2, lr: 1.0e-3, max_seq_len: 64}}
""")
    assert main(["run", str(plain), "--out", str(tmp_path / "plain"), "--dry-run"]) == 2
    line = next(line for line in capsys.readouterr().err.splitlines() if "bad_sft.jsonl:2" in line)
    for field in ("messages[0].content", "mode", "source"):
        assert f"field '{field}'" in line, (field, line)
    assert "more error" not in line

    _jsonl(tmp_path / "sft.jsonl", _sft_rows(2))
    _jsonl(tmp_path / "math.jsonl", [{"problem": "What is 1 + 1?", "answer": "2", "source": "x"},
                                     {"problem": 7, "source": "x"}])
    _jsonl(tmp_path / "eval.jsonl", [{"prompt": "Hi", "verifier": 3}])
    recipe = _recipe(tmp_path, """\
eval:
  all:
    - {name: bad, path: eval.jsonl}
stages:
  - {name: sft, kind: sft, data: sft.jsonl, max_steps: 1, batch_size: 2, lr: 1.0e-3, max_seq_len: 64}
  - name: rl
    kind: grpo
    data: {path: math.jsonl, format: nemotron_math}
    reward: math
    max_steps: 1
    batch_size: 2
    group_size: 2
""")
    out = tmp_path / "run"
    assert main(["run", str(recipe), "--out", str(out), "--dry-run"]) == 2
    err = capsys.readouterr().err
    math_line = next(line for line in err.splitlines() if "math.jsonl:2" in line)
    for field in ("problem", "answer"):
        assert f"'{field}'" in math_line, (field, math_line)
    eval_line = next(line for line in err.splitlines() if "eval.jsonl:1" in line)
    for field in ("verifier", "id", "ground_truth"):
        assert f"'{field}'" in eval_line, (field, eval_line)
    assert not out.exists()
    # A real run does the same checks before anything trains.
    assert main(["run", str(recipe), "--out", str(out)]) == 2
    assert "math.jsonl:2" in capsys.readouterr().err
    assert not (out / "stages").exists()


def test_dry_run_fails_on_an_unbuildable_stage_and_trains_nothing(tmp_path, capsys):
    _jsonl(tmp_path / "sft.jsonl", _sft_rows(2))
    _jsonl(tmp_path / "p.jsonl", [{"id": "p", "prompt": "Hi", "verifier": "math", "ground_truth": "1"}])
    recipe = _recipe(tmp_path, """\
stages:
  - {name: sft, kind: sft, data: sft.jsonl, max_steps: 1, batch_size: 2, lr: 1.0e-3, max_seq_len: 64}
  - {name: rl, kind: grpo, data: p.jsonl, reward: rlhf, reward_model: sft, max_steps: 1, batch_size: 1}
""")
    assert main(["run", str(recipe), "--out", str(tmp_path / "run"), "--dry-run"]) == 2
    assert "stages.rl.reward_model" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_dry_run_prints_each_stages_knobs_and_engine(capsys):
    assert main(["run", "nemotron-cascade-8b", "--dry-run", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "main knobs (engine: local (torch, cpu))" in out
    assert "ctx16k" in out and "compress" in out and "2.5e-06" in out


# ---------------------------------------------------------------- finding 6: relative paths


def test_relative_paths_resolve_against_the_recipe_folder(tmp_path, monkeypatch, capsys):
    """Relative data paths resolved against the current directory, not the recipe's folder;
    a path given with --set is a command-line path, the current directory's."""
    folder = tmp_path / "project"
    _jsonl(folder / "data" / "sft.jsonl", _sft_rows(2))
    _jsonl(tmp_path / "elsewhere.jsonl", _sft_rows(2))
    recipe = _recipe(folder, """\
stages:
  - {name: sft, kind: sft, data: data/sft.jsonl, max_steps: 1, batch_size: 2, lr: 1.0e-3, max_seq_len: 64}
""")
    monkeypatch.chdir(tmp_path)
    loaded = load_recipe(os.path.relpath(recipe))
    assert Path(loaded.stages[0].data[0].path).resolve() == (folder / "data" / "sft.jsonl").resolve()
    assert main(["run", os.path.relpath(recipe), "--dry-run"]) == 0
    assert "missing" not in capsys.readouterr().out
    overridden = load_recipe(os.path.relpath(recipe), ["stages.sft.data=elsewhere.jsonl"])
    assert overridden.stages[0].data[0].path == "elsewhere.jsonl"


# ---------------------------------------------------------------- one config type


@pytest.mark.parametrize("name", packaged_recipe_names())
def test_every_packaged_stage_becomes_trainer_inputs(name):
    from cascade.pipeline.preflight import build_trainer_inputs

    recipe = load_recipe(name)
    planned = {p.name: p.steps for p in recipe.plan()}
    for stage in recipe.stages:
        inputs = build_trainer_inputs(recipe, stage.name, planned[stage.name])
        assert inputs["stage"].seed == recipe.stage_seed(stage.name)
        if isinstance(stage, GRPOStage):
            assert len(inputs["knobs"]) == max(1, len(stage.curriculum))


def test_local_trainer_and_verl_read_the_same_substage_knobs():
    from cascade.cluster.verl_config import stage_to_verl_overrides
    from cascade.trainers.grpo import knobs_for

    # verl's per-sample hook cannot call a served judge: SWE RL's lexical ablation runs there.
    recipe = load_recipe("nemotron-cascade-8b", ["stages.swe-rl.judge=lexical"])
    for stage in recipe.stages:
        if not isinstance(stage, GRPOStage) or not stage.curriculum or stage.reward == "rlhf":
            continue
        for index, sub in enumerate(stage.curriculum):
            local = knobs_for(stage, index)
            verl = stage_to_verl_overrides(stage, recipe, n_gpus_per_node=8, nnodes=1, model_path="m",
                                           data_files=["d.parquet"], substage=sub.name)
            assert verl["data.max_prompt_length"] == local.max_prompt_len
            assert verl["data.max_response_length"] == local.max_response_len
            assert verl["actor_rollout_ref.rollout.temperature"] == local.temperature


def test_real_run_reads_hub_sources_first_and_trains_nothing_on_a_bad_row(tmp_path, monkeypatch, capsys):
    """A dry run stays offline; a real run streams the first rows of every hub source through
    the format's adapter before the first stage trains."""
    import sys
    import types

    calls = []

    def load_dataset(source, name, split, streaming=False):
        calls.append((source, split, streaming))
        return iter([{"problem": "What is 1 + 1?", "answer": "2"}, {"problem": "What is 2 + 2?"}])

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    sft = _jsonl(tmp_path / "sft.jsonl", _sft_rows(2))
    recipe = _recipe(tmp_path, f"""\
stages:
  - {{name: sft, kind: sft, data: {sft}, max_steps: 1, batch_size: 2, lr: 1.0e-3, max_seq_len: 64}}
  - {{name: rl, kind: grpo, data: {{hub: org/math, format: nemotron_math}}, reward: math, max_steps: 1, batch_size: 2}}
""")
    assert main(["run", str(recipe), "--out", str(tmp_path / "dry"), "--dry-run"]) == 0
    assert calls == [] and "hub dataset org/math not read" in capsys.readouterr().out
    assert main(["run", str(recipe), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "hub:org/math[train] row 1" in err and "'answer'" in err
    assert calls == [("org/math", "train", True)]
    assert not (tmp_path / "run" / "stages").exists()

"""`cascade run --resume` never skips a stage that would not match what it trained on.

One micro run (an SFT stage, then a GRPO stage on its output) is trained once per module;
each case copies it, changes one thing (a learning rate, a data limit, the data file, the
seed, the file's bytes, the parent's output) and resumes: the run stops with a one-line
error naming the field with its old and new value, and writes nothing; with
``--rerun-changed`` the changed stage and every stage after it that trained on its output
run again, and the old outputs are kept.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cascade.cli import main
from cascade.config import load_recipe
from cascade.errors import CascadeError
from cascade.pipeline.resume import OUTPUT_ID, stage_differences
from cascade.pipeline.options import RunOptions
from cascade.pipeline.runner import run_recipe

RECIPE = """\
name: resume-micro
seed: 0
base_model: {{init: {{size: tiny}}}}
eval:
  quick:
    - {{name: math, generator: toy/eval/math, modes: think, k: 1, max_new_tokens: 4, n: 2}}
stages:
  - name: sft
    kind: sft
    data:
      - {{path: {sft_file}, limit: {limit}}}
    lr: {lr}
    batch_size: 4
    max_steps: 1
    max_seq_len: 96
  - name: rl
    kind: grpo
    data: {{generator: toy/rl/math, limit: 4}}
    reward: math
    group_size: 2
    batch_size: 2
    max_steps: 1
    lr: 1.0e-4
    max_response_len: 4
"""


def _write_recipe(folder: Path, *, sft_file: Path, limit: int = 8, lr: str = "1.0e-3", extra: str = "") -> Path:
    path = folder / "recipe.yaml"
    path.write_text(RECIPE.format(sft_file=sft_file, limit=limit, lr=lr) + extra)
    return path


@pytest.fixture(scope="module")
def sft_files(tmp_path_factory) -> tuple[Path, Path]:
    """Two SFT files with different records (A trains the first run; B is "another file")."""
    from cascade.toyworld import build_toy_world, write_toy_world

    folder = tmp_path_factory.mktemp("sft-data")
    lines = write_toy_world(folder / "toy", build_toy_world(seed=0))["sft/math"].read_text().splitlines(keepends=True)
    a, b = folder / "a.jsonl", folder / "b.jsonl"
    a.write_text("".join(lines[:16]))
    b.write_text("".join(lines[16:32]))
    return a, b


@pytest.fixture(scope="module")
def trained(tmp_path_factory, sft_files) -> Path:
    folder = tmp_path_factory.mktemp("trained")
    recipe = _write_recipe(folder, sft_file=sft_files[0])
    out = folder / "run"
    run_recipe(load_recipe(recipe), RunOptions(out_dir=out, progress=False, device="cpu", recipe_file=str(recipe),
                                               echo=lambda s: None))
    return out


@pytest.fixture
def run_copy(trained, tmp_path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    return out


def _snapshot(run: Path) -> dict[str, str]:
    """Every file of the run but its checkpoints' bytes: what a refused resume must not touch."""
    return {str(p.relative_to(run)): p.read_text() for p in sorted(run.rglob("*.json"))}


def _resume_error(recipe: Path, run: Path) -> CascadeError:
    before = _snapshot(run)
    with pytest.raises(CascadeError) as caught:
        run_recipe(load_recipe(recipe), RunOptions(out_dir=run, resume=True, progress=False, device="cpu",
                                                   recipe_file=str(recipe), echo=lambda s: None))
    assert _snapshot(run) == before  # run.json was not rewritten with settings nothing trained on
    return caught.value


@pytest.mark.parametrize("change, field, old_new", [
    ({"lr": "2.0e-3"}, "stages.sft.lr", "lr: 0.001 -> 0.002"),
    ({"limit": 4}, "stages.sft.data[0].limit", "data[0].limit: 8 -> 4"),
    ({"other_file": True}, "stages.sft.data[0].path", "data[0].path: {a} -> {b}"),
    ({"extra": "\n"}, None, None),  # the same recipe: nothing to refuse
])
def test_resume_refuses_a_stage_whose_settings_changed(run_copy, sft_files, tmp_path, change, field, old_new):
    a, b = sft_files
    recipe = _write_recipe(tmp_path, sft_file=b if change.get("other_file") else a, limit=change.get("limit", 8),
                           lr=change.get("lr", "1.0e-3"), extra=change.get("extra", ""))
    if field is None:
        before = _snapshot(run_copy)
        run_recipe(load_recipe(recipe), RunOptions(out_dir=run_copy, resume=True, progress=False, device="cpu",
                                                   echo=lambda s: None))
        assert {k: v for k, v in _snapshot(run_copy).items() if k.startswith("stages")} == \
            {k: v for k, v in before.items() if k.startswith("stages")}
        return
    error = _resume_error(recipe, run_copy)
    message = error.format()
    assert "\n" not in message and error.field == field and error.file == str(recipe)
    assert "stage sft finished on other settings" in message and "--rerun-changed" in message
    assert old_new.format(a=a, b=b) in message


def test_resume_refuses_a_changed_seed(run_copy, sft_files, tmp_path):
    recipe = _write_recipe(tmp_path, sft_file=sft_files[0])
    recipe.write_text(recipe.read_text().replace("seed: 0", "seed: 7"))
    error = _resume_error(recipe, run_copy)
    assert error.field == "stages.sft.seed" and "seed: 0 -> 7" in error.message


def test_resume_refuses_a_data_file_whose_bytes_changed(run_copy, sft_files, tmp_path):
    data = tmp_path / "data.jsonl"
    shutil.copy(sft_files[0], data)
    recipe = _write_recipe(tmp_path, sft_file=data)
    manifest_path = run_copy / "stages" / "01-sft" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())  # the run trained on sft_files[0]; point it at the copy
    manifest["config"]["data"][0]["path"] = str(data)
    manifest["data_hashes"] = {str(data): manifest["data_hashes"][str(sft_files[0])]}
    manifest_path.write_text(json.dumps(manifest))
    run_recipe(load_recipe(recipe), RunOptions(out_dir=run_copy, resume=True, progress=False, echo=lambda s: None))
    data.write_text("".join(data.read_text().splitlines(keepends=True)[1:]))  # other records, same file name
    error = _resume_error(recipe, run_copy)
    assert error.field == "stages.sft.data" and error.file == str(data)
    assert "stage sft finished on other data" in error.message and f"({data} changed)" in error.message


def test_rerun_changed_redoes_the_stage_and_what_trained_on_it(run_copy, sft_files, tmp_path, capsys):
    recipe = _write_recipe(tmp_path, sft_file=sft_files[0], lr="2.0e-3")
    old = {name: json.loads((run_copy / "stages" / name / "manifest.json").read_text()) for name in ("01-sft", "02-rl")}
    args = ["run", str(recipe), "--out", str(run_copy), "--no-progress", "--device", "cpu"]

    # Plain --resume: a one-line error, exit 2.
    assert main(args + ["--resume"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lr: 0.001 -> 0.002" in err and "--rerun-changed" in err

    # Only the changed stage (--until sft): rl now sits on an output of sft it did not train on.
    assert main(args + ["--resume", "--rerun-changed", "--until", "sft"]) == 0
    out = capsys.readouterr().out
    assert "sft: changed since it ran (lr: 0.001 -> 0.002); running it again" in out
    sft = json.loads((run_copy / "stages" / "01-sft" / "manifest.json").read_text())
    assert sft["config"]["lr"] == 0.002 and sft[OUTPUT_ID] != old["01-sft"][OUTPUT_ID]
    moved = [p for p in (run_copy / "stages").iterdir() if p.name.startswith("01-sft.replaced-")]
    assert len(moved) == 1 and json.loads((moved[0] / "manifest.json").read_text()) == old["01-sft"]

    assert main(args + ["--resume"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "field 'stages.rl.parent'" in err and "sft ran again since" in err

    # --rerun-changed: rl runs again, on the new sft output.
    assert main(args + ["--resume", "--rerun-changed"]) == 0
    out = capsys.readouterr().out
    assert "sft: done earlier, skipped" in out and "rl: changed since it ran (parent:" in out
    rl = json.loads((run_copy / "stages" / "02-rl" / "manifest.json").read_text())
    assert rl["input_ids"] == {"sft": sft[OUTPUT_ID]} and rl["status"] == "done"

    # And now everything matches: a plain resume skips both.
    assert main(args + ["--resume"]) == 0
    out = capsys.readouterr().out
    assert "sft: done earlier, skipped" in out and "rl: done earlier, skipped" in out


def test_an_interrupted_stage_is_not_resumed_on_other_settings(run_copy, sft_files, tmp_path):
    manifest_path = run_copy / "stages" / "02-rl" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["status"] = "running"  # as if killed mid-stage, checkpoints on disk
    manifest_path.write_text(json.dumps(manifest))
    recipe = _write_recipe(tmp_path, sft_file=sft_files[0])
    recipe.write_text(recipe.read_text().replace("group_size: 2", "group_size: 4"))
    error = _resume_error(recipe, run_copy)
    assert error.field == "stages.rl.group_size" and "stage rl was interrupted on other settings" in error.message


def test_a_setting_added_since_with_its_default_is_no_difference():
    from cascade.config.recipe import Recipe

    recipe = Recipe.model_validate({"name": "r", "base_model": "m", "stages": [
        {"name": "s", "kind": "sft", "data": "x.jsonl", "max_steps": 1}]})
    stage = recipe.stages[0]
    config = stage.model_dump(mode="json")
    older = {k: v for k, v in config.items() if k != "packing"}  # written before `packing` existed
    manifest = {"config": older, "seed": 0, "parent": "base"}
    assert stage_differences(recipe, stage, manifest, {}, {}) == []
    changed = stage_differences(recipe, stage, {**manifest, "config": {**older, "max_seq_len": 99}}, {}, {})
    assert [d.text() for d in changed] == [f"max_seq_len: 99 -> {stage.max_seq_len}"]
    older_source = {**config, "data": [{k: v for k, v in config["data"][0].items() if k != "split"}]}
    assert stage_differences(recipe, stage, {**manifest, "config": older_source}, {}, {}) == []
    recorded_true = stage_differences(recipe, stage, {**manifest, "config": {**config, "packing": True}}, {}, {})
    assert [d.text() for d in recorded_true] == ["packing: true -> false"]

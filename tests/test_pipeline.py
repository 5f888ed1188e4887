"""The stage runner end to end on a micro-recipe: handoff, manifests, resume, bad recipes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cascade.cli import main
from cascade.config import load_recipe
from cascade.errors import CascadeError
from cascade.pipeline.hashes import weights_sha256
from cascade.pipeline.options import RunOptions
from cascade.pipeline.runner import run_recipe

MICRO = """\
name: micro
seed: 0
base_model: {init: {size: tiny}}
eval:
  quick:
    - {name: math, generator: toy/eval/math, modes: both, k: 1, max_new_tokens: 12, n: 6}
stages:
  - name: sft
    kind: sft
    data:
      - {generator: toy/sft/math, limit: 24}
    lr: 1.0e-3
    batch_size: 8
    max_steps: 3
    max_seq_len: 160
    save_every: 1
  - name: rl
    kind: grpo
    data: {generator: toy/rl/math, limit: 16}
    reward: math
    group_size: 2
    batch_size: 2
    max_steps: 2
    lr: 1.0e-4
    max_response_len: 12
    # The micro SFT policy never ends a reply within 12 tokens, so every rollout is cut off
    # and scores 0: no group has reward variance, and the policy gradient is zero. The
    # entropy bonus still gives the stage a gradient, so the stage must change the weights.
    entropy_coef: 0.01
    save_every: 1
"""

# Fields that legitimately differ between two runs of the same recipe.
VOLATILE = {"started", "finished", "timings", "parent_path", "output_id", "input_ids"}


def _stable(manifest: dict) -> dict:
    out = {k: v for k, v in manifest.items() if k not in VOLATILE}
    metrics = dict(out.get("metrics") or {})
    for key in ("resumed_from", "final"):
        metrics.pop(key, None)
    # Per-step timing metrics (seconds, tokens/s) are wall-clock measurements.
    last = {k: v for k, v in (metrics.get("metrics") or {}).items() if "time" not in k and "per_s" not in k}
    metrics["metrics"] = last
    out["metrics"] = metrics
    return out


def _manifests(root: Path) -> dict[str, dict]:
    return {p.parent.name: _stable(json.loads(p.read_text())) for p in sorted(root.glob("stages/*/manifest.json"))}


@pytest.fixture(scope="module")
def micro_recipe(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("recipe") / "micro.yaml"
    path.write_text(MICRO)
    return path


@pytest.fixture(scope="module")
def finished_run(micro_recipe, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "micro"
    run_recipe(load_recipe(micro_recipe), RunOptions(out_dir=out, progress=False, device="cpu",
                                                     recipe_file=str(micro_recipe), echo=lambda s: None))
    return out


def test_micro_recipe_runs_end_to_end(finished_run):
    run = json.loads((finished_run / "run.json").read_text())
    assert run["status"] == "done" and run["stages"] == ["sft", "rl"]
    for name in ("01-sft", "02-rl"):
        m = json.loads((finished_run / "stages" / name / "manifest.json").read_text())
        assert m["status"] == "done"
        assert (finished_run / "stages" / name / "final" / "config.json").exists()
        assert set(m["eval"]["sets"]) == {"math.think", "math.no_think"}
        assert m["data_hashes"] and all(len(h) == 64 for h in m["data_hashes"].values())
        metrics = json.loads((finished_run / "stages" / name / "eval" / "metrics.json").read_text())
        assert metrics["math.think"]["n_prompts"] == 6
        assert m["weights_sha256"] == weights_sha256(finished_run / "stages" / name / "final")
        for set_name, scores in m["eval"]["scores"].items():
            assert scores["avg_at_k"] == metrics[set_name]["avg_at_k"]
            assert scores["n_prompts"] == 6


def test_handoff_loads_the_parents_checkpoint(finished_run):
    from safetensors.torch import load_file

    rl = json.loads((finished_run / "stages" / "02-rl" / "manifest.json").read_text())
    assert rl["parent"] == "sft" and Path(rl["parent_path"]) == finished_run / "stages" / "01-sft" / "final"
    base = load_file(finished_run / "base" / "model.safetensors")
    sft = load_file(finished_run / "stages" / "01-sft" / "final" / "model.safetensors")
    rl_w = load_file(finished_run / "stages" / "02-rl" / "final" / "model.safetensors")
    key = "model.layers.0.mlp.down_proj.weight"
    # SFT moved the base weights; RL started from SFT's output, not from the base model, so
    # its weights sit next to SFT's and far from the base's.
    assert not (base[key] == sft[key]).all()
    assert (rl_w[key] - sft[key]).abs().sum() < (rl_w[key] - base[key]).abs().sum()


def test_every_training_stage_changed_its_parents_weights(finished_run):
    # An RL stage that loads its parent and saves it again unchanged (an optimizer step
    # skipped, a zero learning rate, a gradient that never reaches the weights) passes every
    # other check here; the weight hashes in the manifests catch it.
    base = weights_sha256(finished_run / "base")
    sft = json.loads((finished_run / "stages" / "01-sft" / "manifest.json").read_text())
    rl = json.loads((finished_run / "stages" / "02-rl" / "manifest.json").read_text())
    assert len({base, sft["weights_sha256"], rl["weights_sha256"]}) == 3
    assert rl["metrics"]["metrics"]["grad_norm"] > 0


def test_finished_run_is_never_overwritten_silently(finished_run, micro_recipe):
    with pytest.raises(CascadeError, match="already holds a run"):
        run_recipe(load_recipe(micro_recipe), RunOptions(out_dir=finished_run, progress=False, echo=lambda s: None))
    before = _manifests(finished_run)
    run_recipe(load_recipe(micro_recipe), RunOptions(out_dir=finished_run, resume=True, progress=False,
                                                     echo=lambda s: None))
    assert _manifests(finished_run) == before  # finished stages were skipped, not redone


def test_resume_refuses_to_skip_a_stage_whose_data_changed(finished_run, micro_recipe, tmp_path):
    import shutil

    run = tmp_path / "micro"
    shutil.copytree(finished_run, run)
    data = run / "data" / "toy" / "sft" / "math.jsonl"
    lines = data.read_text().splitlines(keepends=True)
    data.write_text("".join(lines[1:]))  # still valid records, but not the ones sft trained on
    with pytest.raises(CascadeError, match="stage sft finished on other data") as caught:
        run_recipe(load_recipe(micro_recipe), RunOptions(out_dir=run, resume=True, progress=False,
                                                         echo=lambda s: None))
    assert caught.value.file == str(data) and caught.value.field == "stages.sft.data"
    data.write_text("".join(lines))  # the same bytes again: resume skips as before
    run_recipe(load_recipe(micro_recipe), RunOptions(out_dir=run, resume=True, progress=False, echo=lambda s: None))


def _kill_when(out: Path, ready, micro_recipe: Path) -> None:
    import torch

    # The reference run and the resumed part run in this process, whose thread count other
    # test modules may have set; the killed part must use the same, or its float sums differ.
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS=str(torch.get_num_threads()))
    proc = subprocess.Popen([sys.executable, "-m", "cascade.cli", "run", str(micro_recipe), "--out", str(out),
                             "--no-progress", "--device", "cpu"], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and not ready():
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before the kill point"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
@pytest.mark.parametrize("where", ["inside-stage", "between-stages"])
def test_resume_after_kill_gives_the_same_manifests(where, finished_run, micro_recipe, tmp_path, capfd):
    out = tmp_path / "killed"
    if where == "inside-stage":
        ready = lambda: any((out / "stages" / "02-rl" / "checkpoints").glob("step_*/COMPLETE"))  # noqa: E731
    else:
        ready = lambda: (out / "stages" / "01-sft" / "manifest.json").exists() and \
            json.loads((out / "stages" / "01-sft" / "manifest.json").read_text()).get("status") == "done"  # noqa: E731
    _kill_when(out, ready, micro_recipe)
    capfd.readouterr()
    assert main(["run", str(micro_recipe), "--out", str(out), "--resume", "--no-progress", "--device", "cpu"]) == 0
    assert _manifests(out) == _manifests(finished_run)
    # the manifests hold the hash of each stage's final weights: the resumed run's are the same
    for name in ("01-sft", "02-rl"):
        resumed = json.loads((out / "stages" / name / "manifest.json").read_text())["weights_sha256"]
        assert resumed == weights_sha256(finished_run / "stages" / name / "final")
    # The resumed stage loads and saves checkpoints; transformers' own bars for that are hidden.
    err = capfd.readouterr().err
    assert "Loading weights" not in err and "Writing model shards" not in err


def test_bad_recipe_fails_before_any_training(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(MICRO.replace("reward: math", "reward: mathz"))
    out = tmp_path / "out"
    assert main(["run", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "mathz" in err and "stages.rl.reward" in err
    assert not (out / "stages").exists() and not (out / "base").exists()

    bad.write_text(MICRO.replace("  - name: rl\n    kind: grpo\n", "  - name: rl\n    kind: grpo\n    parent: rm\n"))
    assert main(["run", str(bad), "--out", str(out)]) == 2
    assert "parent" in capsys.readouterr().err


def test_dry_run_prints_the_plan(micro_recipe, capsys):
    assert main(["run", str(micro_recipe), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "sft -> rl" in out and "max_steps" in out and "nothing was trained" in out


@pytest.mark.parametrize("where", ["out", "out/run"])
def test_run_directory_blocked_by_a_file_fails_clearly(tmp_path, micro_recipe, capsys, where):
    (tmp_path / "out").write_text("not a directory")
    assert main(["run", str(micro_recipe), "--out", str(tmp_path / where)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path / 'out'} is a file" in err

"""`cascade run RECIPE --engine verl` end to end, with a stand-in launcher (tests/helpers/cluster_standin.py)
that records each job's engine commands and writes a small checkpoint where the engine would.

What is real here: the CLI, the run layout, the data each job reads (exported on the "head
node"), the job scripts, the launcher template, the chat-template restore, the evaluation of
each stage's checkpoint and the manifests, report and --resume. What is stood in: the cluster
job itself (verl / TRL), which this machine cannot run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cascade.chat import chat_template

REPO = Path(__file__).resolve().parents[1]
STANDIN = REPO / "tests" / "helpers" / "cluster_standin.py"

RECIPE = """\
name: cluster-e2e
seed: 0
base_model: {init: {size: tiny}}
eval:
  all:
    - {name: math, generator: toy/eval/math, modes: no_think, k: 1, n: 3, max_new_tokens: 8}
stages:
  - name: sft
    kind: sft
    data: [{generator: toy/sft/math, limit: 12}]
    max_seq_len: 192
    batch_size: 4
    max_steps: 3
    save_every: 2
  - name: rm
    kind: rm
    data: {generator: toy/preference}
    batch_size: 8
    max_steps: 2
    max_seq_len: 128
  - name: math-rl
    kind: grpo
    parent: sft
    data: [{generator: toy/rl/math, limit: 10}]
    reward: math
    batch_size: 2
    group_size: 4
    max_steps: 2
    max_response_len: 16
    max_prompt_len: 96
    dynamic_filter: true
"""


def _run(tmp_path: Path, *extra: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE)
    launcher = f"{sys.executable} {STANDIN} {tmp_path / 'jobs.jsonl'} {{script}}"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "cascade.cli", "run", str(recipe), "--out", str(tmp_path / "run"), "--engine", "verl",
         "--nnodes", "2", "--gpus-per-node", "4", "--launcher", launcher, "--eval-backend", "local",
         "--logger", "console,tensorboard", "--device", "cpu", "--no-progress", *extra],
        capture_output=True, text=True, env=env, timeout=600,
    )


def _jobs(tmp_path: Path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "jobs.jsonl").read_text().splitlines()]


def _words(command: list[str]) -> dict[str, str]:
    return dict(w.split("=", 1) for w in command if "=" in w and not w.startswith("-"))


@pytest.mark.slow
def test_engine_verl_runs_every_stage_as_a_job_and_resumes_after_a_kill(tmp_path):
    # 1. A crash of the head node while the second stage's job runs.
    killed = _run(tmp_path, env_extra={"STANDIN_KILL_PARENT_AT": "rm"})
    assert killed.returncode == -9, killed.stderr[-2000:]
    run = tmp_path / "run"
    sft_manifest = json.loads((run / "stages/01-sft/manifest.json").read_text())
    assert sft_manifest["status"] == "done" and sft_manifest["engine"] == "verl"
    assert json.loads((run / "stages/02-rm/manifest.json").read_text())["status"] == "running"

    # 2. --resume: the finished stage is skipped, the killed one launched again, the rest follow.
    resumed = _run(tmp_path, "--resume")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "sft: done earlier, skipped" in resumed.stdout
    jobs = _jobs(tmp_path)
    assert [j["stage"] for j in jobs] == ["sft", "rm", "rm", "math-rl"]

    # SFT: verl's Ray SFT trainer from the base model, our exported data, then the merge.
    sft = jobs[0]
    train, merge = sft["commands"]
    assert train[:3] == ["python", "-m", "verl.trainer.sft_trainer_ray"]
    words = _words(train)
    assert words["model.path"] == str(run / "base")
    assert words["trainer.nnodes"] == "2" and words["trainer.n_gpus_per_node"] == "4"
    assert words["trainer.save_freq"] == "2" and words["trainer.total_training_steps"] == "3"
    assert words["trainer.logger"] == "[console,tensorboard]"
    assert words["data.enable_thinking_key"] == "enable_thinking"
    data_file = words["data.train_files"].strip("[]")
    table = pq.read_table(data_file).to_pylist()
    assert len(table) == 12 and {"messages", "enable_thinking"} <= set(table[0])
    assert merge[:3] == ["python", "-m", "verl.model_merger"]
    assert merge[merge.index("--target_dir") + 1] == str(run / "stages/01-sft/final")

    # RM: TRL's RewardTrainer under accelerate, on 8 processes, from the SFT checkpoint.
    rm = jobs[2]["commands"][0]
    assert rm[:2] == ["accelerate", "launch"] and rm[rm.index("--num_processes") + 1] == "8"
    assert rm[rm.index("-m") + 1] == "cascade.cluster.trl_rm"
    assert rm[rm.index("--model") + 1] == str(run / "stages/01-sft/final")
    assert rm[rm.index("--output_dir") + 1] == str(run / "stages/02-rm/final")
    assert rm[rm.index("--per_device_train_batch_size") + 1] == "1"  # 8 pairs over 8 GPUs
    assert rm[rm.index("--report_to") + 1] == "tensorboard"
    pairs = (run / "stages/02-rm/cluster-data/pairs.jsonl").read_text().splitlines()
    assert json.loads(pairs[0])["chosen"][-1]["role"] == "assistant"

    # GRPO: verl's PPO trainer from its parent (sft, not rm), the reward hook, then the merge.
    grpo, grpo_merge = jobs[3]["commands"]
    assert grpo[:3] == ["python", "-m", "verl.trainer.main_ppo"]
    words = _words(grpo)
    assert words["actor_rollout_ref.model.path"] == str(run / "stages/01-sft/final")
    assert words["reward.custom_reward_function.path"] == "'pkg://cascade.cluster.verl_reward'"  # Hydra-quoted
    assert words["algorithm.filter_groups.enable"] == "true"
    assert words["trainer.logger"] == "[console,tensorboard]"
    assert words["trainer.default_local_dir"] == str(run / "stages/03-math-rl/verl")
    rows = pq.read_table(words["data.train_files"].strip("[]")).to_pylist()
    assert len(rows) == 10 and all(r["extra_info"]["reward"] == "math" for r in rows)
    assert grpo_merge[grpo_merge.index("--target_dir") + 1] == str(run / "stages/03-math-rl/final")

    # Every stage: merged back, our chat template restored, evaluated (not the RM), manifests done.
    for name, evaluated in (("01-sft", True), ("02-rm", False), ("03-math-rl", True)):
        stage_dir = run / "stages" / name
        manifest = json.loads((stage_dir / "manifest.json").read_text())
        assert manifest["status"] == "done" and manifest["data_hashes"]
        assert json.loads((stage_dir / "final/standin.json").read_text())["stage"] == name[3:]
        tokenizer_config = json.loads((stage_dir / "final/tokenizer_config.json").read_text())
        template = tokenizer_config.get("chat_template") or (stage_dir / "final/chat_template.jinja").read_text()
        assert template == chat_template()
        assert (stage_dir / "eval/metrics.json").exists() == evaluated
    rm_manifest = json.loads((run / "stages/02-rm/manifest.json").read_text())
    assert len(rm_manifest["jobs"]) == 2  # the killed attempt is kept in the record
    assert json.loads((run / "run.json").read_text())["status"] == "done"
    assert (run / "report.md").exists()


def test_bad_launcher_template_is_one_line_error(tmp_path):
    result = _run(tmp_path, "--launcher", "sbatch {scrip}")
    assert result.returncode != 0
    assert "launcher template" in result.stderr and "Traceback" not in result.stderr

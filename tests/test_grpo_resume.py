"""Kill -9 a GRPO run mid-training, resume it, and get the uninterrupted run's result.

The killed and the resumed run are subprocesses, the uninterrupted one runs in this process;
all use the session's tiny model and one torch thread, so on CPU the resumed run must
reproduce the weights bit for bit and every non-timing metric exactly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cascade.engine.local import read_safetensors_dir
from cascade.trainers.grpo import TIMING_KEYS

STEPS = 4

WORKER = r'''
import sys, time
import torch
torch.set_num_threads(1)
from cascade.engine.local import LocalEngine
from cascade.config.recipe import GRPOStage
from cascade.trainers.grpo import train_grpo
from cascade.verifiers.base import VerifyResult

def reward(records, completions):
    time.sleep(0.2)  # a slow verifier: leaves time to kill the run between checkpoints
    return [VerifyResult(min(c.count("e"), 3) / 3, c.count("e") >= 3) for c in completions]

def run_training(model_dir, run_dir, steps):
    records = [{"id": f"p{i}", "prompt": f"Tell me about {i}.", "verifier": "toy"} for i in range(5)]
    settings = GRPOStage(name="grpo", kind="grpo", data=[{"path": "unused.jsonl"}], lr=1e-3, group_size=4,
                         batch_size=2, max_steps=steps, max_response_len=8, max_prompt_len=1024, top_p=1.0,
                         weight_decay=0.0, save_every=1, keep_checkpoints=2, seed=3, think_fraction=0.5,
                         epoch_filter=True, generation_chunks=2)
    engine = LocalEngine(str(model_dir), optim=settings.optim_config(steps), seed=0)
    engine.default_stop_ids = lambda: list(range(0, len(engine.tokenizer), 8))
    train_grpo(engine, records, settings, run_dir, reward_fn=reward, progress=False)

if __name__ == "__main__":
    run_training(sys.argv[1], sys.argv[2], int(sys.argv[3]))
'''


def run_worker(script: Path, model_dir: Path, run_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, str(script), str(model_dir), str(run_dir), str(STEPS)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def metrics_without_timing(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in TIMING_KEYS} for row in rows]


@pytest.mark.slow
def test_kill_and_resume_reproduces_the_uninterrupted_run(tiny_model_dir, tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"

    victim = run_worker(script, tiny_model_dir, interrupted)
    deadline = time.monotonic() + 300  # a liveness guard: imports alone are slow on a loaded CPU
    first_ckpt = interrupted / "checkpoints" / "step_00000001" / "COMPLETE"
    while not first_ckpt.exists():
        assert victim.poll() is None, victim.communicate()[0]
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert not (interrupted / "final").exists(), "the run finished before it was killed"
    killed_at = len((interrupted / "metrics.jsonl").read_text().splitlines())
    assert killed_at < STEPS

    # The uninterrupted run happens here, in-process (one torch thread too), while the
    # killed run's process would only have competed for the CPU.
    namespace: dict = {"__name__": "grpo_resume_worker"}
    exec(compile(WORKER, str(script), "exec"), namespace)
    namespace["run_training"](tiny_model_dir, straight, STEPS)
    resumed = run_worker(script, tiny_model_dir, interrupted)
    out, _ = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, out

    expected, got = metrics_without_timing(straight), metrics_without_timing(interrupted)
    assert [row["step"] for row in got] == list(range(1, STEPS + 1))  # no step logged twice
    assert got == expected
    a, b = read_safetensors_dir(straight / "final"), read_safetensors_dir(interrupted / "final")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)

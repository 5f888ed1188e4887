"""Smoke test of the cluster path on one GPU machine: cascade -> verl 0.9.1 -> Hugging Face.

Installs nothing. Needs a CUDA GPU and verl==0.9.1 with its vLLM already installed next to
cascade. Never run by the test suite. It:

1. checks that ``verl`` imports and is 0.9.1, and that a GPU is visible;
2. builds a tiny random Qwen3 model (``cascade.models.init_model``) and toy-world math prompts;
3. writes a one-stage GRPO recipe, exports its data with ``export_stage_data`` (verl parquet);
4. runs 2 GRPO steps of verl with our overrides, our reward hook and our epoch-filter dataset (``launch_script``'s job);
5. merges the FSDP checkpoint with verl's model merger and restores our chat template;
6. prints one PASS/FAIL line per step and exits non-zero on the first failure.

    python benchmarks/gpu_smoke_verl.py                       # work dir: a fresh temp folder
    python benchmarks/gpu_smoke_verl.py --work /tmp/smoke --timeout 900

The random model's answers are noise, so rewards are mostly 0: the smoke checks the plumbing
(data, config keys, reward hook, checkpoint merge), not learning.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cascade.cluster.launch import export_stage_data, launch_script
from cascade.config import load_recipe
from cascade.models import init_model
from cascade.toyworld.build import build_toy_world

# Small enough for any GPU: vLLM gets a slice of memory, batches are tiny, no torch.compile
# warm-up. These are smoke-only settings layered on top of what cascade emits.
SMOKE_OVERRIDES = [
    "actor_rollout_ref.rollout.gpu_memory_utilization=0.3",
    "actor_rollout_ref.rollout.enforce_eager=true",
    "actor_rollout_ref.rollout.agent.num_workers=1",
    "actor_rollout_ref.actor.use_torch_compile=false",
    "reward.num_workers=1",
    "data.dataloader_num_workers=0",
]

RECIPE = """\
name: verl-smoke
seed: 0
base_model: {model}
output_dir: {run}
stages:
  - name: math-rl
    kind: grpo
    data: {{path: {data}}}
    reward: math
    think_fraction: 0.5
    group_size: 4
    batch_size: 4
    max_steps: 2
    epoch_filter: true              # our dataset class and replay buffer on real TransferQueue data
    max_prompt_len: 256
    max_response_len: 64
    temperature: 1.0
"""


def step(label: str, ok: bool, detail: str = "") -> None:
    print(f"{'PASS' if ok else 'FAIL'}  {label}" + (f"  ({detail})" if detail else ""), flush=True)
    if not ok:
        sys.exit(1)


def run(cmd: list[str] | str, timeout: float, log: Path) -> tuple[bool, float]:
    start = time.perf_counter()
    with open(log, "w") as fh:
        try:
            proc = subprocess.run(cmd, shell=isinstance(cmd, str), stdout=fh, stderr=subprocess.STDOUT,
                                  timeout=timeout, executable="/bin/bash" if isinstance(cmd, str) else None)
            ok = proc.returncode == 0
        except subprocess.TimeoutExpired:
            ok = False
    return ok, time.perf_counter() - start


def tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", help="work folder (default: a new temp folder)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds for the verl job")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="cascade-verl-smoke-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"work folder: {work}")

    try:
        import verl  # noqa: F401  (only checking that the optional extra is there)

        version = getattr(verl, "__version__", "unknown")
        step("import verl", version == "0.9.1", f"version {version}")
    except ImportError as exc:
        step("import verl", False, str(exc))
    import torch

    step("GPU visible", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")

    model = init_model(work / "base", size="tiny", seed=0, force=True)
    prompts = build_toy_world(seed=0).rl["math"][:32]
    data = work / "math_prompts.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in prompts))
    recipe_file = work / "recipe.yaml"
    recipe_file.write_text(RECIPE.format(model=model, run=work / "run", data=data))
    recipe = load_recipe(recipe_file)
    step("tiny model and recipe", True, f"{len(prompts)} prompts")

    stage_dir = work / "run" / "stages" / "01-math-rl"
    files = export_stage_data(recipe, "math-rl", stage_dir / "verl-data")
    step("export verl parquet", all(Path(f).is_file() for f in files), ", ".join(files))

    script = launch_script(recipe, "math-rl", nnodes=1, n_gpus_per_node=1, recipe_ref=str(recipe_file))
    job_line = next(i for i, line in enumerate(script.splitlines()) if line.startswith("python -m verl.trainer.main_ppo"))
    lines = script.splitlines()
    # Append the smoke-only overrides to the (single) verl job of the generated script.
    end = next(i for i in range(job_line, len(lines)) if not lines[i].endswith("\\"))
    lines[end] += " \\\n    " + " \\\n    ".join(SMOKE_OVERRIDES)
    script_path = work / "launch.sh"
    script_path.write_text("\n".join(lines) + "\n")
    ok, seconds = run(f"cd {work} && bash {script_path}", args.timeout, work / "launch.log")
    if not ok:
        print(tail(work / "launch.log"))
    step("verl: 2 GRPO steps, merge, template restore", ok, f"{seconds:.0f} s, log {work / 'launch.log'}")

    ckpt = stage_dir / "verl"
    latest = (ckpt / "latest_checkpointed_iteration.txt").read_text().strip()
    step("verl checkpoint at step 2", latest == "2", f"latest {latest}")
    final = stage_dir / "final"
    step("merged Hugging Face checkpoint", (final / "config.json").is_file(), str(final))

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cascade.chat import chat_template

    tokenizer = AutoTokenizer.from_pretrained(final)
    step("canonical chat template restored", tokenizer.chat_template == chat_template())
    AutoModelForCausalLM.from_pretrained(final)
    step("merged model loads", True)
    rewards = [line for line in (work / "launch.log").read_text(errors="replace").splitlines() if "reward" in line.lower()]
    print("reward lines from the verl log (last 3):", *rewards[-3:], sep="\n  ")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Seconds per GRPO step: cascade's trainer vs TRL's ``GRPOTrainer``, same work, one process.

Both sides get the same tiny Qwen3 model (randomly initialised, so every completion runs to
the length limit and both generate exactly the same number of tokens), the same prompts
(rendered by the same chat template), batch of B prompts x G rollouts, max completion
length, temperature 1, top-p 1, and the same cheap reward function. Loss settings match:
token-level loss (ours ``token_mean``, TRL ``loss_type="dapo"``), no KL (beta 0), no
entropy term, group-std advantages, one optimizer update per rollout batch
(TRL: ``num_iterations=1``, ``steps_per_generation=1``), AdamW, constant LR.
The first step of each side is a warm-up and is not counted. Wall time and process CPU
time are both reported: on a shared machine the CPU time is the steadier comparison.

Where our time goes, and why it is less than TRL's (both sides run the same HF Qwen3 weights):
generation runs through ``cascade.engine.lean_qwen3`` (fused q/k/v and gate/up matmuls, one
preallocated KV cache written in place, no per-call mask or cache objects) and samples by
inverse CDF (one random number per row); the G rollouts of a group share one prompt prefill;
the training pass runs each group's prompt once and only the completions G times (the
gradients are the same, tested in tests/test_lean_qwen3.py); AdamW is the fused kernel. The
line per side splits each step into generate, reward and train(+other).

Needs the benchmark-only extra ``trl==1.16.0`` (it does not touch torch).
Run: .venv/bin/python benchmarks/grpo_vs_trl.py [--rounds 3] [--steps 3] [--prompts 4] [--group 8] [--length 32]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from cascade.chat.template import render
from cascade.engine.local import LocalEngine
from cascade.models import init_model
from cascade.config.recipe import GRPOStage
from cascade.trainers.grpo import train_grpo
from cascade.verifiers.base import VerifyResult

LR = 1e-5


def prompts(n: int) -> list[str]:
    return [f"Write a short note about topic number {i}." for i in range(n)]


def e_count(text: str) -> float:
    """A cheap reward that varies between rollouts, so both sides train on real advantages."""
    return (text.count("e") % 4) / 3


def ours(model_dir: Path, work: Path, args: argparse.Namespace) -> list[dict]:
    records = [{"id": f"p{i}", "prompt": p, "verifier": "toy"} for i, p in enumerate(prompts(args.prompts))]
    steps = args.steps + 1
    settings = GRPOStage(
        name="bench", kind="grpo", data=[{"path": "unused.jsonl"}],  # the records are passed directly
        lr=LR, group_size=args.group, batch_size=args.prompts, max_steps=steps, max_response_len=args.length,
        max_prompt_len=1024, top_p=1.0, weight_decay=0.0, seed=0,
        think_fraction=0.0, loss_agg="token_mean", kl_coef=0.0,
        generation_chunks=1,  # the reward is instant: nothing to overlap, keep one generation batch
    )
    engine = LocalEngine(str(model_dir), optim=settings.optim_config(steps), seed=0)
    stamps: list[float] = []  # process CPU time at the end of every update
    real_step = engine.optim_step

    def stamped_step():
        out = real_step()
        stamps.append(time.process_time())
        return out

    engine.optim_step = stamped_step

    def reward(recs, completions):
        return [VerifyResult(e_count(c), e_count(c) == 1.0) for c in completions]

    train_grpo(engine, records, settings, work / "ours", reward_fn=reward, progress=False)
    rows = [json.loads(line) for line in (work / "ours" / "metrics.jsonl").read_text().splitlines()]
    cpu = [b - a for a, b in zip(stamps, stamps[1:])]  # steps 2..N: update end to update end
    return [
        {"step_s": r["time_step_s"], "cpu_s": c, "generate_s": r["time_generate_s"], "reward_s": r["time_reward_s"],
         "train_s": r["time_train_s"]}
        for r, c in zip(rows[1:], cpu)
    ]


def trl(model_dir: Path, work: Path, args: argparse.Namespace) -> list[dict]:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    steps = args.steps + 1
    texts = [render([{"role": "user", "content": p}], enable_thinking=False) for p in prompts(args.prompts)]
    data = Dataset.from_dict({"prompt": texts * steps})

    def reward(completions, **kwargs):
        return [e_count(c) for c in completions]

    config = GRPOConfig(
        output_dir=str(work / "trl"), use_cpu=True, bf16=False, report_to="none", save_strategy="no",
        logging_steps=1, max_steps=steps, learning_rate=LR, lr_scheduler_type="constant", warmup_steps=0,
        adam_beta1=0.9, adam_beta2=0.95, weight_decay=0.0, max_grad_norm=1.0,
        per_device_train_batch_size=args.prompts * args.group, gradient_accumulation_steps=1,
        steps_per_generation=1, num_iterations=1, num_generations=args.group,
        max_completion_length=args.length, temperature=1.0, top_p=1.0, top_k=0,
        beta=0.0, loss_type="dapo", scale_rewards="group", shuffle_dataset=False, seed=0,
        dataloader_num_workers=0, disable_tqdm=True, gradient_checkpointing=False,
    )
    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=config, train_dataset=data, processing_class=tokenizer)
    timings: list[dict] = []
    phase = {"generate_s": 0.0, "reward_s": 0.0, "tokens": 0}

    def timed(name, fn):
        def wrapper(*a, **kw):
            start = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                phase[name] += time.perf_counter() - start
        return wrapper

    trainer._generate = timed("generate_s", trainer._generate)
    trainer._calculate_rewards = timed("reward_s", trainer._calculate_rewards)

    class StepTimer(TrainerCallback):
        def on_step_begin(self, *a, **kw):
            phase.update(generate_s=0.0, reward_s=0.0)
            self.start, self.cpu = time.perf_counter(), time.process_time()

        def on_step_end(self, *a, **kw):
            total = time.perf_counter() - self.start
            timings.append({"step_s": total, "cpu_s": time.process_time() - self.cpu,
                            "generate_s": phase["generate_s"], "reward_s": phase["reward_s"],
                            "train_s": total - phase["generate_s"] - phase["reward_s"]})

    trainer.add_callback(StepTimer())
    trainer.train()
    return timings[1:]


def summary(name: str, rows: list[dict]) -> dict[str, float]:
    mean = {k: statistics.mean(r[k] for r in rows) for k in ("step_s", "cpu_s", "generate_s", "reward_s", "train_s")}
    mean["median_step_s"] = statistics.median(r["step_s"] for r in rows)
    print(
        f"{name:8s} {mean['step_s']:7.2f} s/step wall (median {mean['median_step_s']:.2f}), "
        f"{mean['cpu_s']:6.2f} CPU-s/step   generate {mean['generate_s']:6.2f}  "
        f"reward {mean['reward_s']:5.2f}  train+other {mean['train_s']:6.2f}   ({len(rows)} steps)",
        flush=True,
    )
    return mean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3, help="measured steps per round (one warm-up step more)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds, each running cascade then TRL; alternating spreads a busy spell "
                             "on a shared machine over both sides")
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--length", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="grpo-vs-trl-") as tmp:
        work = Path(tmp)
        model_dir = init_model(work / "model", size="tiny", seed=0)
        print(f"batch {args.prompts} prompts x G={args.group}, {args.length} new tokens, {args.threads} threads, "
              f"{args.rounds} rounds x {args.steps} measured steps")
        ours_rows: list[dict] = []
        trl_rows: list[dict] = []
        for round_index in range(args.rounds):
            round_dir = work / f"round{round_index}"
            a = ours(model_dir, round_dir, args)
            b = trl(model_dir, round_dir, args)
            ratio = statistics.mean(r["step_s"] for r in b) / statistics.mean(r["step_s"] for r in a)
            print(f"round {round_index + 1}: cascade {statistics.mean(r['step_s'] for r in a):.2f} s/step, "
                  f"trl {statistics.mean(r['step_s'] for r in b):.2f} s/step, speed-up {ratio:.2f}x", flush=True)
            ours_rows += a
            trl_rows += b
        a = summary("cascade", ours_rows)
        b = summary("trl", trl_rows)
        print(f"speed-up, wall (trl / cascade mean s per step): {b['step_s'] / a['step_s']:.2f}x")
        print(f"speed-up, wall (trl / cascade median s per step): {b['median_step_s'] / a['median_step_s']:.2f}x")
        # CPU seconds are far less sensitive to other processes on a shared machine than wall time.
        print(f"speed-up, CPU  (trl / cascade CPU-s per step): {b['cpu_s'] / a['cpu_s']:.2f}x")


if __name__ == "__main__":
    main()

"""Generation throughput: LocalEngine's KV-cache loop vs plain ``model.generate``.

Both sample the same batch of chat prompts (temperature 1, no stop tokens so every row
produces exactly ``--new-tokens`` tokens) on the same model and device; the script prints
tokens/s for each and the ratio. Without ``--model`` it builds a random model of
``--size`` in a temp directory.

    python benchmarks/generate_throughput.py                      # tiny model, CPU
    python benchmarks/generate_throughput.py --size small --prompts 32 --new-tokens 64
    python benchmarks/generate_throughput.py --model runs/sft/final --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from cascade.chat.template import render
from cascade.engine.base import SamplingParams
from cascade.engine.local import LocalEngine

QUESTIONS = [
    "What is the capital of France?",
    "Write a haiku about autumn leaves.",
    "Explain recursion to a child.",
    "Add 17 and 25, then double it.",
    "List three prime numbers above 50.",
    "Summarise the plot of a detective story in one line.",
    "Why is the sky blue?",
    "Translate 'good morning' into Spanish.",
]


def build_prompts(count: int) -> list[str]:
    return [
        render([{"role": "user", "content": f"{QUESTIONS[i % len(QUESTIONS)]} (#{i})"}], enable_thinking=i % 2 == 0)
        for i in range(count)
    ]


def time_engine(engine: LocalEngine, prompts: list[str], new_tokens: int, seed: int) -> tuple[float, int]:
    sampling = SamplingParams(max_new_tokens=new_tokens, temperature=1.0, stop_token_ids=(-1,), seed=seed)
    with Stopwatch(engine.device) as watch:
        gens = engine.generate(prompts, sampling)
    return watch.seconds, sum(len(g.token_ids) for g in gens)


def time_hf(engine: LocalEngine, prompts: list[str], new_tokens: int, seed: int) -> tuple[float, int]:
    tokenizer = engine.tokenizer
    tokenizer.padding_side = "left"
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(engine.device)
    torch.manual_seed(seed)
    with Stopwatch(engine.device) as watch, torch.inference_mode():
        out = engine.model.generate(
            **enc, do_sample=True, temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=new_tokens,
            min_new_tokens=new_tokens, eos_token_id=None, pad_token_id=tokenizer.pad_token_id,
        )
    return watch.seconds, (out.shape[1] - enc["input_ids"].shape[1]) * out.shape[0]


class Stopwatch:
    """Wall seconds on a GPU; on CPU, this process's CPU seconds, which other processes
    sharing the cores do not inflate (meaningful with --threads 1)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.clock = time.perf_counter if device.type == "cuda" else time.process_time
        self.seconds = 0.0

    def __enter__(self) -> "Stopwatch":
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.started = self.clock()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.seconds = self.clock() - self.started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a Hugging Face model directory (default: build a random one)")
    parser.add_argument("--size", default="tiny", help="size of the random model to build (tiny, small)")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per side; the median is reported")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model
        if model_dir is None:
            from cascade.models import init_model

            model_dir = str(init_model(Path(tmp) / "model", size=args.size, seed=0))
        engine = LocalEngine(model_dir, device=args.device)
        engine.model.eval()
        prompts = build_prompts(args.prompts)
        time_engine(engine, prompts, 4, seed=0)  # warm-up: kernels, allocator, tokenizer caches
        time_hf(engine, prompts, 4, seed=0)
        sides = {"LocalEngine": time_engine, "HF generate": time_hf}
        timings: dict[str, list[tuple[float, int]]] = {name: [] for name in sides}
        for repeat in range(args.repeats):  # interleaved, so load from other processes hits both
            for name, run in sides.items():
                timings[name].append(run(engine, prompts, args.new_tokens, seed=repeat))
        results = {}
        for name, runs in timings.items():
            seconds = statistics.median(t for t, _ in runs)
            tokens = runs[0][1]
            results[name] = tokens / seconds
            print(f"{name:12s} {tokens:6d} tokens  {seconds:7.3f} s (median of {len(runs)})  "
                  f"{tokens / seconds:10.1f} tokens/s")
        params = sum(p.numel() for p in engine.model.parameters())
        print(f"model {model_dir} ({params / 1e6:.2f}M params), device {engine.device}, dtype {engine.dtype}, "
              f"{args.prompts} prompts x {args.new_tokens} new tokens, threads {torch.get_num_threads()}")
        print(f"ratio LocalEngine / HF generate: {results['LocalEngine'] / results['HF generate']:.2f}x")


if __name__ == "__main__":
    main()

"""Several seeds of the tiny cascade on one CPU: one process on every core, or one per core?

The baseline is one process with torch's default threads (one per core). Against it, one
process per core, each with one thread, all at once. Every process loads the same random
tiny model and times the two kinds of work the tiny cascade spends its minutes on:

- train: SFT-sized steps (forward, backward, AdamW) on batches of 8 x 160 tokens;
- sample: LocalEngine decoding 32 chat prompts x 48 new tokens at temperature 1, top-p 0.95.

Wall seconds are the median of --repeats timed runs after a warm-up. Throughput is work done
per second by all processes together, as a ratio to the baseline's. The tiny model's matmuls
are too small to split well across cores, so one process per core gets more done;
`benchmarks/tiny_cascade_seeds.py --jobs` rests on this.

    python benchmarks/cpu_threads.py
    python benchmarks/cpu_threads.py --size small --steps 10
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _median_seconds(work, repeats: int) -> float:
    work()  # warm-up: kernels, allocator, tokenizer caches
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def worker(threads: int, size: str, model_dir: str, repeats: int, steps: int) -> dict[str, float]:
    import torch

    from cascade.chat.template import render
    from cascade.engine.base import SamplingParams
    from cascade.engine.local import LocalEngine

    if threads:
        torch.set_num_threads(threads)
    engine = LocalEngine(model_dir, device="cpu")
    model = engine.model
    vocab = model.config.vocab_size
    gen = torch.Generator().manual_seed(0)
    batch = torch.randint(0, vocab, (8, 160), generator=gen)
    optim = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def train() -> None:
        model.train()
        for _ in range(steps):
            loss = model(input_ids=batch, labels=batch).loss
            loss.backward()
            optim.step()
            optim.zero_grad(set_to_none=True)

    prompts = [render([{"role": "user", "content": f"Tell me about the cat, please (#{i})."}],
                      enable_thinking=i % 2 == 0) for i in range(32)]
    sampling = SamplingParams(max_new_tokens=48, temperature=1.0, top_p=0.95, stop_token_ids=(-1,), seed=0)

    def sample() -> None:
        model.eval()
        engine.generate(prompts, sampling)

    return {"threads": torch.get_num_threads(), "train_s": _median_seconds(train, repeats),
            "sample_s": _median_seconds(sample, repeats)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="tiny", help="size of the random model (tiny, small)")
    parser.add_argument("--steps", type=int, default=20, help="training steps per timed run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per kind of work; the median is reported")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1,
                        help="one-thread processes run at once (default: one per core)")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.size, args.model_dir, args.repeats, args.steps)))
        return 0

    from cascade.models import init_model

    def start(threads: int, model_dir: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, __file__, "--worker", str(threads), "--size", args.size,
                                 "--model-dir", model_dir, "--repeats", str(args.repeats), "--steps", str(args.steps)],
                                stdout=subprocess.PIPE, text=True)

    def result(proc: subprocess.Popen) -> dict[str, float]:
        out, _ = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"a worker failed with exit code {proc.returncode}")
        return json.loads(out.strip().splitlines()[-1])

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = str(init_model(Path(tmp) / "model", size=args.size, seed=0))
        base = result(start(0, model_dir))  # 0: torch's default threads
        each = [result(p) for p in [start(1, model_dir) for _ in range(args.processes)]]
    print(f"model: random {args.size}; train: {args.steps} steps of 8 x 160 tokens; sample: 32 prompts x 48 tokens; "
          f"median of {args.repeats}; {os.cpu_count()} cores")
    print(f"baseline, 1 process x {base['threads']} threads: train {base['train_s']:.2f} s, sample {base['sample_s']:.2f} s")
    for kind in ("train", "sample"):
        seconds = [r[f"{kind}_s"] for r in each]
        speed = sum(base[f"{kind}_s"] / t for t in seconds)
        print(f"{args.processes} processes x 1 thread at once: {kind} " + ", ".join(f"{t:.2f}" for t in seconds)
              + f" s each; throughput {speed:.2f}x the baseline")
    return 0


if __name__ == "__main__":
    sys.exit(main())

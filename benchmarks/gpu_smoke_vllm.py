"""GPU smoke check of the vllm eval backend (never run by the tests; needs vLLM and CUDA).

    pip install 'cascade-rl[vllm]'
    python benchmarks/gpu_smoke_vllm.py                       # random tiny-ish model, built here
    python benchmarks/gpu_smoke_vllm.py --model nvidia/Nemotron-Cascade-8B --yarn-factor 2

Checks, each printed as PASS/FAIL (exit code 1 on any FAIL):
1. the backend loads (with the YaRN overrides when --yarn-factor > 1) and returns one
   completion per request, in order, with token counts and finish reasons;
2. a per-request seed is reproducible at temperature 0.6: the same request twice gives the
   same text, even in a different batch;
3. `evaluate` with the vllm backend writes every sample, and re-running it generates nothing;
and reports (no pass/fail, bf16 kernels differ) how many greedy completions match the local
backend on the same GPU, plus samples/s and tokens/s of vLLM and of the local backend.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from cascade.eval.backends.base import GenRequest

FAILURES: list[str] = []


def check(name: str, ok: bool, detail: str = "") -> None:
    print(f"{'PASS' if ok else 'FAIL'}  {name}{': ' + detail if detail else ''}", flush=True)
    if not ok:
        FAILURES.append(name)


def requests(count: int, max_tokens: int, temperature: float, seed: int = 0) -> list[GenRequest]:
    return [GenRequest(messages=[{"role": "user", "content": f"What is {i} times {i + 3}? Answer in \\boxed{{}}."}],
                       enable_thinking=i % 2 == 0, max_tokens=max_tokens, temperature=temperature, seed=seed + i)
            for i in range(count)]


def timed(backend, reqs):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    outs = backend.generate(reqs)
    seconds = time.perf_counter() - started
    tokens = sum(o.tokens for o in outs)
    print(f"      {backend.name:6s} {len(outs)} samples in {seconds:.2f} s: {len(outs) / seconds:.1f} samples/s, "
          f"{tokens / seconds:.0f} tokens/s")
    return outs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model directory or hub id (default: build a random 'small' model)")
    parser.add_argument("--yarn-factor", type=float, default=1.0)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.5,
                        help="leave room for the local backend's copy of the model")
    args = parser.parse_args()
    try:
        import torch
        import vllm  # noqa: F401
    except ImportError as exc:
        print(f"skipped: {exc.name} is not installed (pip install 'cascade-rl[vllm]')")
        return 2
    if not torch.cuda.is_available():
        print("skipped: no CUDA device")
        return 2

    from cascade.eval.backends.local import LocalBackend
    from cascade.eval.backends.vllm_offline import VLLMBackend
    from cascade.eval.benchmarks.base import Benchmark
    from cascade.eval.runner import EvalSettings, evaluate

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            from cascade.models import init_model

            model = str(init_model(Path(tmp) / "model", size="small", seed=0))
        vllm_backend = VLLMBackend(model, yarn_factor=args.yarn_factor,
                                   max_model_len=None if args.yarn_factor != 1.0 else 4096,
                                   gpu_memory_utilization=args.gpu_memory_utilization)
        check("vllm backend loads", True, f"{model}, yarn factor {args.yarn_factor}")

        greedy = requests(args.prompts, args.max_tokens, temperature=0.0)
        outs = timed(vllm_backend, greedy)
        check("one output per request", len(outs) == len(greedy))
        check("token counts and finish reasons",
              all(o.tokens >= 1 and o.finish_reason in ("stop", "length") for o in outs))
        check("stop markers stripped", not any(o.text.endswith("<|im_end|>") for o in outs))

        sampled = requests(8, args.max_tokens, temperature=0.6)
        first = vllm_backend.generate(sampled)
        second = vllm_backend.generate(list(reversed(sampled)))[::-1]
        check("per-request seeds reproduce at temperature 0.6", [o.text for o in first] == [o.text for o in second])

        records = [{"id": f"q{i}", "messages": r.messages, "verifier": "math", "ground_truth": str(i * (i + 3)),
                    "meta": {}} for i, r in enumerate(greedy[:16])]
        bench = Benchmark("smoke_math", "math", lambda _p: records, "", k=4, max_tokens=args.max_tokens)
        out_dir = Path(tmp) / "eval"
        settings = EvalSettings(max_tokens=args.max_tokens, workers=2)
        evaluate(vllm_backend, [(bench, 4)], out_dir, settings=settings, records_for=lambda _b: records, progress=False)
        lines = (out_dir / "smoke_math.think.jsonl").read_text().splitlines()
        check("evaluate writes k samples per prompt", len(lines) == 64, f"{len(lines)} lines")
        calls: list[int] = []

        class Counting:
            name = "counting"

            def generate(self, reqs):  # type: ignore[no-untyped-def]
                calls.append(len(reqs))
                return vllm_backend.generate(reqs)

            def close(self) -> None:
                pass

        evaluate(Counting(), [(bench, 4)], out_dir, settings=settings, records_for=lambda _b: records, progress=False)
        check("re-running generates nothing", sum(calls) == 0, f"{sum(calls)} requests")

        local = LocalBackend(model, device="cuda")
        local_outs = timed(local, greedy)
        same = sum(a.text == b.text for a, b in zip(outs, local_outs))
        print(f"INFO  greedy completions identical to the local backend: {same}/{len(outs)} "
              "(bf16 kernels differ, so a few early divergences are expected)")
    print("all checks passed" if not FAILURES else f"{len(FAILURES)} check(s) failed: {', '.join(FAILURES)}")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())

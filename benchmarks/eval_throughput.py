"""Eval throughput: the local backend (batched KV-cache generation) against one prompt at a
time through Hugging Face ``model.generate``, on the same work.

Both decode the same chat-rendered prompts greedily (temperature 0) with the same stop
tokens and budget; the script prints samples/s and tokens/s for each, the speed-up, and how
many completions came out identical (greedy decoding should agree). Target: >= 5x from
batching. Without ``--model`` it builds a random model of ``--size`` in a temp directory
(its greedy text never hits a stop token, so both sides do exactly prompts x budget tokens).

    python benchmarks/eval_throughput.py                         # tiny model, CPU, 64 prompts
    python benchmarks/eval_throughput.py --prompts 128 --max-tokens 64 --threads 2
    python benchmarks/eval_throughput.py --model runs/sft/final --device cuda
    python benchmarks/eval_throughput.py --served 16     # also: openai backend vs `cascade serve`

``--served N`` adds a third line: the openai backend with N requests in flight against a
`cascade serve` child on the same model (its dynamic batching), and how many of its
completions equal the local backend's.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from cascade.eval.backends.base import GenRequest
from cascade.eval.backends.local import LocalBackend

QUESTIONS = [
    "What is {a} + {b}? Put the final answer in \\boxed{{}}.",
    "A box holds {a} apples and {b} pears. How many fruits are in it?",
    "Write one sentence about the number {a}, in all capital letters.",
    "List {b} words that rhyme with 'cat'.",
]


def build_requests(count: int, max_tokens: int) -> list[GenRequest]:
    return [GenRequest(messages=[{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)].format(a=i, b=3 * i + 1)}],
                       enable_thinking=i % 2 == 0, max_tokens=max_tokens, temperature=0.0, seed=0)
            for i in range(count)]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_backend(backend: LocalBackend, requests: list[GenRequest]) -> tuple[float, list[str], int]:
    sync(backend.engine.device)
    started = time.perf_counter()
    outs = backend.generate(requests)
    sync(backend.engine.device)
    return time.perf_counter() - started, [o.text for o in outs], sum(o.tokens for o in outs)


@torch.inference_mode()
def run_one_at_a_time(backend: LocalBackend, requests: list[GenRequest]) -> tuple[float, list[str], int]:
    engine = backend.engine
    stop_ids = engine.default_stop_ids()
    texts, tokens = [], 0
    sync(engine.device)
    started = time.perf_counter()
    for req in requests:
        ids = engine.tokenizer(backend.render(req), add_special_tokens=False, return_tensors="pt")["input_ids"]
        out = engine.model.generate(ids.to(engine.device), attention_mask=torch.ones_like(ids).to(engine.device),
                                    do_sample=False, max_new_tokens=req.max_tokens, eos_token_id=stop_ids,
                                    pad_token_id=engine.tokenizer.pad_token_id)
        new = out[0, ids.shape[1]:].tolist()
        tokens += len(new)
        text = engine.tokenizer.decode(new, skip_special_tokens=False)
        for stop in ("<|im_end|>", "<|endoftext|>"):
            text = text.removesuffix(stop)
        texts.append(text)
    sync(engine.device)
    return time.perf_counter() - started, texts, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a Hugging Face model directory (default: build a random one)")
    parser.add_argument("--size", default="tiny", help="size of the random model to build (tiny, small)")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64, help="local backend rows per decode batch")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--served", type=int, default=0, metavar="N",
                        help="also time the openai backend with N requests in flight against `cascade serve`")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model
        if model_dir is None:
            from cascade.models import init_model

            model_dir = str(init_model(Path(tmp) / "model", size=args.size, seed=0))
        backend = LocalBackend(model_dir, device=args.device, batch_size=args.batch_size)
        requests = build_requests(args.prompts, args.max_tokens)
        warm = build_requests(2, 4)  # kernels, allocator, tokenizer caches
        run_backend(backend, warm)
        run_one_at_a_time(backend, warm)

        results = {}
        for name, run in (("local backend (batched)", run_backend), ("one at a time (generate)", run_one_at_a_time)):
            seconds, texts, tokens = run(backend, requests)
            results[name] = (seconds, texts, tokens)
            print(f"{name:26s} {len(texts):5d} samples {tokens:7d} tokens {seconds:8.2f} s  "
                  f"{len(texts) / seconds:8.2f} samples/s {tokens / seconds:9.1f} tokens/s")
        (fast_s, fast_texts, fast_tokens), (slow_s, slow_texts, slow_tokens) = results.values()
        same = sum(a == b for a, b in zip(fast_texts, slow_texts))
        engine = backend.engine
        params = sum(p.numel() for p in engine.model.parameters())
        print(f"model {model_dir} ({params / 1e6:.2f}M params), device {engine.device}, dtype {engine.dtype}, "
              f"{args.prompts} prompts x up to {args.max_tokens} tokens, threads {torch.get_num_threads()}")
        print(f"identical greedy completions: {same}/{len(fast_texts)}")
        print(f"speed-up from batching: {slow_s / fast_s:.1f}x samples/s, "
              f"{(fast_tokens / fast_s) / (slow_tokens / slow_s):.1f}x tokens/s (target >= 5x)")
        if args.served:
            time_served(model_dir, args, requests, fast_texts)


def time_served(model_dir: str, args: argparse.Namespace, requests: list[GenRequest], local_texts: list[str]) -> None:
    from cascade.eval.backends.openai_http import OpenAIBackend
    from cascade.serve.process import ServerProcess

    extra = ["--device", args.device, "--max-batch", str(args.batch_size)]
    env = {"OMP_NUM_THREADS": str(args.threads)} if args.threads else None
    with ServerProcess(model_dir, name="bench", extra_args=extra, env=env) as server:
        backend = OpenAIBackend("bench", base_url=server.base_url, concurrency=args.served, max_retries=0)
        try:
            backend.generate(requests[:2])  # warm-up
            started = time.perf_counter()
            outs = backend.generate(requests)
            seconds = time.perf_counter() - started
        finally:
            backend.close()
    tokens = sum(o.tokens for o in outs)
    same = sum(o.text == t for o, t in zip(outs, local_texts))
    print(f"{'openai -> cascade serve':26s} {len(outs):5d} samples {tokens:7d} tokens {seconds:8.2f} s  "
          f"{len(outs) / seconds:8.2f} samples/s {tokens / seconds:9.1f} tokens/s  "
          f"({args.served} in flight; identical to local: {same}/{len(outs)})")


if __name__ == "__main__":
    main()

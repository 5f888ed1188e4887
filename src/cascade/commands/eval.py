"""`cascade eval`: benchmarks with the model card's protocol."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from cascade.commands.paths import check_output_dir
from cascade.errors import CascadeError

DESCRIPTION = """\
Evaluate a model on benchmarks, k samples per prompt, with the model card's protocol
(temperature 0.6, top-p 0.95, per-benchmark k, budget and mode; IFEval in instruct mode).

Writes one JSONL line per (prompt, sample), metrics.json (avg@k, pass@k, majority@k,
standard error across seeds, per category; the run record: command, model, backend,
sampling, per-benchmark k and budget, data files with SHA-256, package version, date) and
summary.md beside the published Nemotron-Cascade-8B numbers. The card's numbers appear
only beside results scored on its protocol and data; every other result says why it is
not comparable (public tests only, another window, a subset, another budget...), and a
benchmark with no honest number (verifier failed on most samples, no judge) is "not
scored". Prompts longer than the context (with the budget) are skipped and counted.
Re-running the same command skips finished samples; a killed run loses nothing it wrote;
a run of some benchmarks into an existing --out keeps the others' results. Progress bars
show samples done, tokens/s and the ETA.

LiveCodeBench is graded as its official runner grades it (its import block, output
comparison and 6 s per test; private tests when the data has them). ArenaHard needs a
judge: --judge-base-url and --judge-model (any OpenAI-compatible server); each answer is
judged against the baseline in both orders and the win rate is reported with its
bootstrap interval, as arena-hard-auto does.

Backends: local (this machine, CPU or one GPU, batched), vllm (offline, GPU, optional
extra), openai (any OpenAI-compatible server, e.g. `cascade serve`). Temperature 0 is
greedy decoding; then the local backend and the openai backend against `cascade serve` on
the same checkpoint give the same completions, sample by sample.
"""

EPILOG = """\
examples:
  # a tiny model on CPU, small slices, short budget
  cascade eval --model runs/tiny/final --benchmarks gsm8k:2,ifeval:1 --limit 20 \\
      --max-tokens 256 --data-dir data --out evals/tiny

  # the paper's protocol on a GPU with vLLM (YaRN x2 for the 64K budget)
  cascade eval --model nvidia/Nemotron-Cascade-8B --backend vllm --yarn-factor 2 \\
      --benchmarks aime24:64,aime25:64,gpqa_diamond:8,ifeval:8,lcb_v6:8

  # the toy world's eval sets, greedy, in both modes
  cascade eval --model runs/tiny/final --benchmarks toy_math,toy_if --mode both \\
      --temperature 0 --max-tokens 128 --data-dir data

  # ArenaHard, judged by a model behind an OpenAI-compatible server
  cascade eval --model runs/tiny/final --benchmarks arena_hard --data-dir data \\
      --judge-base-url http://127.0.0.1:8001/v1 --judge-model judge --judge-api-key-env JUDGE_KEY

  # what is registered, with each benchmark's protocol and expected data layout
  cascade eval --list

  # any OpenAI-compatible server (vLLM serve, SGLang, cascade serve, a hosted API)
  cascade eval --model my-model --backend openai --base-url http://127.0.0.1:8000/v1 \\
      --api-key-env OPENAI_API_KEY --concurrency 32 --benchmarks aime25:8

benchmarks: aime24 aime25 math500 gsm8k gpqa_diamond mmlu mmlu_pro ifeval ifbench
  lcb_v5 lcb_v6 humaneval mbpp bfcl_v3 arena_hard swe_bench_verified
  toy_chat toy_if toy_math toy_code toy_swe
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a model on benchmarks (avg@k, pass@k, maj@k)",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--list", action="store_true",
                   help="print the registered benchmarks with their protocol (k, budget, mode, metric, data layout)")
    p.add_argument("--model", help="a checkpoint directory or hub id (or the server's model name)")
    p.add_argument("--benchmarks", metavar="NAME[:K],...",
                   help="comma-separated benchmarks, each with an optional sample count k")
    p.add_argument("--backend", choices=["local", "vllm", "openai"], default="local")
    p.add_argument("--base-url", help="openai backend: the server's /v1 URL")
    p.add_argument("--api-key-env", metavar="VAR", help="openai backend: environment variable holding the key")
    p.add_argument("--concurrency", type=int, default=8, help="openai backend: requests in flight (default 8)")
    p.add_argument("--request-timeout", type=float, default=600.0,
                   help="openai backend: seconds per request before it is retried (default 600)")
    p.add_argument("--max-retries", type=int, default=5,
                   help="openai backend: retries on 429, 5xx, timeouts, with exponential backoff (default 5)")
    p.add_argument("--data-dir", help="benchmark files, each at its benchmark's default path, e.g. aime25/test.jsonl (default $CASCADE_DATA_DIR or ./data)")
    p.add_argument("--out", default="evals/latest", help="output directory (default evals/latest)")
    p.add_argument("--temperature", type=float, default=0.6, help="0 is greedy decoding (default 0.6)")
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--max-tokens", type=int, help="generation budget (default: each benchmark's protocol budget)")
    p.add_argument("--mode", choices=["think", "no_think", "both", "default"], default="default",
                   help="thinking or instruct mode (default: each benchmark's protocol mode)")
    p.add_argument("--limit", type=int, help="evaluate only the first N prompts of each benchmark")
    p.add_argument("--seed", type=int, default=0, help="sample s uses seed + s (default 0)")
    p.add_argument("--batch-size", type=int, default=64,
                   help="requests per generation batch, and per write to disk (default 64)")
    p.add_argument("--yarn-factor", type=float, default=1.0,
                   help="vllm backend: YaRN rope scaling factor (the paper uses 2 for 64K budgets)")
    p.add_argument("--device", default="auto", help="local backend: cpu, cuda or auto")
    p.add_argument("--dtype", default="auto", help="local backend: auto (bf16 on GPU, fp32 on CPU), float32, bfloat16")
    p.add_argument("--workers", type=int, help="verifier worker processes (default: the CPU count)")
    p.add_argument("--judge-base-url", help="judged benchmarks (ArenaHard): the judge server's /v1 URL")
    p.add_argument("--judge-model", help="judged benchmarks: the judge's model name on that server")
    p.add_argument("--judge-api-key-env", metavar="VAR", help="environment variable holding the judge's key")
    p.add_argument("--judge-thinking-flag", action="store_true",
                   help="send chat_template_kwargs.enable_thinking=false to the judge (vLLM, SGLang, cascade serve); "
                        "hosted APIs refuse the field, so it is off by default")
    p.add_argument("--judge-max-tokens", type=int, default=4096,
                   help="the judge's budget per judgement (default 4096, arena-hard-auto's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _check_args(args: argparse.Namespace) -> None:
    def positive(name: str, value: float | None) -> None:
        if value is not None and value < 1:
            raise CascadeError(f"must be at least 1, got {value}", field=name)

    positive("--concurrency", args.concurrency)
    positive("--max-tokens", args.max_tokens)
    positive("--limit", args.limit)
    positive("--batch-size", args.batch_size)
    positive("--workers", args.workers)
    if not 0.0 <= args.temperature <= 2.0:
        raise CascadeError(f"must be between 0 and 2, got {args.temperature}", field="--temperature")
    if not 0.0 < args.top_p <= 1.0:
        raise CascadeError(f"must be in (0, 1], got {args.top_p}", field="--top-p")
    if args.max_retries < 0 or not args.request_timeout > 0 or args.request_timeout == float("inf"):
        raise CascadeError("--max-retries must be >= 0 and --request-timeout a positive number of seconds", field="--max-retries")
    positive("--judge-max-tokens", args.judge_max_tokens)
    if bool(args.judge_base_url) != bool(args.judge_model):
        raise CascadeError("a judge needs both --judge-base-url and --judge-model", field="--judge-model")
    if args.backend == "openai" and not args.base_url:
        raise CascadeError("--backend openai needs --base-url (e.g. http://127.0.0.1:8000/v1)", field="--base-url")
    check_output_dir(args.out, "--out")  # before the model loads: a bad path must not cost that


def command_line(args: argparse.Namespace) -> str:
    """The invocation with every option spelled out (defaults included), so it re-runs the same."""
    parts = ["cascade", "eval"]
    for name, value in vars(args).items():
        if name in ("func", "list", "debug", "command") or value is None or value is False or callable(value):
            continue
        flag = "--" + name.replace("_", "-")
        parts += [flag] if value is True else [flag, shlex.quote(str(value))]
    return " ".join(parts)


def list_benchmarks() -> str:
    """The registry as text: each benchmark's protocol and the data it expects."""
    from cascade.eval.benchmarks import BENCHMARKS

    lines = []
    for b in BENCHMARKS.values():
        size = f", {b.expected_prompts} prompts" if b.expected_prompts else ""
        lines.append(f"{b.name}: k={b.k}, budget {b.max_tokens} tokens, mode {b.mode}, verifier {b.verifier}{size}")
        lines.append(f"    metric: {b.metric}")
        lines.append(f"    data:   <data-dir>/{b.default_path}" + (f" ({b.layout})" if b.layout else ""))
        if b.hub_id:
            lines.append(f"    hub:    {b.hub_id}")
        lines += [f"    note:   {n}" for n in b.notes]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from cascade.eval.backends import make_backend
    from cascade.eval.benchmarks import parse_benchmark_spec
    from cascade.eval.runner import EvalSettings, JudgeSettings, evaluate

    if args.list:
        print(list_benchmarks())
        return 0
    if not args.model or not args.benchmarks:
        raise CascadeError("--model and --benchmarks are required (or --list)", field="--benchmarks")
    _check_args(args)
    specs = parse_benchmark_spec(args.benchmarks)
    options: dict[str, Any]
    if args.backend == "openai":
        options = {"base_url": args.base_url, "api_key_env": args.api_key_env, "concurrency": args.concurrency,
                   "timeout": args.request_timeout, "max_retries": args.max_retries}
    elif args.backend == "vllm":
        options = {"yarn_factor": args.yarn_factor}
    else:
        options = {"device": args.device, "dtype": args.dtype, "batch_size": args.batch_size}
    settings = EvalSettings(temperature=args.temperature, top_p=args.top_p, max_tokens=args.max_tokens,
                            mode=args.mode, limit=args.limit, seed=args.seed, batch_size=args.batch_size,
                            workers=args.workers)
    run_info = {"command": command_line(args), "argv": list(sys.argv), "backend": args.backend,
                "backend_options": options}
    if args.judge_base_url:
        judge_backend = make_backend("openai", args.judge_model, base_url=args.judge_base_url,
                                     api_key_env=args.judge_api_key_env, concurrency=args.concurrency,
                                     timeout=args.request_timeout, max_retries=args.max_retries,
                                     thinking_flag=args.judge_thinking_flag)
        settings.judge = JudgeSettings(judge_backend, args.judge_model, max_tokens=args.judge_max_tokens,
                                       base_url=args.judge_base_url)
    console = Console()

    def report(key: str, m: dict[str, Any]) -> None:
        if m["status"] != "scored":
            console.print(f"{key}: NOT SCORED: " + "; ".join(m["flags"]), markup=False, highlight=False)
        elif m["flags"]:
            console.print(f"{key}: not comparable with the card: " + "; ".join(m["flags"]), markup=False,
                          highlight=False)

    backend = make_backend(args.backend, args.model, **options)
    try:
        metrics = evaluate(backend, specs, args.out, data_dir=args.data_dir, settings=settings,
                           model_name=args.model, progress=not args.no_progress, run_info=run_info, on_result=report)
    finally:
        backend.close()
        if settings.judge is not None:
            settings.judge.backend.close()
    console.print((Path(args.out) / "summary.md").read_text(), markup=False)
    console.print(f"wrote {args.out}/metrics.json, summary.md and one JSONL per benchmark; {len(metrics)} results",
                  markup=False)
    return 0

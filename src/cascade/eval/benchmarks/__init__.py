"""The benchmark registry, with the model card's protocol (paper Appendix B, the model card).

Defaults per benchmark: k samples (avg@k), token budget and mode. Data paths are relative
to a data dir (``--data-dir`` or ``$CASCADE_DATA_DIR``); each benchmark's ``default_path``
below says where its file goes.
"""

from __future__ import annotations

from functools import partial

from cascade.errors import CascadeError
from cascade.eval.benchmarks.arena_hard import load_arena_hard
from cascade.eval.benchmarks.base import Benchmark, resolve_data_dir
from cascade.eval.benchmarks.bfcl import load_bfcl
from cascade.eval.benchmarks.code import LCB_WINDOW_SIZES, load_humaneval, load_livecodebench, load_mbpp
from cascade.eval.benchmarks.instruction import load_if
from cascade.eval.benchmarks.math import load_aime, load_gsm8k, load_math500
from cascade.eval.benchmarks.mcq import load_gpqa, load_mmlu, load_mmlu_pro
from cascade.eval.benchmarks.swe_bench import load_swe_bench
from cascade.eval.benchmarks.toy import load_toy

LCB_FILE = "livecodebench/lcb_format_public_tests_derived.jsonl"
LCB_METRIC = "avg@k; a sample passes when every public and private test passes (LiveCodeBench's runner)"

BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in [
        Benchmark("aime24", "math", load_aime, "aime24/test.jsonl", k=64, hub_id="math-ai/aime24", expected_prompts=30),
        Benchmark("aime25", "math", load_aime, "aime25/test.jsonl", k=64, hub_id="math-ai/aime25", expected_prompts=30),
        Benchmark("math500", "math", load_math500, "math500/test.jsonl", k=4, hub_id="HuggingFaceH4/MATH-500",
                  category_field="subject"),
        Benchmark("gsm8k", "math", load_gsm8k, "gsm8k/test.jsonl", k=1, hub_id="openai/gsm8k"),
        Benchmark("gpqa_diamond", "mcq", load_gpqa, "gpqa/gpqa_diamond.csv", k=8, hub_id="Idavidrein/gpqa",
                  category_field="category", expected_prompts=198,
                  notes=["GPQA is distributed password-protected; not in the public data copies"]),
        Benchmark("mmlu", "mcq", load_mmlu, "mmlu/test.jsonl", k=1, hub_id="cais/mmlu", category_field="category"),
        Benchmark("mmlu_pro", "mcq", load_mmlu_pro, "mmlu_pro/test_questions_from_eval_results.jsonl", k=1,
                  hub_id="TIGER-Lab/MMLU-Pro", category_field="category", expected_prompts=12032),
        Benchmark("ifeval", "instruction_following", load_if, "ifeval/input_data.jsonl", k=8, max_tokens=32768,
                  mode="no_think", hub_id="google/IFEval", expected_prompts=541,
                  metric="avg@k of prompt-level strict accuracy"),
        Benchmark("ifbench", "instruction_following", load_if, "ifbench/IFBench_test.jsonl", k=8,
                  max_tokens=32768, hub_id="allenai/IFBench_test", metric="avg@k of prompt-level strict accuracy"),
        Benchmark("lcb_v5", "code", partial(load_livecodebench, window="lcb_v5"), LCB_FILE, k=8,
                  hub_id="livecodebench/code_generation_lite", category_field="difficulty",
                  expected_prompts=LCB_WINDOW_SIZES["lcb_v5"], metric=LCB_METRIC,
                  notes=["problems dated 2024-08-01 to 2025-02-01 (279)"]),
        Benchmark("lcb_v6", "code", partial(load_livecodebench, window="lcb_v6"), LCB_FILE, k=8,
                  hub_id="livecodebench/code_generation_lite", category_field="difficulty",
                  expected_prompts=LCB_WINDOW_SIZES["lcb_v6"], metric=LCB_METRIC,
                  notes=["v6 = weighted union of v5 (279) and Feb-May 2025 (175), i.e. the mean over the 454 "
                         "problems; per-part scores are reported too"]),
        Benchmark("humaneval", "code", load_humaneval, "humaneval/HumanEval.jsonl.gz", k=1,
                  hub_id="openai/openai_humaneval"),
        Benchmark("mbpp", "code", load_mbpp, "mbpp/mbpp.jsonl", k=1, hub_id="google-research-datasets/mbpp"),
        Benchmark("bfcl_v3", "tool_call", load_bfcl, "bfcl_v3", k=1, category_field="category",
                  hub_id="gorilla-llm/Berkeley-Function-Calling-Leaderboard"),
        Benchmark("arena_hard", "arena_judge", load_arena_hard, "arena_hard/v0.1", k=1, max_tokens=32768,
                  category_field="category", hub_id="lmarena-ai/arena-hard-auto-v0.1", expected_prompts=500,
                  metric="win rate vs gpt-4-0314 judged pairwise in both orders, bootstrap 90% interval "
                         "(needs --judge-base-url and --judge-model)"),
        Benchmark("swe_bench_verified", "swe", load_swe_bench, "swe_bench_verified/swebench_verified_min.jsonl",
                  k=4, max_tokens=32768, hub_id="princeton-nlp/SWE-bench_Verified", expected_prompts=500),
    ]
    + [
        Benchmark(f"toy_{d}", v, load_toy, f"toy/eval/{d}.jsonl", k=1, max_tokens=128,
                  mode="no_think" if d == "if" else "think")
        for d, v in [("chat", "toy_chat"), ("if", "instruction_following"), ("math", "math"),
                     ("code", "code"), ("swe", "swe")]
    ]
}


def get_benchmark(name: str) -> Benchmark:
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise CascadeError(f"unknown benchmark '{name}'; known: {', '.join(BENCHMARKS)}") from None


def parse_benchmark_spec(spec: str) -> list[tuple[Benchmark, int]]:
    """'aime25:64,ifeval:8,gsm8k' -> [(aime25, 64), (ifeval, 8), (gsm8k, its default k)]."""
    out = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, k = part.partition(":")
        bench = get_benchmark(name)
        if k and (not k.isdigit() or int(k) < 1):
            raise CascadeError(f"bad sample count in '{part}': expected NAME:K with K a positive integer")
        out.append((bench, int(k) if k else bench.k))
    if not out:
        raise CascadeError("no benchmarks given; example: --benchmarks aime25:64,ifeval:8")
    return out


__all__ = ["BENCHMARKS", "Benchmark", "get_benchmark", "parse_benchmark_spec", "resolve_data_dir"]

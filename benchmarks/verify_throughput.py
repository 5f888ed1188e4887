"""Verifications per second for math and code on the shared benchmark data.

Code is compared against a naive baseline: one plain, unsandboxed subprocess per test
(the same interpreter and flags), run one after another. The sandboxed verifier runs all
tests of a problem in one sandbox job and uses both cores (``verify_many(workers=2)``).
Target: sandboxed >= 2x naive.

``--cores 1,2,4,...`` then prints sandboxed verifications per second against the number of
cores (parallel sandbox jobs) used, against the 1-core figure as the baseline: how reward
scoring scales when a cluster node gives the verifier more cores (the cluster path runs one
such pool per verl reward worker, and verl spreads its reward workers over the nodes).

    .venv/bin/python benchmarks/verify_throughput.py [--problems N] [--workers 2] [--cores 1,2]
"""

from __future__ import annotations

import argparse
import ast
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cascade.errors import CascadeError
from cascade.sandbox import describe_mode, sandbox_mode
from cascade.sandbox.modes import sandbox_python
from cascade.verifiers import get_verifier
from cascade.verifiers.code import verify_many

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def fenced(code: str) -> str:
    return f"```python\n{code}\n```"


def split_check(test: str, entry_point: str) -> list[str]:
    """One program per ``assert`` at the top of HumanEval's ``check`` (the naive baseline's
    tests); the other statements of ``check`` (loops, helpers) go into every program."""
    module = ast.parse(test)
    check = next(node for node in module.body if isinstance(node, ast.FunctionDef) and node.name == "check")
    others = [node for node in check.body if not isinstance(node, ast.Assert)]
    asserts = [node for node in check.body if isinstance(node, ast.Assert)] or [None]
    programs = []
    for single in asserts:
        check.body = others + ([single] if single else []) or [ast.Pass()]
        programs.append(ast.unparse(module) + f"\ncheck({entry_point})\n")
    return programs


def humaneval(limit: int) -> list[tuple[dict, str, list[str]]]:
    """(record, completion, naive programs: one per assert) for HumanEval problems."""
    with gzip.open(DATA / "humaneval" / "HumanEval.jsonl.gz", "rt") as handle:
        rows = [json.loads(line) for line in handle][:limit]
    items = []
    for row in rows:
        code = row["prompt"] + row["canonical_solution"]
        record = {"ground_truth": {"style": "assert", "test": row["test"], "entry_point": row["entry_point"]}}
        tests = [f"{code}\n{program}" for program in split_check(row["test"], row["entry_point"])]
        items.append((record, fenced(code), tests))
    return items


def mbpp(limit: int) -> list[tuple[dict, str, list[str]]]:
    """MBPP test split (task ids 11-510): three asserts per problem, one naive process each."""
    rows = [json.loads(line) for line in (DATA / "mbpp" / "mbpp.jsonl").read_text().splitlines()]
    rows = [r for r in rows if 11 <= r["task_id"] <= 510][:limit]
    items = []
    for row in rows:
        record = {"ground_truth": {"style": "assert", "test_list": row["test_list"],
                                   "test_setup_code": row["test_setup_code"]}}
        programs = [f"{row['code']}\n{row['test_setup_code']}\n{test}\n" for test in row["test_list"]]
        items.append((record, fenced(row["code"]), programs))
    return items


def naive_seconds(items: list[tuple[dict, str, list[str]]]) -> tuple[float, int, int]:
    """Run every test as its own unsandboxed subprocess, one after another."""
    python = str(sandbox_python())
    passed = 0
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        for _record, _completion, programs in items:
            ok = True
            for program in programs:
                path = Path(folder, "test.py")
                path.write_text(program)
                done = subprocess.run([python, "-E", "-s", "-S", str(path)], capture_output=True, timeout=30,
                                      cwd=folder)
                if done.returncode != 0:
                    ok = False
                    break
            passed += ok
    return time.perf_counter() - start, passed, sum(len(p) for _r, _c, p in items)


def sandboxed_seconds(items: list[tuple[dict, str, list[str]]], workers: int) -> tuple[float, int]:
    start = time.perf_counter()
    results = verify_many([r for r, _c, _p in items], [c for _r, c, _p in items], workers=workers)
    return time.perf_counter() - start, sum(r.passed for r in results)


def bench_code(name: str, items: list[tuple[dict, str, list[str]]], workers: int) -> tuple[float, float]:
    naive, naive_passed, tests = naive_seconds(items)
    boxed, boxed_passed = sandboxed_seconds(items, workers)
    n = len(items)
    print(f"code/{name}: {n} problems, {tests} tests (naive: one process per test)")
    print(f"  naive (1 unsandboxed process per test, sequential): {naive:7.2f} s  "
          f"{n / naive:6.1f} problems/s  ({naive_passed}/{n} passed)")
    print(f"  sandboxed verifier ({workers} workers, 1 job per problem): {boxed:7.2f} s  "
          f"{n / boxed:6.1f} problems/s  ({boxed_passed}/{n} passed)")
    print(f"  speed-up vs naive: {naive / boxed:.2f}x")
    return naive, boxed


def bench_math(limit: int) -> None:
    try:
        verifier = get_verifier("math")
    except CascadeError as exc:
        print(f"math: unavailable ({exc})")
        return
    rows = [json.loads(line) for line in (DATA / "math500" / "test.jsonl").read_text().splitlines()][:limit]
    records = [{"ground_truth": row["answer"]} for row in rows]
    completions = [f"The answer is \\boxed{{{row['answer']}}}." for row in rows]
    verifier.verify(completions[0], records[0])  # start-up (imports, worker pool) is not throughput
    start = time.perf_counter()
    passed = sum(verifier.verify(c, r).passed for c, r in zip(completions, records))
    seconds = time.perf_counter() - start
    print(f"math/math500: {len(rows)} answers in {seconds:.2f} s = {len(rows) / seconds:.1f} verifications/s "
          f"({passed}/{len(rows)} passed, one at a time)")


def bench_scaling(items: list[tuple[dict, str, list[str]]], cores: list[int]) -> None:
    """Sandboxed verifications/s against the cores used, the first entry as the baseline."""
    sandboxed_seconds(items[:2], 1)  # start-up (imports, sandbox binary) is not throughput
    print(f"scaling: {len(items)} code problems (humaneval + mbpp), sandboxed, one job per problem")
    base = None
    for n in cores:
        seconds, passed = sandboxed_seconds(items, n)
        rate = len(items) / seconds
        base = base or rate * 1.0
        note = "" if n <= (os.cpu_count() or 1) else "  (more jobs than this machine's cores)"
        print(f"  {n:3d} core(s): {rate:7.1f} verifications/s  {rate / base:5.2f}x the {cores[0]}-core rate  "
              f"efficiency {rate / base / (n / cores[0]):5.2f}  ({passed}/{len(items)} passed){note}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", type=int, default=80, help="problems per data set (default 80)")
    parser.add_argument("--workers", type=int, default=2, help="parallel sandbox jobs (default 2)")
    parser.add_argument("--cores", help="also measure verifications/s at these core counts, e.g. 1,2,4")
    parser.add_argument("--only-scaling", action="store_true", help="with --cores: skip the naive comparison")
    args = parser.parse_args()
    cores = sorted({int(c) for c in args.cores.split(",")}) if args.cores else []
    if args.only_scaling and cores:
        bench_scaling(humaneval(args.problems) + mbpp(args.problems), cores)
        return 0
    print(f"sandbox: {sandbox_mode()} -- {describe_mode()}")
    print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}")
    bench_math(args.problems * 2)
    runs = [bench_code("humaneval", humaneval(args.problems), args.workers),
            bench_code("mbpp", mbpp(args.problems), args.workers)]
    naive, boxed = (sum(r[i] for r in runs) for i in (0, 1))
    # Few tests per problem (MBPP has 3) leave little to amortise one sandbox start over.
    print(f"code, both sets: naive {naive:.2f} s, sandboxed {boxed:.2f} s, speed-up {naive / boxed:.2f}x (target 2x)")
    if cores:
        bench_scaling(humaneval(args.problems) + mbpp(args.problems), cores)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The paper's claims on the built-in tiny cascade over several seeds, pooled.

One `make demo` run judges each claim against the eval noise of that one run. This runs the
tiny recipe once per seed (`cascade run --set seed=N`: another toy world draw, another model
init, other rollouts), then pools every comparison over the seeds with
`cascade report RUN_DIR... --pooled-out`: the mean difference, judged against the larger of
the runs' own standard errors and the spread between seeds.

    python benchmarks/tiny_cascade_seeds.py [--seeds 0 1 ... 9] [--jobs 2] [--out runs/tiny-seeds]

The default is the ten seeds docs/tiny-results.md reports: with five, the between-seed spread
of each RL stage was about as large as its gain, and the verdict flipped from set to set.

Seeds run --jobs at a time, each with cores/jobs torch threads: the tiny model's matmuls are
too small to split well, so one process per core gets more done (benchmarks/cpu_threads.py:
1.5x the training and 1.9x the sampling throughput of one process on two cores). The thread
count does not change the results: seed 0 run alone with two threads and alongside another
seed with one gave the same eval samples, every one (the RL weights differed in the last
bits). On a 2-core CPU two at a time took 595-670 s per seed, where one seed alone took
521-614 s, so about 55 minutes for ten. A seed whose run directory is already finished is not
run again; an interrupted one is resumed. With more than one job each seed's output goes to
OUT/seed-N.log. Prints each seed's wall time and the pooled claims, and writes OUT/pooled.md
and OUT/pooled.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def run_seed(seed: int, out: Path, threads: int | None, log: Path | None) -> float | None:
    """Run (or resume) one seed; returns its wall time, None when it was already finished."""
    run_file = out / "run.json"
    if run_file.exists() and json.loads(run_file.read_text()).get("status") == "done":
        return None
    cmd = [sys.executable, "-m", "cascade.cli", "run", "--out", str(out), "--no-progress", "--set", f"seed={seed}"]
    if run_file.exists():
        cmd.append("--resume")
    env = dict(os.environ)
    if threads is not None:
        # Two torch processes with a thread per core each would fight over the cores.
        env["OMP_NUM_THREADS"] = str(threads)
    started = time.perf_counter()
    if log is None:
        subprocess.run(cmd, check=True, env=env)
    else:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a", encoding="utf-8") as fh:
            code = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode
        if code:  # the error itself is in the log, not on this terminal
            message = f"seed {seed} failed (exit code {code}); its output is in {log}"
            # Said now: the exit waits until the seeds already running have finished.
            print(message, file=sys.stderr, flush=True)
            raise SystemExit(message)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)),
                        help="recipe seeds (default: 0 to 9)")
    parser.add_argument("--jobs", type=int, default=2, help="seeds run at once (default: 2)")
    parser.add_argument("--out", default="runs/tiny-seeds", help="one seed-N run directory per seed, and the "
                        "pooled report (default: runs/tiny-seeds)")
    args = parser.parse_args()
    if len(args.seeds) < 2 or len(set(args.seeds)) < len(args.seeds):
        parser.error("--seeds needs at least two different seeds")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    out = Path(args.out)
    jobs = min(args.jobs, len(args.seeds))
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None

    def one(seed: int) -> str:
        run_dir = out / f"seed-{seed}"
        log = out / f"seed-{seed}.log" if jobs > 1 else None
        took = run_seed(seed, run_dir, threads, log)
        # One write per line: print() from two threads can splice a line into another.
        sys.stdout.write(f"seed {seed}: " + ("finished earlier, not re-run" if took is None else f"{took:.0f} s") + "\n")
        sys.stdout.flush()
        return str(run_dir)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        run_dirs = list(pool.map(one, args.seeds))
    return subprocess.run([sys.executable, "-m", "cascade.cli", "report", *run_dirs, "--no-png",
                           "--pooled-out", str(out)]).returncode


if __name__ == "__main__":
    sys.exit(main())

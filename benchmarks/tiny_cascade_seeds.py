"""The paper's claims on the built-in tiny cascade over several seeds, pooled.

One `make demo` run judges each claim against the eval noise of that one run. This runs the
tiny recipe once per seed (`cascade run --set seed=N`: another toy world draw, another model
init, other rollouts), then pools every comparison over the seeds with
`cascade report RUN_DIR... --pooled-out`: the mean difference, judged against the larger of
the runs' own standard errors and the spread between seeds.

    python benchmarks/tiny_cascade_seeds.py [--seeds 0 1 2 3 4] [--out runs/tiny-seeds]

The default is the five seeds docs/tiny-results.md reports: with three, one flat seed of code
RL was enough to fail the pooled rule. About 12.5-15 minutes per seed on a 2-core CPU (host
load moves it), so over an hour for five. A seed whose run directory is already finished
is not run again; an interrupted one is resumed. Prints each seed's wall time and the pooled
claims, and writes OUT/pooled.md and OUT/pooled.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def run_seed(seed: int, out: Path) -> float | None:
    """Run (or resume) one seed; returns its wall time, None when it was already finished."""
    run_file = out / "run.json"
    if run_file.exists() and json.loads(run_file.read_text()).get("status") == "done":
        return None
    cmd = [sys.executable, "-m", "cascade.cli", "run", "--out", str(out), "--no-progress", "--set", f"seed={seed}"]
    if run_file.exists():
        cmd.append("--resume")
    started = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4],
                        help="recipe seeds (default: 0 1 2 3 4)")
    parser.add_argument("--out", default="runs/tiny-seeds", help="one seed-N run directory per seed, and the "
                        "pooled report (default: runs/tiny-seeds)")
    args = parser.parse_args()
    if len(args.seeds) < 2 or len(set(args.seeds)) < len(args.seeds):
        parser.error("--seeds needs at least two different seeds")
    out = Path(args.out)
    run_dirs = []
    for seed in args.seeds:
        run_dir = out / f"seed-{seed}"
        took = run_seed(seed, run_dir)
        print(f"seed {seed}: " + ("finished earlier, not re-run" if took is None else f"{took:.0f} s"), flush=True)
        run_dirs.append(str(run_dir))
    return subprocess.run([sys.executable, "-m", "cascade.cli", "report", *run_dirs, "--no-png",
                           "--pooled-out", str(out)]).returncode


if __name__ == "__main__":
    sys.exit(main())

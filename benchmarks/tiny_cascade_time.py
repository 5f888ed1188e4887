"""Wall time of the built-in tiny cascade (`cascade run`), against the project's budget.

The demo must finish in at most 15 minutes on a 2-core CPU, with 10 minutes as the target.
This runs the whole recipe once in a fresh directory, in a subprocess exactly as a user runs
it, and prints the total and the per-stage split (train / eval) read from the manifests.

    python benchmarks/tiny_cascade_time.py [--out DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 600.0
LIMIT_S = 900.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="run directory (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary run directory")
    args = parser.parse_args()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="cascade-tiny-")) / "run"
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "cascade.cli", "run", "--out", str(out), "--no-progress"])
    total = time.perf_counter() - started
    if proc.returncode != 0:
        print(f"cascade run failed with exit code {proc.returncode}")
        return proc.returncode
    print(f"\n{'stage':<10} {'train s':>8} {'eval s':>8}")
    for manifest in sorted(out.glob("stages/*/manifest.json")):
        m = json.loads(manifest.read_text())
        t = m.get("timings", {})
        print(f"{m['stage']:<10} {t.get('train_s', 0):8.1f} {t.get('eval_s', 0):8.1f}")
    print(f"\ntotal wall time: {total:.0f} s = {total / 60:.1f} min")
    print(f"vs target {TARGET_S / 60:.0f} min: {total / TARGET_S:.2f}x; vs limit {LIMIT_S / 60:.0f} min: {total / LIMIT_S:.2f}x")
    if not args.out and not args.keep:
        shutil.rmtree(out.parent, ignore_errors=True)
    else:
        print(f"report: {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Print our IFEval/IFBench figures next to the official scorer's, plus disagreements and speed.

Usage: python benchmarks/if_parity.py [--data DIR]   (DIR holds ifeval/, ifbench/, nltk_data/;
default: ../shared/data beside the repository). NLTK_DATA defaults to DIR/nltk_data.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    if not args.data.is_dir():
        print(f"benchmark data not found at {args.data}", file=sys.stderr)
        return 2
    os.environ.setdefault("NLTK_DATA", str(args.data / "nltk_data"))

    from cascade.verifiers.ifcheck import parity

    print(f"{'benchmark':9} {'figure':19} {'ours':>9} {'official':>9}")
    for name, load in (("ifeval", parity.load_ifeval), ("ifbench", parity.load_ifbench)):
        cases = load(args.data / name)
        start = time.perf_counter()
        report = parity.compare(cases)
        seconds = time.perf_counter() - start
        for figure in parity.FIGURES:
            total = report.prompts if figure.startswith("prompt") else report.instructions
            ours, official = report.ours[figure], report.official[figure]
            print(f"{name:9} {figure:19} {ours:>4}/{total:<4} {official:>4}/{total:<4}")
        per_response = seconds / max(1, len(cases)) * 1000
        print(
            f"{name:9} disagreements {len(report.disagreements)}; scored {len(cases)} responses in "
            f"{seconds:.2f} s ({per_response:.2f} ms each, strict + loose, "
            "first-use loading included)"
        )
        for d in report.disagreements:
            print(
                f"  {d.key} {d.instruction_id}: ours {d.ours} official {d.official} {d.note[:70]}"
            )
        distribution = parity.official_prompt_strict_distribution(cases)
        if len(distribution) > 1:
            odds = "  ".join(f"P({count})={p:.3f}" for count, p in distribution.items())
            print(
                f"{name:9} the official prompt_strict figure is random (letter_frequency with a "
                f"non-letter argument draws a random letter each run): {odds}; published "
                f"{report.official['prompt_strict']}, ours {report.ours['prompt_strict']} (deterministic)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

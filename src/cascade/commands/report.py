"""`cascade report`: rebuild the cascade matrix and the paper's claims from a run directory."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Rebuild the report of a cascade run from its files: the matrix of every eval set (in every
mode) after every stage, with the change against the previous evaluated stage, and the
paper's three claims judged on the held-out eval sets:

  (a) each RL stage raises its own domain's score over its start (paired over prompts,
      beyond noise = mean difference > 2 x standard error);
  (b) later stages keep the earlier domains' gains (a drop of at most 5 points);
  (c) thinking mode beats instruct mode on math (math.think vs math.no_think).

Each verdict is 'holds', 'does not hold' or 'not measurable (why)'. Writes report.md,
cascade.csv, cascade.json and cascade.png into RUN_DIR and prints the matrix and claims.
It reads only run.json, the stage manifests and the eval sample files, so it works on a
finished run, on a run still going (unfinished stages are listed, not scored), and on a
copy of the run directory without checkpoints.
"""

EPILOG = """\
examples:
  cascade report runs/tiny
  cascade report runs/exp1 --no-png          no matplotlib needed
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="rebuild the cascade matrix and judge the paper's claims for a run",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by `cascade run`")
    p.add_argument("--no-png", action="store_true", help="do not draw cascade.png")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from cascade.pipeline.report import print_claims, print_matrix, write_report

    report = write_report(args.run_dir, png=not args.no_png)
    console = Console()
    print_matrix(report.matrix, console)
    print_claims(report.claims, console)
    console.print("wrote " + ", ".join(str(p) for p in report.files), markup=False)
    return 0

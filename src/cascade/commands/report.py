"""`cascade report`: rebuild the cascade matrix and the paper's claims from a run directory."""

from __future__ import annotations

import argparse

from cascade.errors import CascadeError

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

Given several run directories (one recipe run with different seeds, e.g. `--set seed=1`),
it reports each run and then pools the claims over the runs: each comparison's mean
difference across runs, judged against the larger of the runs' own standard error and the
spread between seeds. `--pooled-out DIR` writes that as pooled.md and pooled.json.
"""

EPILOG = """\
examples:
  cascade report runs/tiny
  cascade report runs/exp1 --no-png          no matplotlib needed
  cascade report runs/s0 runs/s1 --pooled-out runs/seeds     the claims over two seeds
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="rebuild the cascade matrix and judge the paper's claims for a run",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dirs", metavar="RUN_DIR", nargs="+", help="a directory written by `cascade run`")
    p.add_argument("--no-png", action="store_true", help="do not draw cascade.png")
    p.add_argument("--pooled-out", metavar="DIR",
                   help="with several RUN_DIRs: write the pooled claims to DIR/pooled.md and DIR/pooled.json")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from cascade.report.render import print_claims, print_matrix
    from cascade.report.write import write_report

    if args.pooled_out and len(args.run_dirs) < 2:
        raise CascadeError("--pooled-out needs at least two RUN_DIRs to pool")
    console = Console()
    for run_dir in args.run_dirs:
        if len(args.run_dirs) > 1:
            console.rule(str(run_dir))
        report = write_report(run_dir, png=not args.no_png)
        print_matrix(report.matrix, console)
        print_claims(report.claims, console)
        console.print("wrote " + ", ".join(str(p) for p in report.files), markup=False)
    if len(args.run_dirs) > 1:
        from cascade.report.pooled import claims_of_runs, pool_claims, print_pooled, write_pooled_report

        console.rule(f"the claims over {len(args.run_dirs)} runs")
        if args.pooled_out:
            pooled, files = write_pooled_report(args.run_dirs, args.pooled_out)
        else:
            pooled, files = pool_claims(claims_of_runs(args.run_dirs)), []
        print_pooled(pooled, console)
        if files:
            console.print("wrote " + ", ".join(str(p) for p in files), markup=False)
    return 0

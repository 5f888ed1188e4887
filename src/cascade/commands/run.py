"""`cascade run`: the main job."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Run a recipe: its stages in order (SFT, reward model, GRPO), each starting from its
parent's checkpoint, with every eval set the recipe names evaluated after every stage.
At the end the cascade matrix (stages x benchmarks) is printed and report.md,
cascade.csv, cascade.json and cascade.png are written to the run directory.

With no RECIPE it runs the built-in `tiny` recipe: a tiny model and the toy world
(math, instruction following, code, SWE, chat), the whole cascade on a CPU in minutes.
"""

EPILOG = """\
examples:
  cascade run                                   the built-in tiny cascade -> runs/tiny
  cascade run --dry-run                         validate the recipe, its stages and the first rows
                                                of every data file and eval set; print the plan
  cascade run my-recipe.yaml --out runs/exp1    your own recipe
  cascade run --resume                          continue after a crash or Ctrl-C
  cascade run --resume --rerun-changed          also redo stages whose settings or data changed
  cascade run --from-stage math-rl --resume     redo math-rl and everything after it
  cascade run --until sft-2                     stop after a stage
  cascade run --set stages.math-rl.lr=1e-5 --set seed=1
  cascade run nemotron-cascade-8b --engine verl --nnodes 8 --gpus-per-node 8
                                                every stage as a job on a Ray cluster (docs/cluster.md)
  cascade run nemotron-cascade-8b --engine verl --nnodes 8 --judge-base-url http://judge-host:8001/v1
                                                the same, with SWE RL's judge served where every node reaches it
  cascade run my.yaml --engine verl --launcher 'sbatch --wait -N {nnodes} --gpus-per-node {gpus_per_node} {script}'

packaged recipes: tiny, nemotron-cascade-8b, nemotron-cascade-8b-thinking
(the two paper recipes need GPUs; they pass --dry-run anywhere).
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a recipe: multi-stage SFT then Cascade RL (default: the tiny cascade)",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipe", nargs="?", default="tiny", help="a recipe YAML file or a packaged recipe name (default: tiny)")
    p.add_argument("--out", help="run directory (default: the recipe's output_dir, runs/<name>)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run; a finished stage is skipped while its recorded settings, "
                        "data files and parent output still match, else the run stops and names the difference")
    p.add_argument("--rerun-changed", action="store_true",
                   help="with --resume: run again each stage whose settings or data changed since it ran, and "
                        "every stage that trained on its output (old outputs are moved aside, not deleted)")
    p.add_argument("--from-stage", metavar="NAME", help="re-run from this stage (earlier outputs are moved aside)")
    p.add_argument("--until", metavar="NAME", help="stop after this stage")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value, e.g. stages.<name>.lr=1e-5 (repeatable)")
    p.add_argument("--dry-run", action="store_true",
                   help="validate the recipe, build every stage's trainer inputs, read the first rows of every "
                        "local data source and eval set (every bad field named), print the plan and each stage's "
                        "knobs; train nothing")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (one line per stage only)")
    cluster = p.add_argument_group("cluster (--engine verl; docs/cluster.md)")
    cluster.add_argument("--engine", choices=("local", "verl"), default="local",
                         help="local: train here (default); verl: launch each stage as a cluster job (verl for "
                              "SFT and GRPO, TRL for reward models) and take its checkpoint back")
    cluster.add_argument("--nnodes", type=int, default=1, help="nodes per job (default 1)")
    cluster.add_argument("--gpus-per-node", type=int, default=8, help="GPUs per node (default 8)")
    cluster.add_argument("--rollout-tp", type=int, default=1, help="vLLM tensor parallel size per rollout replica")
    cluster.add_argument("--reward-model-tp", type=int, default=8,
                         help="GPUs per reward-model server replica for rlhf / if_thinking stages (default 8)")
    cluster.add_argument("--launcher", metavar="TEMPLATE",
                         help="command that runs one job script and waits for it; placeholders {script} {job_id} "
                              "{stage} {nnodes} {gpus_per_node} {run_dir} {log} (default: "
                              "'ray job submit --submission-id {job_id} -- bash {script}')")
    cluster.add_argument("--logger", default="console", metavar="NAMES",
                         help="the engines' loggers, comma-separated: console, tensorboard, wandb (default console)")
    cluster.add_argument("--judge-base-url", metavar="URL",
                         help="where verl's reward workers reach the SWE stage's served judge (e.g. "
                              "http://judge-host:8001/v1); sets judge.base_url of every stage with a served judge. "
                              "A loopback judge (127.0.0.1) is refused for jobs of more than one node")
    cluster.add_argument("--eval-backend", choices=("vllm", "local"), default="vllm",
                         help="how the head node evaluates each stage's checkpoint (default vllm)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console
    from rich.markup import escape

    from cascade.config import load_recipe
    from cascade.pipeline.preflight import preflight
    from cascade.pipeline.options import RunOptions
    from cascade.pipeline.runner import check_recipe, run_recipe

    console = Console()
    recipe = load_recipe(args.recipe, args.overrides)
    if getattr(args, "judge_base_url", None):
        recipe = load_recipe(args.recipe, args.overrides + judge_url_overrides(recipe, args.judge_base_url))
    if getattr(args, "engine", "local") != "local":
        from cascade.cluster.verl_judge import check_judge_reachable

        for stage in recipe.stages:  # before any stage trains, not when the SWE stage launches days later
            check_judge_reachable(stage, args.nnodes)
    recipe_file = args.recipe if Path(args.recipe).exists() else f"<packaged recipe {args.recipe}>"
    if args.dry_run:
        warnings = check_recipe(recipe, recipe_file, missing_files_ok=True)
        checked = preflight(recipe, recipe_file)
        print_plan(recipe, console, args.out, args.device, getattr(args, "engine", "local"))
        for w in warnings:
            console.print(f"[yellow]warning[/yellow]: {escape(w)} (needed before a real run)", highlight=False)
        for note in checked.notes:
            console.print(f"note: {note}", highlight=False, markup=False)
        checked.raise_if_any()
        verdict = (f"the recipe is valid, but {len(warnings)} local data file(s) are missing" if warnings
                   else "the recipe and its data are valid")
        console.print(f"{verdict}; nothing was trained (--dry-run)")
        return 0
    from cascade.models.loading import hide_transformers_progress_bars

    hide_transformers_progress_bars()  # one bar per stage is ours; per-checkpoint bars are noise
    opts = RunOptions(out_dir=Path(args.out) if args.out else None, resume=args.resume, from_stage=args.from_stage,
                      until=args.until, progress=not args.no_progress, device=args.device, recipe_file=recipe_file,
                      echo=console.print, rerun_changed=args.rerun_changed,
                      stage_runner=cluster_runner(args))
    layout = run_recipe(recipe, opts)
    from cascade.report.matrix import build_matrix
    from cascade.report.render import print_matrix
    from cascade.report.write import write_report

    matrix = build_matrix(layout.root)
    print_matrix(matrix, console)
    write_report(layout.root, matrix)
    console.print(f"report: {layout.root / 'report.md'}")
    return 0


def judge_url_overrides(recipe, url: str) -> list[str]:
    """``--set`` words that point every served judge of ``recipe`` at ``url``."""
    from cascade.cluster.verl_judge import served_judge_stage

    return [f"stages.{stage.name}.judge.base_url={url}" for stage in recipe.stages if served_judge_stage(stage)]


def cluster_runner(args: argparse.Namespace):
    """The stage runner for ``--engine``: None (the local trainers) or the cluster job launcher."""
    if getattr(args, "engine", "local") == "local":
        return None
    from cascade.cluster.engine_run import stage_runner
    from cascade.cluster.jobs import RAY_LAUNCHER, ClusterSettings
    from cascade.errors import CascadeError

    if min(args.nnodes, args.gpus_per_node, args.rollout_tp, args.reward_model_tp) < 1:
        raise CascadeError("--nnodes, --gpus-per-node, --rollout-tp and --reward-model-tp must be at least 1",
                           field="nnodes")
    loggers = tuple(name.strip() for name in args.logger.split(",") if name.strip()) or ("console",)
    settings = ClusterSettings(nnodes=args.nnodes, gpus_per_node=args.gpus_per_node, rollout_tp=args.rollout_tp,
                               launcher=args.launcher or RAY_LAUNCHER, logger=loggers, eval_backend=args.eval_backend,
                               reward_model_tp=args.reward_model_tp)
    return stage_runner(settings)


def print_plan(recipe, console, out, device: str = "auto", engine: str = "local") -> None:
    from rich.table import Table

    from cascade.pipeline.preflight import engine_text, stage_knobs

    table = Table(title=f"recipe {recipe.name}: {len(recipe.stages)} stages -> {out or recipe.output_dir}")
    for col in ("#", "stage", "kind", "starts from", "steps (est.)", "how", "eval after"):
        table.add_column(col)
    for i, plan in enumerate(recipe.plan(), start=1):
        stage = recipe.stage(plan.name)
        evals = "-" if stage.kind == "rm" else ", ".join(recipe.eval_suites_for(plan.name)) or "-"
        table.add_row(str(i), plan.name, plan.kind, plan.parent, plan.steps_text, plan.how, evals)
    console.print(table)
    knobs = Table(title=f"main knobs (engine: {engine_text(device, engine)})")
    for col in ("stage", "lr", "batch", "group", "lengths", "sub-stages"):
        knobs.add_column(col)
    for stage in recipe.stages:
        row = stage_knobs(stage)
        knobs.add_row(stage.name, row["lr"], row["batch"], row["group"], row["lengths"], row["sub-stages"])
    console.print(knobs)
    console.print("stage graph:")
    for stage in recipe.stages:
        uses = f"  (reward model: {stage.reward_model})" if getattr(stage, "reward_model", None) else ""
        console.print(f"  {recipe.parent_of(stage.name)} -> {stage.name} [{stage.kind}]{uses}")

"""How a GRPO stage becomes a verl job: the launch script, and the two helper steps it calls.

``launch_script(recipe, stage, ...)`` writes (as text; nothing runs here, Ray included) a bash
script for a GPU cluster that:

1. exports the stage's prompt records to verl parquet, one file per data source
   (``python -m cascade.cluster.launch export``), with the stage's modes baked in;
2. runs ``python -m verl.trainer.main_ppo`` once per verl phase (the whole stage, or one job per
   curriculum sub-stage, each resuming the previous one from the shared verl checkpoint folder);
3. merges verl's last FSDP checkpoint into a Hugging Face checkpoint with verl's model merger;
4. puts our chat template back on the merged tokenizer (``... launch finalize``): verl ran with the
   verl variant of the template, and the next stage must start from the canonical one.

Paths follow the local runner's layout (``cascade.pipeline.layout``): the stage's Hugging Face
output is ``RUN_DIR/stages/NN-<stage>/final``, so ``cascade run`` and the next verl stage find it
where they would find a locally trained one; verl's own files go next to it (``verl/``,
``verl-data/``).

Command line (the lead may wire it into the CLI as ``cascade cluster``)::

    python -m cascade.cluster.launch script nemotron-cascade-8b math-rl --nnodes 8 --gpus-per-node 8
    python -m cascade.cluster.launch export nemotron-cascade-8b math-rl --out runs/.../verl-data
    python -m cascade.cluster.launch finalize runs/.../final
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Sequence

from cascade.cluster.jobs import chat_template_lines, verl_ppo_command
from cascade.cluster.verl_config import (
    VERL_VERSION,
    default_checkpoint_dir,
    require_grpo,
    stage_phases,
    stage_to_verl_overrides,
    verl_gaps,
)
from cascade.cluster.verl_data import export_verl_parquet
from cascade.config import Recipe, load_recipe
from cascade.config.recipe import BASE, DataSource, GRPOStage
from cascade.errors import CascadeError
from cascade.pipeline.layout import RunLayout
from cascade.pipeline.runner import trainer_stage


def _grpo(recipe: Recipe, stage_name: str) -> GRPOStage:
    try:
        stage = recipe.stage(stage_name)
    except KeyError:
        known = ", ".join(s.name for s in recipe.stages)
        raise CascadeError(f"no stage '{stage_name}' in recipe {recipe.name}; stages: {known}", field="stage") from None
    return require_grpo(stage)


def _layout(recipe: Recipe, run_dir: str | None) -> RunLayout:
    return RunLayout(Path(run_dir or recipe.output_dir or f"runs/{recipe.name}"), [s.name for s in recipe.stages])


def start_checkpoint(recipe: Recipe, stage_name: str, run_dir: str | None = None) -> str:
    """The Hugging Face checkpoint ``stage_name`` starts from: its parent's ``final/``, or the
    base model (a path or hub id) for a stage whose parent is ``base``."""
    parent = recipe.parent_of(stage_name)
    if parent == BASE and recipe.base_model_source is not None:
        return recipe.base_model_source
    return str(_layout(recipe, run_dir).output(parent))


def source_label(source: DataSource) -> str:
    """verl's ``data_source`` for one of our data sources (verl groups metrics by it)."""
    if source.hub is not None:
        return source.hub + (f"/{source.name}" if source.name else "")
    if source.path is not None:
        return Path(source.path).stem
    raise CascadeError(
        f"generator source '{source.generator}' is built by `cascade run`; export its records to a file first",
        field="data.generator",
    )


def export_stage_data(recipe: Recipe, stage_name: str, out_dir: str | Path) -> list[str]:
    """Write one verl parquet file per data source of the stage; returns their paths."""
    stage = _grpo(recipe, stage_name)
    seed = recipe.stage_seed(stage_name)
    paths = []
    for index, source in enumerate(stage.data):
        label = source_label(source)
        if source.weight != int(source.weight):
            raise CascadeError(
                f"weight {source.weight:g}: the verl export repeats rows, so weights must be whole numbers",
                field=f"stages.{stage_name}.data[{index}].weight",
            )
        records = source.load("prompt") * int(source.weight)
        path = _data_file(out_dir, index, source)
        export_verl_parquet(
            records,
            path,
            data_source=label,
            think_fraction=stage.think_fraction,
            seed=seed + index,
            reward=stage.reward,
        )
        paths.append(str(path))
    return paths


def data_file_paths(recipe: Recipe, stage_name: str, out_dir: str | Path) -> list[str]:
    """The files ``export_stage_data`` writes, without writing them."""
    stage = _grpo(recipe, stage_name)
    return [str(_data_file(out_dir, index, source)) for index, source in enumerate(stage.data)]


def _data_file(out_dir: str | Path, index: int, source: DataSource) -> Path:
    return Path(out_dir) / f"{index:02d}-{source_label(source).replace('/', '__')}.parquet"


def launch_script(
    recipe: Recipe,
    stage_name: str,
    *,
    nnodes: int,
    n_gpus_per_node: int,
    run_dir: str | None = None,
    recipe_ref: str | None = None,
    recipe_overrides: Sequence[str] = (),
    model_path: str | None = None,
    rollout_tp: int = 1,
) -> str:
    """A bash script that runs one GRPO stage of ``recipe`` through verl (see the module doc).
    ``recipe_ref`` and ``recipe_overrides`` are how the script's export step loads the recipe
    again (default: its name, i.e. a packaged recipe, without overrides)."""
    stage = _grpo(recipe, stage_name)
    layout = _layout(recipe, run_dir)
    stage_dir = layout.stage_dir(stage_name)
    data_dir = stage_dir / "verl-data"
    ckpt_dir = default_checkpoint_dir(recipe, stage_name, run_dir)
    final_dir = layout.output(stage_name)
    start = model_path or start_checkpoint(recipe, stage_name, run_dir)
    files = data_file_paths(recipe, stage_name, data_dir)
    q = shlex.quote
    lines = [
        "#!/usr/bin/env bash",
        f"# cascade -> verl {VERL_VERSION}: stage '{stage_name}' of recipe '{recipe.name}'.",
        f"# Written by cascade.cluster.launch; needs `pip install verl=={VERL_VERSION}` and cascade on every node.",
        f"# Starts from: {start}",
        f"# Hugging Face output: {final_dir}",
        "set -euo pipefail",
        "",
        "# 1. Prompts -> verl parquet (modes baked into the last user turn).",
        " ".join(
            ["python -m cascade.cluster.launch export", q(recipe_ref or recipe.name), q(stage_name)]
            + ["--out", q(str(data_dir))]
            + [f"--set {q(o)}" for o in recipe_overrides]
        ),
        "",
        *chat_template_lines(),
    ]
    for number, phase in enumerate(stage_phases(stage), start=1):
        overrides = stage_to_verl_overrides(
            stage,
            recipe,
            n_gpus_per_node=n_gpus_per_node,
            nnodes=nnodes,
            model_path=start,
            data_files=files,
            substage=phase.substage,
            checkpoint_dir=str(ckpt_dir),
            rollout_tp=rollout_tp,
            reward_model_path=trainer_stage(recipe, stage_name, layout).reward_model,
        )
        lines += ["", f"# 2.{number} verl job: {phase.name} (until step {phase.end_step or 'the end of the epochs'})"]
        lines += [f"#   not as in the local trainer: {gap}" for gap in verl_gaps(stage, phase.substage, nnodes)]
        lines.append(verl_ppo_command(overrides))
    lines += [
        "",
        "# 3. Merge verl's last FSDP checkpoint into a Hugging Face checkpoint.",
        f"STEP=$(cat {q(str(ckpt_dir / 'latest_checkpointed_iteration.txt'))})",
        " ".join(
            [
                "python -m verl.model_merger merge --backend fsdp",
                "--local_dir",
                f'{q(str(ckpt_dir))}/global_step_"$STEP"/actor',
                "--target_dir",
                q(str(final_dir)),
            ]
        ),
        "",
        "# 4. Put cascade's chat template back on the merged tokenizer.",
        f"python -m cascade.cluster.launch finalize {q(str(final_dir))}",
        "",
    ]
    return "\n".join(lines)


def restore_chat_template(hf_dir: str | Path) -> None:
    """Save the checkpoint's tokenizer again with cascade's inference chat template."""
    from transformers import AutoTokenizer  # only on the cluster, after the merge

    from cascade.chat import chat_template

    tokenizer = AutoTokenizer.from_pretrained(str(hf_dir))
    tokenizer.chat_template = chat_template()
    tokenizer.save_pretrained(str(hf_dir))


DESCRIPTION = """\
Run a GRPO stage of a recipe on a GPU cluster through verl (verl==0.9.1, not a cascade
dependency). Nothing here starts Ray or a GPU job: `script` prints a bash script that you
run on the cluster's head node.

  script    print the launch script for one stage: data export, one verl job per
            curriculum sub-stage, checkpoint merge, chat-template restore
  export    write the stage's prompts as verl parquet (the script's first step)
  finalize  put cascade's chat template back on a merged checkpoint (its last step)

docs/cluster.md explains the mapping and what verl cannot express.
"""

EXAMPLES = """\
examples:
  python -m cascade.cluster.launch script nemotron-cascade-8b math-rl --nnodes 8 --gpus-per-node 8 > math-rl.sh
  python -m cascade.cluster.launch script my-recipe.yaml code-rl --gpus-per-node 8 --set stages.code-rl.lr=3e-6
  python -m cascade.cluster.launch export nemotron-cascade-8b math-rl --out /data/verl/math-rl
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cascade.cluster.launch",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    script = sub.add_parser("script", help="print the launch script for one GRPO stage")
    export = sub.add_parser("export", help="write a stage's prompts as verl parquet")
    for p in (script, export):
        p.add_argument("recipe", help="recipe file or packaged recipe name")
        p.add_argument("stage", help="a GRPO stage of the recipe")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="recipe override (repeatable)")
    script.add_argument("--nnodes", type=int, default=1)
    script.add_argument("--gpus-per-node", type=int, default=8)
    script.add_argument("--rollout-tp", type=int, default=1, help="vLLM tensor parallel size per rollout replica")
    script.add_argument("--run-dir", help="run directory (default: the recipe's output_dir)")
    script.add_argument("--model-path", help="starting checkpoint (default: the parent stage's final/)")
    export.add_argument("--out", required=True, help="folder for the parquet files")
    finalize = sub.add_parser("finalize", help="restore cascade's chat template on a merged checkpoint")
    finalize.add_argument("hf_dir", help="the merged Hugging Face checkpoint folder")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "finalize":
            restore_chat_template(args.hf_dir)
            return 0
        recipe = load_recipe(args.recipe, args.set)
        if args.command == "export":
            for path in export_stage_data(recipe, args.stage, args.out):
                print(path)
            return 0
        print(
            launch_script(
                recipe,
                args.stage,
                nnodes=args.nnodes,
                n_gpus_per_node=args.gpus_per_node,
                run_dir=args.run_dir,
                recipe_ref=args.recipe,
                recipe_overrides=args.set,
                model_path=args.model_path,
                rollout_tp=args.rollout_tp,
            )
        )
        return 0
    except CascadeError as exc:
        print(f"error: {exc.format()}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""`cascade run RECIPE --engine verl`: each stage as a cluster job, in the local run's layout.

For every stage ``run_cluster_stage`` (called by ``cascade.pipeline.runner.run_recipe`` in place
of the local trainer) does, on the head node:

1. writes the stage's data where every node reads it (``stages/NN-<stage>/cluster-data``);
2. writes the job script (``cascade.cluster.jobs``) to ``stages/NN-<stage>/jobs/`` and runs the
   launcher command on it: by default ``ray job submit`` (which waits for the job), or the user's
   template for Slurm and the like (``--launcher 'sbatch --wait -N {nnodes} {script}'``);
3. checks the engine left a Hugging Face checkpoint at ``stages/NN-<stage>/final`` and puts
   cascade's chat template back on it (the engines ran with their own copy);
4. evaluates it with the recipe's eval sets (the vLLM backend on the cluster, the local engine
   where asked) and writes the stage manifest, as a local stage does, so ``--resume``,
   ``--from-stage``, ``--until``, ``cascade report`` and the next stage work unchanged.

A stage whose manifest is not ``done`` is launched again on ``--resume``; verl's jobs run with
``resume_mode=auto`` and continue from their last checkpoint in ``stages/NN-<stage>/verl``.
"""

from __future__ import annotations

import shlex
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from cascade.cluster.jobs import ClusterSettings, grpo_job, rm_job, sft_job
from cascade.cluster.launch import restore_chat_template
from cascade.cluster.train_config import export_pairs, export_sft_parquet
from cascade.cluster.verl_config import require_grpo
from cascade.cluster.verl_data import export_verl_parquet
from cascade.config.recipe import DataSource, Recipe, RMStage, SFTStage
from cascade.data.io import write_json_atomic, write_text_atomic
from cascade.errors import CascadeError
from cascade.pipeline.layout import MANIFEST, RunLayout
from cascade.pipeline.options import RunOptions
from cascade.pipeline.resume import INPUT_IDS, OUTPUT_ID, input_stages, read_output_id
from cascade.pipeline.runner import _now, _stage_domain, trainer_stage
from cascade.pipeline.sources import load_sources, load_stage_records
from cascade.pipeline.stage_eval import eval_set_data, eval_sets, evaluate_stage

ENGINES = ("local", "verl")
EVAL_BACKENDS = ("vllm", "local")
PLACEHOLDERS = ("script", "job_id", "stage", "nnodes", "gpus_per_node", "run_dir", "log")


def check_launcher(template: str) -> None:
    """A clear error for a launcher template that names an unknown placeholder or lacks {script}."""
    try:
        template.format(**{name: "x" for name in PLACEHOLDERS})
    except (KeyError, IndexError, ValueError) as exc:
        raise CascadeError(f"launcher template {template!r}: unknown or malformed placeholder ({exc}); "
                           f"known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)}", field="launcher") from None
    if "{script}" not in template:
        raise CascadeError(f"launcher template {template!r} never names {{script}}, the job to run", field="launcher")


def stage_runner(settings: ClusterSettings) -> Callable[[Recipe, Any, RunLayout, RunOptions], dict[str, Any]]:
    """The function ``run_recipe`` calls for each stage on the cluster path."""
    check_launcher(settings.launcher)

    def run(recipe: Recipe, stage: Any, layout: RunLayout, opts: RunOptions) -> dict[str, Any]:
        return run_cluster_stage(recipe, stage, layout, opts, settings)

    return run


def _label(source: DataSource, index: int) -> str:
    if source.generator is not None:
        return source.generator.replace("/", "__")
    if source.hub is not None:
        return (source.hub + (f"/{source.name}" if source.name else "")).replace("/", "__")
    return Path(str(source.path)).stem or f"source-{index}"


def _export_grpo(stage: Any, root: Path, data_dir: Path, seed: int) -> tuple[list[str], dict[str, str]]:
    files, hashes = [], {}
    for index, source in enumerate(stage.data):
        if source.weight != int(source.weight):
            raise CascadeError(f"weight {source.weight:g}: the verl export repeats rows, so weights must be whole "
                               "numbers", field=f"stages.{stage.name}.data[{index}].weight")
        one = source.model_copy(update={"weight": 1.0})
        records, source_hashes = load_sources([one], root, "prompt")
        hashes.update(source_hashes)
        label = _label(source, index)
        path = data_dir / f"{index:02d}-{label}.parquet"
        export_verl_parquet(list(records) * int(source.weight), path, data_source=label,
                            think_fraction=stage.think_fraction, seed=seed + index, reward=stage.reward)
        files.append(str(path))
    return files, hashes


def _job_script(recipe: Recipe, stage: Any, layout: RunLayout, start: Path,
                settings: ClusterSettings) -> tuple[str, dict[str, str]]:
    """(the stage's job script, the data hashes for its manifest); writes the stage's data."""
    root = layout.root
    stage_dir = layout.stage_dir(stage.name)
    data_dir = stage_dir / "cluster-data"
    final_dir = layout.output(stage.name)
    checkpoint_dir = stage_dir / "verl"
    if isinstance(stage, SFTStage):
        records, hashes = load_stage_records(stage, root, "sft")
        if stage.mode_mix != "both":
            records = [r for r in records if r.mode == stage.mode_mix]
        data_file = export_sft_parquet(records, data_dir / "sft.parquet")
        return sft_job(recipe, stage, start=str(start), data_file=data_file, checkpoint_dir=checkpoint_dir,
                       final_dir=final_dir, settings=settings), hashes
    if isinstance(stage, RMStage):
        if stage.sampled_pairs is not None:
            raise CascadeError(
                "sampled_pairs rates the parent policy's own replies with the local engine, which the cluster "
                "path does not run; rate them once with `cascade run` locally (or drop sampled_pairs)",
                field=f"stages.{stage.name}.sampled_pairs")
        records, hashes = load_stage_records(stage, root, "preference")
        pairs = export_pairs(records, data_dir / "pairs.jsonl")
        return rm_job(recipe, stage, start=str(start), pairs_file=pairs, final_dir=final_dir,
                      settings=settings), hashes
    stage = require_grpo(stage)
    files, hashes = _export_grpo(stage, root, data_dir, recipe.stage_seed(stage.name))
    rm_path = trainer_stage(recipe, stage.name, layout).reward_model
    return grpo_job(recipe, stage, start=str(start), data_files=files, checkpoint_dir=checkpoint_dir,
                    final_dir=final_dir, settings=settings, reward_model_path=rm_path), hashes


def launch(command: list[str], log: Path) -> int:
    """Run the launcher command, its output into ``log``; its exit status."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        try:
            return subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
        except FileNotFoundError:
            raise CascadeError(f"launcher '{command[0]}' not found: install Ray on the head node (pip install "
                               "'cascade-rl[verl]') or pass --launcher", field="launcher") from None


def run_cluster_stage(recipe: Recipe, stage: Any, layout: RunLayout, opts: RunOptions,
                      settings: ClusterSettings) -> dict[str, Any]:
    """Launch one stage as a cluster job, wait, take its checkpoint back, evaluate, write the manifest."""
    stage_dir = layout.stage_dir(stage.name)
    stage_dir.mkdir(parents=True, exist_ok=True)
    parent = recipe.parent_of(stage.name)
    start = layout.output(parent)
    if not (start / "config.json").exists():
        raise CascadeError(f"parent '{parent}' has no checkpoint at {start}; run it first")
    seed = recipe.stage_seed(stage.name)
    previous = layout.manifest(stage.name) or {}
    manifest: dict[str, Any] = {
        "stage": stage.name, "kind": stage.kind, "parent": parent, "parent_path": str(start), "status": "running",
        "config": stage.model_dump(mode="json"), "seed": seed, "domain": _stage_domain(recipe, stage),
        "started": _now(), "engine": "verl", "jobs": list(previous.get("jobs", [])),
        # What --resume checks before skipping this stage or a stage built on it (cascade.pipeline.resume).
        OUTPUT_ID: uuid.uuid4().hex,
        INPUT_IDS: {name: read_output_id(layout.stage_dir(name) / MANIFEST)
                    for name in input_stages(recipe, stage).values()},
    }
    write_json_atomic(stage_dir / MANIFEST, manifest)

    script_text, hashes = _job_script(recipe, stage, layout, start, settings)
    jobs_dir = stage_dir / "jobs"
    attempt = len(manifest["jobs"]) + 1
    script = jobs_dir / f"{attempt:02d}-{stage.name}.sh"
    write_text_atomic(script, script_text)
    log = jobs_dir / f"{attempt:02d}-{stage.name}.log"
    values = {"script": str(script), "job_id": f"cascade-{recipe.name}-{stage.name}-{attempt}-{int(time.time())}",
              "stage": stage.name, "nnodes": str(settings.nnodes), "gpus_per_node": str(settings.gpus_per_node),
              "run_dir": str(layout.root), "log": str(log)}
    command = shlex.split(settings.launcher.format(**{k: shlex.quote(v) for k, v in values.items()}))
    opts.echo(f"{stage.name}: launching {script.name} ({shlex.join(command)}); log {log}")
    # Recorded before it runs: a head node killed while waiting still leaves the attempt on file.
    job: dict[str, Any] = {"script": str(script), "command": command, "returncode": None, "started": _now()}
    manifest["jobs"].append(job)
    write_json_atomic(stage_dir / MANIFEST, manifest)
    started = time.perf_counter()
    returncode = launch(command, log)
    train_s = time.perf_counter() - started
    job.update({"returncode": returncode, "seconds": round(train_s, 1), "finished": _now()})
    write_json_atomic(stage_dir / MANIFEST, manifest)
    final = layout.output(stage.name)
    if returncode != 0:
        raise CascadeError(f"stage '{stage.name}': the cluster job failed (exit {returncode}); see {log}. "
                           "Fix it, then continue with `cascade run ... --engine verl --resume`")
    if not (final / "config.json").exists():
        raise CascadeError(f"stage '{stage.name}': the job ended but left no Hugging Face checkpoint at {final}; "
                           f"see {log}")
    restore_chat_template(final)

    eval_started = time.perf_counter()
    eval_info = None if isinstance(stage, RMStage) else evaluate_checkpoint(recipe, stage.name, final, layout, opts,
                                                                             settings.eval_backend)
    eval_s = time.perf_counter() - eval_started
    manifest.update({
        "status": "done", "finished": _now(), "data_hashes": hashes, "metrics": {"engine": "verl"},
        "eval": eval_info, "timings": {"train_s": train_s, "eval_s": eval_s, "total_s": train_s + eval_s},
    })
    write_json_atomic(stage_dir / MANIFEST, manifest)
    return manifest


def evaluate_checkpoint(recipe: Recipe, stage_name: str, model_dir: Path, layout: RunLayout, opts: RunOptions,
                        backend: str) -> dict[str, Any]:
    """The forgetting monitor on a checkpoint the cluster wrote: the recipe's eval sets after
    ``stage_name``, with vLLM (the cluster's GPUs) or the local engine."""
    if backend == "local":
        from cascade.engine.local import LocalEngine

        return evaluate_stage(recipe, stage_name, LocalEngine(str(model_dir), device=opts.device), layout, opts)
    if backend != "vllm":
        raise CascadeError(f"eval backend '{backend}' is not one of {', '.join(EVAL_BACKENDS)}", field="eval_backend")
    from cascade.eval.backends.vllm_offline import VLLMBackend
    from cascade.eval.runner import EvalSettings, evaluate

    sets = eval_sets(recipe, stage_name)
    if not sets:
        return {"dir": "eval", "sets": []}
    out = layout.stage_dir(stage_name) / "eval"
    vllm = VLLMBackend(str(model_dir))
    merged: dict[str, Any] = {}
    for es in sets:
        # The same benchmark, records, k, budget and mode as the local path (evaluate_stage).
        bench, records = eval_set_data(es, layout.root)
        settings = EvalSettings(temperature=es.temperature, top_p=es.top_p, max_tokens=bench.max_tokens,
                                mode=es.modes or "default", limit=es.n, seed=recipe.seed)
        merged.update(evaluate(vllm, [(bench, bench.k)], out, settings=settings, model_name=stage_name,
                               records_for=lambda b, r=records: r, progress=opts.progress))
    write_json_atomic(out / "metrics.json", merged)
    return {"dir": "eval", "sets": sorted(merged)}

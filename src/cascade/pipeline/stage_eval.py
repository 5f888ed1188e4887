"""The per-stage eval: the stage's policy on every eval set the recipe names, in every mode asked for.

Samples and metrics go to ``RUN_DIR/stages/NN-<name>/eval/``; the headline figures to the manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cascade.config import Recipe
from cascade.config.recipe import EvalSet
from cascade.data.io import write_json_atomic
from cascade.pipeline.layout import EVAL_DIR, RunLayout, generated_path
from cascade.pipeline.options import RunOptions

EVAL_GENERATION_BATCH = 128


def eval_sets(recipe: Recipe, stage_name: str) -> list[EvalSet]:
    """The eval sets of every suite the recipe evaluates ``stage_name`` on, in order."""
    return [es for suite in recipe.eval_suites_for(stage_name) for es in recipe.eval.get(suite, [])]


def evaluate_stage(recipe: Recipe, stage_name: str, engine: Any, layout: RunLayout, opts: RunOptions) -> dict[str, Any]:
    """Evaluate the stage's policy on every eval set the recipe names, all modes asked for."""
    from cascade.eval.backends.local import LocalBackend
    from cascade.eval.runner import EvalSettings, evaluate

    sets = eval_sets(recipe, stage_name)
    if not sets:
        return {"dir": EVAL_DIR, "sets": []}
    out = layout.stage_dir(stage_name) / EVAL_DIR
    backend = LocalBackend("", engine=engine)
    merged: dict[str, Any] = {}
    engine.model.eval()
    # Eval prompts are short and the policy is in memory: wider decode batches than training's
    # rollouts keep the cores busy.
    training_batch = engine.generation_batch_size
    engine.generation_batch_size = max(training_batch, EVAL_GENERATION_BATCH)
    try:
        for es in sets:
            bench, records = eval_set_data(es, layout.root)
            settings = EvalSettings(temperature=es.temperature, top_p=es.top_p, max_tokens=bench.max_tokens,
                                    mode=es.modes or "default", limit=es.n, seed=recipe.seed,
                                    batch_size=2 * EVAL_GENERATION_BATCH)
            merged.update(evaluate(backend, [(bench, bench.k)], out, settings=settings, model_name=stage_name,
                                   records_for=lambda b, r=records: r, progress=opts.progress))
    finally:
        engine.generation_batch_size = training_batch
    write_json_atomic(out / "metrics.json", merged)
    return {"dir": EVAL_DIR, "sets": sorted(merged), "scores": {name: _eval_scores(merged[name]) for name in sorted(merged)}}


def _eval_scores(metrics: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of one eval set, for the manifest (the full metrics stay in eval/)."""
    return {key: metrics.get(key) for key in ("n_prompts", "k", "avg_at_k", "pass_at_k", "stderr", "mean_score")}


# Protocol of an eval set that is not a registered benchmark (docs/recipes.md).
PLAIN_EVAL_K, PLAIN_EVAL_TOKENS, PLAIN_EVAL_MODE = 1, 4096, "think"


def eval_set_data(es: EvalSet, root: Path) -> tuple[Any, list[dict[str, Any]]]:
    """The benchmark (named after the eval set, with the set's k, budget and mode) and its
    prompt records. A ``benchmark:`` set is read by the registry's loader, as ``cascade
    eval`` reads it (its windows, verifier and protocol defaults); other sets are prompt
    records, the ``prompt`` shorthand turned into ``messages``."""
    from dataclasses import replace

    from cascade.data.hub import load_dataset_source
    from cascade.data.records import record_messages
    from cascade.eval.benchmarks import get_benchmark
    from cascade.eval.benchmarks.base import Benchmark

    if es.benchmark is not None:
        registered = get_benchmark(es.benchmark)
        rows = registered.load(path=es.path) if es.path else registered.load()
        bench = replace(registered, name=es.name, k=es.k or registered.k,
                        max_tokens=es.max_new_tokens or registered.max_tokens)
    else:
        where = str(generated_path(root, es.generator)) if es.generator else es.path
        rows = []
        for record in load_dataset_source(where, "prompt", fmt=es.format):
            row = record.model_dump(exclude_none=True)
            row["messages"] = record_messages(record)  # the eval runner reads messages only
            row.pop("prompt", None)
            rows.append(row)
        bench = Benchmark(es.name, es.verifier or "", lambda _path, r=rows: r, "", k=es.k or PLAIN_EVAL_K,
                          max_tokens=es.max_new_tokens or PLAIN_EVAL_TOKENS, mode=PLAIN_EVAL_MODE)
    if es.verifier:
        for r in rows:
            r["verifier"] = es.verifier
    return bench, rows

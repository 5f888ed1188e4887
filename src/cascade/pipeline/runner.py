"""The stage runner behind `cascade run`: stages in order, handoff, resume, per-stage eval.

Every stage starts from its parent's ``final/`` (the run directory's layout:
``cascade.pipeline.layout``); a finished stage is never re-run or overwritten silently
(``--from-stage`` moves the old output aside and says so). Nor is one skipped silently:
``--resume`` skips a stage only while its manifest matches the recipe, its data files and
the outputs it started from (``cascade.pipeline.resume``); otherwise it stops with the
difference, or, with ``--rerun-changed``, runs that stage again and every stage that trained
on its output.

The other parts of a run live beside this module: the checks before anything trains
(``preflight``), the data each stage reads (``sources``), the base model (``base_model``),
the per-stage eval (``stage_eval``) and the hashes recorded in manifests (``hashes``).
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from cascade.config import Recipe
from cascade.config.recipe import BASE, GRPOStage, RMStage, SFTStage
from cascade.data.io import write_json_atomic
from cascade.errors import CascadeError
from cascade.pipeline.base_model import prepare_base
from cascade.pipeline.hashes import weights_sha256
from cascade.pipeline.layout import MANIFEST, RUN_FILE, RunLayout, read_json
from cascade.pipeline.options import RunOptions
from cascade.pipeline.preflight import preflight
from cascade.pipeline.resume import (INPUT_IDS, OUTPUT_ID, changed_stage_error, describe, input_stages,
                                     read_output_id, stage_changes)
from cascade.pipeline.sources import load_sources, load_stage_records, materialize_generators, stage_sources
from cascade.pipeline.stage_eval import evaluate_stage

GENERATORS = ("toy",)  # generator sources: "toy/<part>", e.g. toy/sft/math, toy/eval/if


# ---------------------------------------------------------------- validation before training


def check_recipe(recipe: Recipe, file: str | None = None, *, missing_files_ok: bool = False) -> list[str]:
    """What the schema cannot check alone: handoffs, reward references, generators and data
    files. Runs before any training, so a bad recipe costs nothing.

    Returns warnings. A local data file that does not exist is an error, except with
    ``missing_files_ok`` (``--dry-run``), where it is a warning: reference recipes name files
    that users build or download themselves."""
    warnings: list[str] = []
    kinds = {s.name: s.kind for s in recipe.stages}
    for stage in recipe.stages:
        parent = recipe.parent_of(stage.name)
        if parent != BASE and kinds[parent] == "rm":
            raise CascadeError(
                f"starts from reward-model stage '{parent}', which is not a policy; set 'parent' to the policy "
                "stage it should continue (for example the last SFT stage)",
                file=file, field=f"stages.{stage.name}.parent")
        if isinstance(stage, GRPOStage):
            _check_reward(stage, kinds, file)
        for where, source in stage_sources(stage):
            if source.generator is not None:
                _check_generator(source.generator, f"{where}.generator", file)
            elif source.path is not None and not Path(source.path).expanduser().exists():
                _missing(f"data file not found: {source.path}", f"{where}.path", file, missing_files_ok, warnings)
    for suite, sets in recipe.eval.items():
        for i, es in enumerate(sets):
            where = f"eval.{suite}[{i}]"
            if es.benchmark is not None:
                bench = _check_benchmark(es.benchmark, f"{where}.benchmark", file)
                target = Path(es.path) if es.path else None
                if target is None:
                    from cascade.eval.benchmarks import resolve_data_dir

                    target = resolve_data_dir(None) / bench.default_path
                if not target.exists():
                    _missing(f"benchmark data for '{es.benchmark}' not found: {target} (set path, or "
                             "$CASCADE_DATA_DIR to a folder laid out like the benchmark data)",
                             f"{where}.path", file, missing_files_ok, warnings)
            elif es.generator is not None:
                _check_generator(es.generator, f"{where}.generator", file)
            elif es.path is not None and not _is_hub(es.path) and not Path(es.path).exists():
                _missing(f"eval data not found: {es.path}", f"{where}.path", file, missing_files_ok, warnings)
            if es.verifier is not None:
                _check_verifier(es.verifier, f"eval.{suite}[{i}].verifier", file)
    return warnings


def _missing(message: str, where: str, file: str | None, ok: bool, warnings: list[str]) -> None:
    if not ok:
        raise CascadeError(message, file=file, field=where)
    warnings.append(f"{where}: {message}")


def _is_hub(source: str) -> bool:
    from cascade.data.hub import is_hub_id

    return is_hub_id(source)


def _check_reward(stage: GRPOStage, kinds: dict[str, str], file: str | None) -> None:
    from cascade.verifiers.stage_rewards import STAGE_REWARDS

    if stage.reward is not None and stage.reward not in STAGE_REWARDS:
        _check_verifier(stage.reward, f"stages.{stage.name}.reward", file)
    rm = stage.reward_model
    if rm is not None and rm in kinds and kinds[rm] != "rm":
        raise CascadeError(f"'{rm}' is a {kinds[rm]} stage, not a reward-model stage", file=file,
                           field=f"stages.{stage.name}.reward_model")
    if rm is not None and rm not in kinds and not _is_hub(rm) and not Path(rm).exists():
        raise CascadeError(f"reward model '{rm}' is neither an rm stage of this recipe nor an existing path",
                           file=file, field=f"stages.{stage.name}.reward_model")
    judge = stage.judge
    if judge is not None and judge != "lexical" and judge.prompt_file is not None:
        # Read now, so a bad template fails before any stage trains, not when this one starts.
        _judge_template(stage)


def _check_verifier(name: str, where: str, file: str | None) -> None:
    from cascade.verifiers import registered_names

    if name not in registered_names():
        raise CascadeError(f"unknown verifier '{name}'; known: {', '.join(registered_names())}", file=file, field=where)


def _check_benchmark(name: str, where: str, file: str | None) -> Any:
    from cascade.eval.benchmarks import BENCHMARKS

    if name not in BENCHMARKS:
        raise CascadeError(f"unknown benchmark '{name}'; known: {', '.join(BENCHMARKS)}", file=file, field=where)
    return BENCHMARKS[name]


def _check_generator(spec: str, where: str, file: str | None) -> None:
    head = spec.split("/", 1)[0]
    if head not in GENERATORS or "/" not in spec:
        raise CascadeError(f"unknown generator '{spec}'; use toy/<part>, e.g. toy/sft/math or toy/eval/if",
                           file=file, field=where)


# ---------------------------------------------------------------- one stage


def trainer_stage(recipe: Recipe, name: str, layout: RunLayout) -> SFTStage | RMStage | GRPOStage:
    """The typed stage its trainer takes: the recipe's, with the seed filled in and a reward
    model named by stage turned into that stage's checkpoint path."""
    stage = recipe.resolved_stage(name)
    if isinstance(stage, GRPOStage) and stage.reward_model in layout.stage_names:
        stage = stage.model_copy(update={"reward_model": str(layout.output(stage.reward_model))})
    return stage


def run_stage(recipe: Recipe, stage: Any, layout: RunLayout, opts: RunOptions) -> dict[str, Any]:
    """Train one stage from its parent's checkpoint, evaluate it, write its manifest."""
    from cascade.engine.local import build_engine

    root = layout.root
    stage_dir = layout.stage_dir(stage.name)
    stage_dir.mkdir(parents=True, exist_ok=True)
    parent = recipe.parent_of(stage.name)
    parent_path = layout.output(parent)
    if not (parent_path / "config.json").exists():
        raise CascadeError(f"parent '{parent}' has no checkpoint at {parent_path}; run it first")
    seed = recipe.stage_seed(stage.name)
    settings = trainer_stage(recipe, stage.name, layout)
    rope_setting = recipe.rope_scaling_for(stage.name)
    rope = rope_setting.as_config() if rope_setting is not None else None
    manifest: dict[str, Any] = {
        "stage": stage.name, "kind": stage.kind, "parent": parent, "parent_path": str(parent_path),
        "status": "running", "config": stage.model_dump(mode="json"), "seed": seed,
        "domain": _stage_domain(recipe, stage), "started": _now(), OUTPUT_ID: uuid.uuid4().hex,
        INPUT_IDS: {name: read_output_id(layout.stage_dir(name) / MANIFEST)
                    for name in input_stages(recipe, stage).values()},
    }
    write_json_atomic(stage_dir / MANIFEST, manifest)
    started = time.perf_counter()

    if isinstance(stage, SFTStage):
        from cascade.trainers.sft import train_sft

        records, hashes = load_stage_records(stage, root, "sft")
        if stage.mode_mix != "both":
            records = [r for r in records if getattr(r, "mode", None) == stage.mode_mix]
        engine = build_engine(parent_path, settings, device=opts.device)
        engine.set_rope_scaling(rope)
        summary = train_sft(engine, records, settings, stage_dir, progress=opts.progress)
    elif isinstance(stage, RMStage):
        from cascade.trainers.rm import train_rm

        records, hashes = load_stage_records(stage, root, "preference")
        sampled_summary = None
        if stage.sampled_pairs is not None:
            sampled, sampled_hashes, sampled_summary = _sampled_pairs(stage, parent_path, settings, root,
                                                                      stage_dir, opts)
            records, hashes = list(records) + sampled, {**hashes, **sampled_hashes}
        engine = build_engine(parent_path, settings, head="score", device=opts.device)
        engine.set_rope_scaling(rope)
        summary = train_rm(engine, records, settings, stage_dir, progress=opts.progress)
        if sampled_summary is not None:
            summary["sampled_pairs"] = sampled_summary
    else:
        from cascade.trainers.grpo import train_grpo

        records, hashes = load_stage_records(stage, root, "prompt")
        rows = [r.model_dump(exclude_none=True) for r in records]
        engine = build_engine(parent_path, settings, device=opts.device)
        engine.set_rope_scaling(rope)
        engine.configure_optimizer(settings.optim_config(settings.planned_steps(len(rows))))
        reward_fn = judged_reward_fn(stage, settings.reward_model) if stage.judge is not None else None
        summary = train_grpo(engine, rows, settings, stage_dir, progress=opts.progress, reward_fn=reward_fn)
    train_s = time.perf_counter() - started

    eval_started = time.perf_counter()
    eval_info = None
    if not isinstance(stage, RMStage):
        eval_info = evaluate_stage(recipe, stage.name, engine, layout, opts)
    eval_s = time.perf_counter() - eval_started

    manifest.update({
        "status": "done", "finished": _now(), "data_hashes": hashes, "metrics": _summary_json(summary),
        "weights_sha256": weights_sha256(layout.output(stage.name)),
        "eval": eval_info, "timings": {"train_s": train_s, "eval_s": eval_s, "total_s": train_s + eval_s},
    })
    write_json_atomic(stage_dir / MANIFEST, manifest)
    return manifest


def judged_reward_fn(stage: GRPOStage, reward_model: str | None = None) -> Any:
    """The stage reward with the stage's judge: a served model's P("YES"), or ``lexical``."""
    from cascade.trainers.rollout import JudgedRewards, stage_reward_fn

    spec = stage.judge
    if spec is None or spec == "lexical":
        return stage_reward_fn(stage.reward, reward_model=reward_model, judge=spec)
    from cascade.verifiers.judge import JudgeClient

    template = _judge_template(stage)
    client = JudgeClient(spec.base_url, spec.model, api_key_env=spec.api_key_env, concurrency=spec.concurrency,
                         timeout_s=spec.timeout_s, retries=spec.retries, max_tokens=spec.max_tokens,
                         temperature=spec.temperature, top_logprobs=spec.top_logprobs,
                         enable_thinking=spec.enable_thinking)
    judged = JudgedRewards(client, template=template, fallback_reward=spec.fallback_reward,
                           max_error_share=spec.max_error_share)
    return stage_reward_fn(stage.reward, reward_model=reward_model, judge=judged)


def _judge_template(stage: GRPOStage) -> str | None:
    """The stage judge's prompt template from ``prompt_file`` (checked), or None: the built-in one."""
    from cascade.verifiers.swe import check_judge_template

    path = getattr(stage.judge, "prompt_file", None)
    if path is None:
        return None
    try:
        template = Path(path).expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        raise CascadeError(f"cannot read the judge prompt: {exc.strerror or exc}", file=path,
                           field=f"stages.{stage.name}.judge.prompt_file") from None
    check_judge_template(template, file=path)
    return template


def _sampled_pairs(stage: RMStage, parent_path: Path, settings: Any, root: Path, stage_dir: Path,
                   opts: RunOptions) -> tuple[list[dict[str, Any]], dict[str, str], dict[str, Any]]:
    """The reward model's pairs rated from its parent policy's replies: sampled once and
    written to the stage directory, and read back from there when the stage resumes, so a
    resumed stage trains on the same pairs."""
    from cascade.engine.local import build_engine
    from cascade.trainers.sampled_pairs import PAIRS_FILE, read_pairs, sample_rated_pairs, write_pairs
    from cascade.verifiers import registered_names

    spec = stage.sampled_pairs
    assert spec is not None
    prompts, hashes = load_sources(spec.data, root, "prompt")
    unknown = sorted({r.verifier for r in prompts} - set(registered_names()))
    if unknown:  # every reply would fail to score, and the stage would quietly get no pairs
        raise CascadeError(f"the prompts name unknown verifier(s) {', '.join(unknown)}; known: "
                           f"{', '.join(registered_names())}", field=f"stages.{stage.name}.sampled_pairs.data")
    path = stage_dir / PAIRS_FILE
    if path.exists():
        pairs = read_pairs(path)
        return pairs, hashes, {"pairs": len(pairs), "reused": str(path)}
    policy = build_engine(parent_path, settings, device=opts.device)
    rows = [r.model_dump(exclude_none=True) for r in prompts]
    pairs, summary = sample_rated_pairs(policy, rows, spec, settings.seed)
    del policy
    write_pairs(path, pairs)
    return pairs, hashes, summary


def _stage_domain(recipe: Recipe, stage: Any) -> str | None:
    """The eval set that measures an RL stage's own domain (the table of stage rewards says
    which); the report uses it for the paper's claim (a): each RL stage raises its own score."""
    from cascade.verifiers.stage_rewards import STAGE_REWARDS

    if not isinstance(stage, GRPOStage) or stage.reward not in STAGE_REWARDS:
        return None
    domain = STAGE_REWARDS[stage.reward].domain
    names = {es.name for suite in recipe.eval_suites_for(stage.name) for es in recipe.eval.get(suite, [])}
    return domain if domain in names else None


def _summary_json(summary: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(summary, default=str))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------- the whole recipe


def run_recipe(recipe: Recipe, opts: RunOptions) -> RunLayout:
    """Run the recipe's stages in order into the run directory (``opts`` says where, which
    stages, resume or not) and return its layout. Every check runs before anything trains."""
    root = Path(opts.out_dir or recipe.output_dir or f"runs/{recipe.name}")
    names = [s.name for s in recipe.stages]
    layout = RunLayout(root, names)
    for flag, value in (("--from-stage", opts.from_stage), ("--until", opts.until)):
        if value is not None and value not in names:
            raise CascadeError(f"{flag} '{value}' is not a stage; stages: {', '.join(names)}")
    check_recipe(recipe, opts.recipe_file)
    # The dry run's checks, hub sources included, before any training: a bad row in the last
    # stage's data must not cost the earlier stages' hours.
    preflight(recipe, opts.recipe_file, read_hub=True).raise_if_any()

    run_file = root / RUN_FILE
    if run_file.exists() and not (opts.resume or opts.from_stage or opts.rerun_changed):
        raise CascadeError(f"{root} already holds a run; continue it with --resume, re-run from a stage with "
                           "--from-stage NAME, or choose another --out")
    start = names.index(opts.from_stage) if opts.from_stage else 0
    stop = names.index(opts.until) + 1 if opts.until else len(names)
    hashes: dict[Path, str] = {}
    if not opts.rerun_changed:  # refuse before anything (run.json included) is written
        kept = recipe.stages[:start] if opts.from_stage else recipe.stages[:stop]
        for stage in kept:
            manifest = layout.manifest(stage.name)
            changes = stage_changes(recipe, stage, layout, manifest, hashes) if manifest else []
            if changes:
                raise changed_stage_error(stage, manifest or {}, changes, opts.recipe_file)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:  # a file where the run directory, or a parent, should be
        blocker = next((d for d in (root, *root.parents) if d.exists() and not d.is_dir()), exc.filename)
        raise CascadeError(f"cannot make the run directory {root}: {blocker} is a file; choose another --out "
                           "(or the recipe's output_dir)") from exc
    run = read_json(run_file) if run_file.exists() else {"recipe": recipe.name, "started": _now()}
    run.update({"recipe_file": opts.recipe_file, "seed": recipe.seed, "stages": names, "status": "running",
                "recipe_config": recipe.model_dump(mode="json")})
    write_json_atomic(run_file, run)

    materialize_generators(recipe, root)
    prepare_base(recipe, root, opts.echo)
    if opts.from_stage:
        _archive_from(layout, names[start:], opts.echo)
    for index, stage in enumerate(recipe.stages[:stop]):
        earlier = layout.manifest(stage.name)
        changes = stage_changes(recipe, stage, layout, earlier, hashes) if earlier else []
        if changes:  # only with --rerun-changed: without it the check above refused
            if not opts.rerun_changed:
                raise changed_stage_error(stage, earlier or {}, changes, opts.recipe_file)
            opts.echo(f"↻ {stage.name}: changed since it ran ({describe(changes)}); running it again")
            _archive_from(layout, [stage.name], opts.echo)
        elif earlier and earlier.get("status") == "done":
            opts.echo(f"✓ {stage.name}: done earlier, skipped")
            continue
        if index < start and not changes:
            continue  # before --from-stage: kept as it is
        manifest = (opts.stage_runner or run_stage)(recipe, stage, layout, opts)
        opts.echo(one_line_summary(manifest))
    run["status"] = "done" if stop == len(names) else "partial"
    run["finished"] = _now()
    write_json_atomic(run_file, run)
    return layout


def _archive_from(layout: RunLayout, names: list[str], echo: Callable[[str], None]) -> None:
    """--from-stage: keep the old outputs, renamed, so nothing finished is lost silently."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for name in names:
        d = layout.stage_dir(name)
        if d.exists():
            moved = d.with_name(f"{d.name}.replaced-{stamp}")
            d.rename(moved)
            echo(f"moved the earlier output of {name} to {moved}")


def one_line_summary(m: dict[str, Any]) -> str:
    """One line per finished stage for the terminal: steps, last loss or reward, sampled pairs, times."""
    metrics = m.get("metrics") or {}
    last = metrics.get("metrics") or {}
    bits = [f"✓ {m['stage']} ({m['kind']}, from {m['parent']})", f"{metrics.get('step', '?')} steps"]
    for key in ("loss", "reward_mean", "heldout_accuracy"):
        value = last.get(key, metrics.get(key))
        if isinstance(value, (int, float)):
            bits.append(f"{key} {value:.3f}")
    sampled = metrics.get("sampled_pairs")
    if isinstance(sampled, dict) and "replies" in sampled:
        bits.append(f"{sampled['pairs']} pairs rated from {sampled['replies']} replies ({sampled['passed']} passed)")
    t = m.get("timings", {})
    bits.append(f"train {t.get('train_s', 0):.0f}s, eval {t.get('eval_s', 0):.0f}s")
    return " · ".join(bits)

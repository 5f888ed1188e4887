"""Everything a run will read, checked before anything trains (``cascade run --dry-run``, and
the start of every real run).

- every stage becomes its trainer's input (the typed stage with its seed, planned steps,
  optimizer schedule and, for GRPO, the knobs of every curriculum sub-stage);
- the first rows of every local data source and eval file are read through the format's
  adapter and the record schema; a bad row names its file, line and every bad field;
- registered benchmarks are loaded with the registry's own loaders.

Hub datasets are read (streamed, first rows only) at the start of a real run, not in a dry
run, which must work offline. Generator data is built by the pipeline and not read here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cascade.config.recipe import GRPOStage, Recipe, RMStage, SFTStage
from cascade.errors import CascadeError
from cascade.pipeline.sources import stage_sources

# Rows read from the head of each source: enough to catch a wrong layout or a systematic bad
# field, cheap enough for the 100K-row released sets.
HEAD_ROWS = 50
# Bad rows reported per source; the rest of the file is checked when the stage loads it.
MAX_PROBLEMS_PER_SOURCE = 5


@dataclass
class Preflight:
    """What the checks found: problems stop the run; notes say what was not read and why."""

    problems: list[CascadeError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def raise_if_any(self) -> None:
        """Stop the run with every problem found, one per line; nothing when there is none."""
        if self.problems:
            lines = "\n".join(f"  {p.format()}" for p in self.problems)
            raise CascadeError(f"{len(self.problems)} problem(s) in the recipe's inputs; nothing was trained:\n{lines}")


def source_kind(stage: Any, sampled: bool) -> str:
    """The record kind a stage's source holds (``sampled``: an RM's sampled-pairs prompts)."""
    if sampled or isinstance(stage, GRPOStage):
        return "prompt"
    return "preference" if isinstance(stage, RMStage) else "sft"


def preflight(recipe: Recipe, file: str | None, *, read_hub: bool = False, head_rows: int = HEAD_ROWS) -> Preflight:
    """Check every stage's trainer inputs, data sources and eval sets; collect every problem."""
    result = Preflight()
    planned = {p.name: p.steps for p in recipe.plan()}
    for stage in recipe.stages:
        try:
            build_trainer_inputs(recipe, stage.name, planned[stage.name])
        except (CascadeError, ValueError) as exc:
            message = exc.message if isinstance(exc, CascadeError) else str(exc)
            result.problems.append(CascadeError(f"cannot build the trainer's inputs: {message}", file=file,
                                                field=f"stages.{stage.name}"))
        for where, source in stage_sources(stage):
            kind = source_kind(stage, ".sampled_pairs." in where)
            _check_source(source, kind, where, file, result, read_hub=read_hub, head_rows=head_rows)
    for suite, sets in recipe.eval.items():
        for i, es in enumerate(sets):
            _check_eval_set(es, f"eval.{suite}[{i}]", file, result, read_hub=read_hub, head_rows=head_rows)
    return result


def build_trainer_inputs(recipe: Recipe, name: str, planned: int | None) -> dict[str, Any]:
    """What the stage's trainer is built from, without a model: the resolved typed stage, its
    planned steps (``planned``, from the plan; None: only the data decides), its optimizer
    settings and, for GRPO, the knobs of every sub-stage. Raises on anything the trainer would
    refuse."""
    stage = recipe.resolved_stage(name)
    optim = stage.optim_config(planned or 1)
    knobs = []
    if isinstance(stage, GRPOStage):
        names = [s.name for s in stage.curriculum] or [None]
        knobs = [stage.substage_knobs(n) for n in names]
    return {"stage": stage, "planned_steps": planned, "optim": optim, "knobs": knobs}


def _check_source(source: Any, kind: str, where: str, file: str | None, result: Preflight, *,
                  read_hub: bool, head_rows: int) -> None:
    from cascade.data.hub import check_rows, source_rows

    if source.generator is not None:
        return
    if source.hub is not None and not read_hub:
        result.notes.append(f"{where}: hub dataset {source.hub} not read (read at the start of a real run)")
        return
    origin = source.path if source.path is not None else source.hub
    if source.path is not None and not Path(source.path).expanduser().exists():
        return  # check_recipe reports it (an error, or a warning in a dry run)
    try:
        rows = source_rows(origin, split=source.split, name=source.name, limit=head_rows, streaming=True)
        found = check_rows(rows, kind, source.format)
    except CascadeError as exc:
        found = [exc]
    for problem in found[:MAX_PROBLEMS_PER_SOURCE]:
        result.problems.append(_with_source(problem, where))
    if len(found) > MAX_PROBLEMS_PER_SOURCE:
        result.notes.append(f"{where}: {len(found) - MAX_PROBLEMS_PER_SOURCE} more bad row(s) in the first {head_rows}")


def _check_eval_set(es: Any, where: str, file: str | None, result: Preflight, *, read_hub: bool, head_rows: int) -> None:
    from cascade.data.hub import check_rows, is_hub_id, source_rows

    if es.generator is not None:
        return
    if es.benchmark is not None:
        from cascade.eval.benchmarks import BENCHMARKS, resolve_data_dir

        bench = BENCHMARKS.get(es.benchmark)
        if bench is None:
            return  # check_recipe reports it
        target = Path(es.path) if es.path else resolve_data_dir(None) / bench.default_path
        if not target.exists():
            return
        try:
            records = bench.load(path=target)
        except CascadeError as exc:
            result.problems.append(_with_source(exc, where))
            return
        except Exception as exc:  # a loader meeting a layout it does not know
            result.problems.append(CascadeError(f"the {es.benchmark} loader cannot read it ({type(exc).__name__}: "
                                                f"{exc})", file=str(target), field=where))
            return
        found = check_rows(((_place(target, i), r) for i, r in enumerate(records[:head_rows])), "prompt", "records")
    else:
        if is_hub_id(es.path) and not read_hub:
            result.notes.append(f"{where}: hub dataset {es.path} not read (read at the start of a real run)")
            return
        if not is_hub_id(es.path) and not Path(es.path).expanduser().exists():
            return
        try:
            found = check_rows(source_rows(es.path, limit=head_rows, streaming=True), "prompt", es.format)
        except CascadeError as exc:
            found = [exc]
    for problem in found[:MAX_PROBLEMS_PER_SOURCE]:
        result.problems.append(_with_source(problem, where))


def _place(path: Path, index: int) -> Any:
    from cascade.data.io import RowPlace

    return RowPlace(f"{path} (as loaded)", row=index)


def _with_source(problem: CascadeError, where: str) -> CascadeError:
    """The problem, saying which recipe entry reads the file."""
    return CascadeError(f"{problem.message} (read by {where})", file=problem.file, line=problem.line,
                        field=problem.field)


# ---------------------------------------------------------------- the knobs table


def stage_knobs(stage: SFTStage | RMStage | GRPOStage) -> dict[str, str]:
    """A stage's main knobs as short texts, for the dry-run table."""
    out = {"lr": f"{stage.lr:g}", "batch": str(stage.batch_size)}
    if stage.grad_accum > 1:
        out["batch"] += f" ({stage.grad_accum} micro)"
    if isinstance(stage, GRPOStage):
        out["group"] = str(stage.group_size)
        out["lengths"] = f"prompt {stage.max_prompt_len}, response {stage.max_response_len}"
        subs = []
        for sub in stage.curriculum:
            knobs = stage.substage_knobs(sub.name)
            until = (f" until step {sub.until_step}" if sub.until_step is not None else
                     f" until truncated < {sub.until_truncated_below:g}" if sub.until_truncated_below is not None else "")
            subs.append(f"{sub.name}: {knobs.max_prompt_len}/{knobs.max_response_len} t{knobs.temperature:g}"
                        f"{' overlong-filter' if knobs.overlong_filter else ''}{until}")
        out["sub-stages"] = "; ".join(subs) or "-"
    else:
        out["group"] = "-"
        out["lengths"] = f"seq {stage.max_seq_len}"
        out["sub-stages"] = "-"
    return out


def engine_text(device: str, engine: str = "local") -> str:
    """Which engine the stages run on: the local torch engine on ``device``, or cluster jobs
    (``cascade run --engine verl``)."""
    if engine != "local":
        return f"{engine} cluster jobs (verl for SFT and GRPO stages, TRL for reward models)"
    if device != "auto":
        return f"local (torch, {device})"
    try:
        import torch
    except ModuleNotFoundError:
        return "local (torch, not installed)"
    return f"local (torch, {'cuda' if torch.cuda.is_available() else 'cpu'}: auto)"


__all__ = ["HEAD_ROWS", "Preflight", "build_trainer_inputs", "engine_text", "preflight", "stage_knobs"]

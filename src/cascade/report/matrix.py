"""The cascade matrix: every eval set in every mode after every stage, read from a run directory.

It reads only the files the stage runner writes (``cascade.pipeline.layout``: run.json, each
stage's manifest.json and its per-sample eval JSONL), so it can be rebuilt at any time, also
while a run is still going. Values come from the samples, not from metrics.json, because the
paired comparisons behind the claims need each prompt's own score. Torch-free.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from cascade.errors import CascadeError
from cascade.pipeline.layout import EVAL_DIR, MANIFEST, RUN_FILE, stage_dir


@dataclass(frozen=True)
class Cell:
    """One eval set in one mode after one stage. Scores are in percent."""

    avg: float  # avg@k: mean over prompts of the per-prompt mean of `passed`
    se: float  # standard error of that mean over prompts; nan with one prompt
    n_prompts: int
    k: int  # samples per prompt (the most any prompt has)
    n_samples: int
    delta: float | None  # points against the previous evaluated stage; None without one
    per_prompt: Mapping[str, float] = field(repr=False)  # prompt id -> mean passed in [0, 1]


@dataclass(frozen=True)
class StageResult:
    """One stage of the recipe, evaluated or not (``cells`` is None when it is not a row)."""

    name: str
    kind: str | None
    parent: str | None
    domain: str | None
    status: str  # done | running | failed | not started
    timings: Mapping[str, float]
    cells: Mapping[str, Cell] | None
    skip_reason: str | None  # why the stage is not a row of the matrix
    # The chat modes an RL stage trains in (from its think_fraction in run.json's recipe copy);
    # None when unknown, which judges every mode.
    trained_modes: frozenset[str] | None = None


@dataclass(frozen=True)
class CascadeMatrix:
    """A run read from its directory: every stage, and the eval columns of those evaluated."""

    run_dir: Path
    recipe: str
    recipe_file: str | None
    seed: int | None
    run_status: str
    columns: list[str]  # "<set>.<mode>" in order of first appearance
    stages: list[StageResult]  # every stage in recipe order
    eval_seeds: list[int]  # sample seeds seen in the eval files

    @property
    def rows(self) -> list[StageResult]:
        """The evaluated stages, in recipe order: the rows of the matrix."""
        return [s for s in self.stages if s.cells is not None]

    def row(self, name: str) -> StageResult | None:
        """The evaluated stage called ``name``, or None."""
        return next((s for s in self.rows if s.name == name), None)


def build_matrix(run_dir: str | Path) -> CascadeMatrix:
    """Read a run directory into the stages x eval-sets matrix (avg@k in percent)."""
    root = Path(run_dir)
    run_path = root / RUN_FILE
    if not run_path.exists():
        raise CascadeError("not a cascade run directory (no run.json); pass the directory `cascade run` wrote",
                           file=str(run_path))
    run = _read_json_object(run_path)
    names = run.get("stages")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise CascadeError("must be a list of stage names", file=str(run_path), field="stages")

    stages: list[StageResult] = []
    seeds: set[int] = set()
    columns: list[str] = []
    previous: Mapping[str, Cell] | None = None
    planned = _planned_kinds(run)
    modes = _planned_modes(run)
    for i, name in enumerate(names, start=1):
        stage = _read_stage(stage_dir(root, i, name), name, planned.get(name), seeds)
        stage = replace(stage, trained_modes=modes.get(name))
        if stage.cells is not None:
            stage = replace(stage, cells=_with_deltas(stage.cells, previous))
            previous = stage.cells
            columns += [c for c in stage.cells if c not in columns]
        stages.append(stage)
    seed, recipe_file = run.get("seed"), run.get("recipe_file")
    return CascadeMatrix(
        run_dir=root, recipe=str(run.get("recipe", root.name)),
        recipe_file=None if recipe_file is None else str(recipe_file),
        seed=seed if isinstance(seed, int) else None, run_status=str(run.get("status", "unknown")),
        columns=columns, stages=stages, eval_seeds=sorted(seeds),
    )


def _read_json_object(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CascadeError(f"cannot read: {exc}", file=str(path)) from None
    except json.JSONDecodeError as exc:
        raise CascadeError(f"not valid JSON: {exc.msg} (column {exc.colno})", file=str(path), line=exc.lineno) from None
    if not isinstance(data, dict):
        raise CascadeError("must hold a JSON object", file=str(path))
    return data


def _planned_kinds(run: Mapping[str, Any]) -> dict[str, str]:
    """Stage kinds from the recipe copy in run.json, so a stage not started yet still shows its kind."""
    config = run.get("recipe_config")
    stages = config.get("stages") if isinstance(config, dict) else None
    if not isinstance(stages, list):
        return {}
    return {s["name"]: s["kind"] for s in stages
            if isinstance(s, dict) and isinstance(s.get("name"), str) and isinstance(s.get("kind"), str)}


def _planned_modes(run: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    """The modes each GRPO stage trains in: think_fraction 1 -> think, 0 -> no_think, else both
    (the recipe's default think_fraction is 1, as for the paper's reasoning stages)."""
    config = run.get("recipe_config")
    stages = config.get("stages") if isinstance(config, dict) else None
    out: dict[str, frozenset[str]] = {}
    for s in stages if isinstance(stages, list) else []:
        if not (isinstance(s, dict) and s.get("kind") == "grpo" and isinstance(s.get("name"), str)):
            continue
        fraction = s.get("think_fraction", 1.0)
        if not isinstance(fraction, (int, float)):
            continue
        out[s["name"]] = frozenset({"think"} if fraction >= 1 else {"no_think"} if fraction <= 0
                                   else {"think", "no_think"})
    return out


def _optional_str(manifest: Mapping[str, Any], key: str, path: Path) -> str | None:
    value = manifest.get(key)
    if value is not None and not isinstance(value, str):
        raise CascadeError(f"must be a string or null, got {value!r}", file=str(path), field=key)
    return value


def _read_stage(stage_dir: Path, name: str, planned_kind: str | None, seeds: set[int]) -> StageResult:
    if not stage_dir.exists():
        return StageResult(name, planned_kind, None, None, "not started", {}, None, "not started yet")
    path = stage_dir / MANIFEST
    if not path.exists():
        raise CascadeError(f"stage '{name}' has a directory but no manifest", file=str(path))
    manifest = _read_json_object(path)
    status = _optional_str(manifest, "status", path)
    if status is None:
        raise CascadeError("missing", file=str(path), field="status")
    kind, parent, domain = (_optional_str(manifest, key, path) for key in ("kind", "parent", "domain"))
    timings = manifest.get("timings") or {}
    if not isinstance(timings, dict) or not all(isinstance(v, (int, float)) for v in timings.values()):
        raise CascadeError("must map names to seconds", file=str(path), field="timings")

    def skipped(reason: str) -> StageResult:
        return StageResult(name, kind, parent, domain, status, timings, None, reason)

    if status != "done":
        return skipped(f"{status}, not finished")
    evaluation = manifest.get("eval")
    if evaluation is None:
        return skipped("not evaluated" + (": a reward model, the policy did not change" if kind == "rm" else ""))
    if not isinstance(evaluation, dict):
        raise CascadeError("must be an object or null", file=str(path), field="eval")
    sets, eval_dir = evaluation.get("sets"), evaluation.get("dir", EVAL_DIR)
    if not isinstance(sets, list) or not all(isinstance(s, str) for s in sets):
        raise CascadeError("must be a list of '<set>.<mode>' names", file=str(path), field="eval.sets")
    if not isinstance(eval_dir, str):
        raise CascadeError("must be a directory name", file=str(path), field="eval.dir")
    if not sets:
        return skipped("evaluated on no eval set")
    cells = {column: _read_cell(stage_dir / eval_dir / f"{column}.jsonl", seeds) for column in sets}
    return StageResult(name, kind, parent, domain, status, timings, cells, None)


def _read_cell(path: Path, seeds: set[int]) -> Cell:
    """Per prompt the mean of `passed` over its samples, then their mean and standard error."""
    by_prompt: dict[str, list[float]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise CascadeError("eval samples listed in the stage manifest are missing", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CascadeError(f"cannot read: {exc}", file=str(path)) from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CascadeError(f"not valid JSON: {exc.msg}", file=str(path), line=number) from None
        if not isinstance(row, dict):
            raise CascadeError("each line must be a JSON object", file=str(path), line=number)
        if "id" not in row:
            raise CascadeError("missing", file=str(path), line=number, field="id")
        passed = row.get("passed")
        # bool is an int subclass; 0/1 are accepted for files written by other tools.
        if not isinstance(passed, (bool, int, float)) or not 0 <= passed <= 1:
            raise CascadeError(f"must be true/false, got {passed!r}", file=str(path), line=number, field="passed")
        by_prompt.setdefault(str(row["id"]), []).append(float(passed))
        if isinstance(row.get("seed"), int):
            seeds.add(row["seed"])
    if not by_prompt:
        raise CascadeError("holds no samples", file=str(path))
    per_prompt = {pid: sum(v) / len(v) for pid, v in by_prompt.items()}
    values = list(per_prompt.values())
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else math.nan
    return Cell(avg=100.0 * statistics.fmean(values), se=100.0 * se, n_prompts=len(values),
                k=max(len(v) for v in by_prompt.values()), n_samples=sum(len(v) for v in by_prompt.values()),
                delta=None, per_prompt=per_prompt)


def _with_deltas(cells: Mapping[str, Cell], previous: Mapping[str, Cell] | None) -> dict[str, Cell]:
    if previous is None:
        return dict(cells)
    return {c: replace(cell, delta=cell.avg - previous[c].avg if c in previous else None) for c, cell in cells.items()}

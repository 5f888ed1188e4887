"""The cascade report: every eval set after every stage, and the paper's claims judged on it.

It reads only the files the stage runner writes (run.json, each stage's manifest.json and its
per-sample eval JSONL), so ``cascade report RUN_DIR`` rebuilds the same report at any time,
also while a run is still going. Values come from the samples, not from metrics.json, because
the paired comparisons behind the claims need each prompt's own score.

Torch-free by design: the report must open on a laptop that never trained anything.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from cascade.errors import CascadeError
from cascade.eval.samples_file import write_json_atomic, write_text_atomic

if TYPE_CHECKING:
    from rich.console import Console

RUN_FILE = "run.json"
MANIFEST = "manifest.json"

# "Beyond noise": a paired mean difference larger than this many standard errors (for a
# normal mean, a false "gain" this large happens about 2% of the time; with only a handful
# of prompts the normal approximation is rough, which the report shows through n).
NOISE_SE = 2.0
# Claim (b): the paper sees later stages move earlier benchmarks by about 1-2 points (4 at
# worst); a gain counts as kept while the later drop stays within this many points.
KEEP_DROP_POINTS = 5.0
# Claim (c) compares the two modes on the eval set of this name (the toy world's and the
# runner's name for the math domain).
MATH_SET = "math"

HOLDS = "holds"
FAILS = "does not hold"


# ---------------------------------------------------------------- the matrix


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
class Stage:
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
    run_dir: Path
    recipe: str
    recipe_file: str | None
    seed: int | None
    run_status: str
    columns: list[str]  # "<set>.<mode>" in order of first appearance
    stages: list[Stage]  # every stage in recipe order
    eval_seeds: list[int]  # sample seeds seen in the eval files

    @property
    def rows(self) -> list[Stage]:
        return [s for s in self.stages if s.cells is not None]

    def row(self, name: str) -> Stage | None:
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

    stages: list[Stage] = []
    seeds: set[int] = set()
    columns: list[str] = []
    previous: Mapping[str, Cell] | None = None
    planned = _planned_kinds(run)
    modes = _planned_modes(run)
    for i, name in enumerate(names, start=1):
        stage = _read_stage(root / "stages" / f"{i:02d}-{name}", name, planned.get(name), seeds)
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


def _read_stage(stage_dir: Path, name: str, planned_kind: str | None, seeds: set[int]) -> Stage:
    if not stage_dir.exists():
        return Stage(name, planned_kind, None, None, "not started", {}, None, "not started yet")
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

    def skipped(reason: str) -> Stage:
        return Stage(name, kind, parent, domain, status, timings, None, reason)

    if status != "done":
        return skipped(f"{status}, not finished")
    evaluation = manifest.get("eval")
    if evaluation is None:
        return skipped("not evaluated" + (": a reward model, the policy did not change" if kind == "rm" else ""))
    if not isinstance(evaluation, dict):
        raise CascadeError("must be an object or null", file=str(path), field="eval")
    sets, eval_dir = evaluation.get("sets"), evaluation.get("dir", "eval")
    if not isinstance(sets, list) or not all(isinstance(s, str) for s in sets):
        raise CascadeError("must be a list of '<set>.<mode>' names", file=str(path), field="eval.sets")
    if not isinstance(eval_dir, str):
        raise CascadeError("must be a directory name", file=str(path), field="eval.dir")
    if not sets:
        return skipped("evaluated on no eval set")
    cells = {column: _read_cell(stage_dir / eval_dir / f"{column}.jsonl", seeds) for column in sets}
    return Stage(name, kind, parent, domain, status, timings, cells, None)


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


# ---------------------------------------------------------------- the paper's claims


@dataclass(frozen=True)
class Paired:
    """after - before over the prompts both were evaluated on; percent and points."""

    n: int
    before: float
    after: float
    diff: float
    se: float

    @property
    def beyond_noise(self) -> bool:
        return self.diff > NOISE_SE * self.se

    @property
    def kept(self) -> bool:
        return self.diff >= -KEEP_DROP_POINTS


# How each claim judges one paired comparison; `cascade.pipeline.pooled` judges its pooled
# comparisons with the same table.
CLAIM_RULES: dict[str, Callable[[Paired], bool]] = {
    "a": lambda p: p.beyond_noise, "b": lambda p: p.kept, "c": lambda p: p.beyond_noise,
}


def paired_difference(after: Mapping[str, float], before: Mapping[str, float]) -> Paired | None:
    """Paired comparison of per-prompt scores; None when fewer than two prompts are shared."""
    shared = sorted(after.keys() & before.keys())
    if len(shared) < 2:
        return None
    diffs = [after[p] - before[p] for p in shared]
    return Paired(
        n=len(shared),
        before=100.0 * statistics.fmean(before[p] for p in shared),
        after=100.0 * statistics.fmean(after[p] for p in shared),
        diff=100.0 * statistics.fmean(diffs),
        se=100.0 * statistics.stdev(diffs) / math.sqrt(len(shared)),
    )


@dataclass(frozen=True)
class Finding:
    """One comparison under a claim. ``outcome`` is None when it cannot be measured."""

    subject: str
    outcome: bool | None
    detail: str  # the numbers in words, or why it is not measurable
    paired: Paired | None = None
    words: tuple[str, str] = (HOLDS, FAILS)  # what a measured outcome is called: (True, False)

    @property
    def verdict(self) -> str:
        if self.outcome is None:
            return f"not measurable ({self.detail})"
        return self.words[0] if self.outcome else self.words[1]

    @property
    def line(self) -> str:
        if self.outcome is None:
            return f"{self.subject}: {self.verdict}"
        return f"{self.subject}: {self.detail}: {self.verdict}"


@dataclass(frozen=True)
class Claim:
    key: str
    title: str
    rule: str
    findings: list[Finding]
    extra: list[Finding] = field(default_factory=list)  # shown for information, not judged

    @property
    def outcome(self) -> bool | None:
        return all_measured_hold([f.outcome for f in self.findings])

    @property
    def verdict(self) -> str:
        if self.outcome is None:
            reasons = sorted({f.detail for f in self.findings})
            if len(reasons) > 2:  # one reason per stage would make the verdict line unreadable
                return f"not measurable (none of {len(self.findings)} comparisons; reasons below)"
            return f"not measurable ({'; '.join(reasons)})"
        return HOLDS if self.outcome else FAILS

    @property
    def tally(self) -> str:
        return outcome_tally([f.outcome for f in self.findings])


def all_measured_hold(outcomes: list[bool | None]) -> bool | None:
    """A claim holds when every measurable comparison does; None when none is measurable."""
    measured = [o for o in outcomes if o is not None]
    return all(measured) if measured else None


def outcome_tally(outcomes: list[bool | None]) -> str:
    counts = [sum(o is want for o in outcomes) for want in (True, False, None)]
    return f"{counts[0]} hold, {counts[1]} do not, {counts[2]} not measurable"


def judge_claims(matrix: CascadeMatrix) -> list[Claim]:
    return [claim_own_domain_gain(matrix), claim_gains_kept(matrix), claim_think_beats_no_think(matrix)]


def _rl_stages(matrix: CascadeMatrix) -> list[Stage]:
    return [s for s in matrix.stages if s.kind == "grpo"]


NO_RL_STAGE = Finding("RL stages", None, "the run has no RL (grpo) stage")


def _domain_columns(stage: Stage) -> list[str]:
    # Set names may contain dots; the mode never does.
    return [c for c in (stage.cells or {}) if c.rsplit(".", 1)[0] == stage.domain]


def _unmeasurable_stage(stage: Stage) -> Finding | None:
    """Why an RL stage cannot be judged at all, or None when it can."""
    if stage.cells is None:
        return Finding(stage.name, None, f"{stage.name} is {stage.skip_reason}")
    if stage.domain is None:
        return Finding(stage.name, None, f"no eval set measures {stage.name}'s domain")
    if not _domain_columns(stage):
        return Finding(stage.name, None, f"{stage.name} was not evaluated on its domain set '{stage.domain}'")
    return None


def paired_text(p: Paired) -> str:
    return f"{p.before:.1f} -> {p.after:.1f} ({p.diff:+.1f} points, SE {p.se:.1f}, {p.n} prompts)"


def claim_own_domain_gain(matrix: CascadeMatrix) -> Claim:
    findings: list[Finding] = []
    extra: list[Finding] = []
    for stage in _rl_stages(matrix):
        if (blocked := _unmeasurable_stage(stage)) is not None:
            findings.append(blocked)
            continue
        start = matrix.row(stage.parent or "")
        for column in _domain_columns(stage):
            subject = f"{stage.name}, {column} vs its start {stage.parent}"
            trained = stage.trained_modes is None or column.rsplit(".", 1)[1] in stage.trained_modes
            if start is None:
                finding = Finding(subject, None, f"its start '{stage.parent}' was not evaluated")
            elif column not in (start.cells or {}):
                finding = Finding(subject, None, f"its start '{stage.parent}' has no {column}")
            elif (p := paired_difference(stage.cells[column].per_prompt, start.cells[column].per_prompt)) is None:
                finding = Finding(subject, None, f"fewer than 2 prompts of {column} shared with its start")
            else:
                finding = Finding(subject if trained else f"{subject} (a mode the stage does not train in)",
                                  CLAIM_RULES["a"](p), paired_text(p), p)
            (findings if trained else extra).append(finding)
    return Claim(
        "a", "Each RL stage raises its own domain's score over its start",
        "Paired over the same prompts: per prompt, the mean of `passed` over its samples after the stage minus "
        "before it (the stage's parent). Beyond noise means mean difference > "
        f"{NOISE_SE:g} x SE, SE = std(ddof=1)/sqrt(n prompts). Compared: the stage's own domain set in every "
        "mode the stage trains in (think_fraction 1: think, 0: no_think, else both); the claim holds only if "
        "every measurable comparison does. Its domain in the other mode is listed for information.",
        findings or [NO_RL_STAGE], [f for f in extra if f.outcome is not None],
    )


def claim_gains_kept(matrix: CascadeMatrix) -> Claim:
    findings: list[Finding] = []
    last = matrix.rows[-1] if matrix.rows else None
    for stage in _rl_stages(matrix):
        if (blocked := _unmeasurable_stage(stage)) is not None:
            findings.append(blocked)
            continue
        for column in _domain_columns(stage):
            subject = f"{column}: after {stage.name} vs at the last stage"
            if last is None or last.name == stage.name:
                findings.append(Finding(subject, None, f"no stage was evaluated after {stage.name}"))
                continue
            subject = f"{column}: after {stage.name} vs at {last.name}"
            if column not in (last.cells or {}):
                findings.append(Finding(subject, None, f"{last.name} has no {column}"))
            elif (p := paired_difference(last.cells[column].per_prompt, stage.cells[column].per_prompt)) is None:
                findings.append(Finding(subject, None, f"fewer than 2 prompts of {column} shared"))
            else:
                findings.append(Finding(subject, CLAIM_RULES["b"](p), paired_text(p), p, ("kept", "lost")))
    return Claim(
        "b", "Later stages keep the earlier domains' gains",
        "For each RL stage, its domain's score at the last evaluated stage minus right after that stage, "
        f"paired over the shared prompts. Kept: the drop is at most {KEEP_DROP_POINTS:g} points.",
        findings or [NO_RL_STAGE],
    )


def claim_think_beats_no_think(matrix: CascadeMatrix) -> Claim:
    think, no_think = f"{MATH_SET}.think", f"{MATH_SET}.no_think"

    def compare(stage: Stage) -> Finding:
        subject = f"{stage.name}: {think} vs {no_think}"
        cells = stage.cells or {}
        if think not in cells or no_think not in cells:
            return Finding(subject, None, f"{stage.name} was not evaluated on {MATH_SET} in both modes")
        p = paired_difference(cells[think].per_prompt, cells[no_think].per_prompt)
        if p is None:
            return Finding(subject, None, f"fewer than 2 {MATH_SET} prompts shared by both modes")
        return Finding(subject, CLAIM_RULES["c"](p), f"{p.after:.1f} vs {p.before:.1f} ({p.diff:+.1f} points, "
                                               f"SE {p.se:.1f}, {p.n} prompts)", p)

    rows = matrix.rows
    findings = [compare(rows[-1])] if rows else [Finding("final stage", None, "no stage was evaluated")]
    extra = [f for f in map(compare, rows[:-1]) if f.outcome is not None]
    return Claim(
        "c", "Thinking mode beats instruct mode on multi-step math",
        f"At the last evaluated stage, {think} minus {no_think}, paired per prompt; holds when the mean "
        f"difference > {NOISE_SE:g} x SE. Earlier stages with both modes are listed for information.",
        findings, extra,
    )


# ---------------------------------------------------------------- rendering


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "n/a" if value is None or math.isnan(value) else format(value, spec)


def _cell_text(cell: Cell | None) -> str:
    if cell is None:
        return "-"
    text = f"{cell.avg:.1f} ± {_fmt(cell.se)}"
    return text if cell.delta is None else f"{text} ({cell.delta:+.1f})"


def _sizes(matrix: CascadeMatrix, column: str) -> str:
    sizes = sorted({(c.n_prompts, c.k, c.n_samples) for s in matrix.rows if (c := (s.cells or {}).get(column))})
    return "; ".join(f"{n} prompts x {k} samples ({total} in all)" for n, k, total in sizes)


def _seeds_text(seeds: list[int]) -> str:
    if not seeds:
        return "none"
    if seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2:
        return f"{seeds[0]}-{seeds[-1]}"
    return ", ".join(map(str, seeds))


def render_markdown(matrix: CascadeMatrix, claims: list[Claim]) -> str:
    out = [f"# Cascade report: {matrix.recipe}", ""]
    out.append(f"- run directory: `{matrix.run_dir}` (status: {matrix.run_status})")
    if matrix.recipe_file:
        out.append(f"- recipe file: `{matrix.recipe_file}`")
    seed = "unknown" if matrix.seed is None else matrix.seed
    out.append(f"- recipe seed: {seed}; eval sample seeds: {_seeds_text(matrix.eval_seeds)}")
    out += ["", "## Scores after every stage", ""]
    if matrix.rows:
        out.append("avg@k in percent ± standard error over prompts; in parentheses the change in points against "
                   "the previous evaluated stage.")
        out += ["", "| stage | kind | " + " | ".join(matrix.columns) + " |",
                "|---|---|" + "---:|" * len(matrix.columns)]
        for s in matrix.rows:
            cells = " | ".join(_cell_text((s.cells or {}).get(c)) for c in matrix.columns)
            out.append(f"| {s.name} | {s.kind or '?'} | {cells} |")
    else:
        out.append("No stage has been evaluated yet.")
    skipped = [s for s in matrix.stages if s.skip_reason]
    if skipped:
        out += ["", "Not in the table: " + "; ".join(f"{s.name} ({s.skip_reason})" for s in skipped) + "."]
    if matrix.columns:
        out += ["", "What backs each column (per stage; one line when every stage used the same):", ""]
        out += [f"- {c}: {_sizes(matrix, c)}" for c in matrix.columns]
    out += ["", "## Time per stage", "", "| stage | kind | status | train (s) | eval (s) | total (s) |",
            "|---|---|---|---:|---:|---:|"]
    for s in matrix.stages:
        t = s.timings
        out.append(f"| {s.name} | {s.kind or '-'} | {s.status} | {_fmt(t.get('train_s'))} | "
                   f"{_fmt(t.get('eval_s'))} | {_fmt(t.get('total_s'))} |")
    out += ["", "## The paper's claims, measured on the held-out eval sets", ""]
    for claim in claims:
        out += [f"### ({claim.key}) {claim.title}", "", f"Rule: {claim.rule}", "",
                f"**Verdict: {claim.verdict}** ({claim.tally})", ""]
        out += [f"- {f.line}" for f in claim.findings]
        if claim.extra:
            out += ["", "For information (not judged):", ""]
            out += [f"- {f.line}" for f in claim.extra]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def render_csv(matrix: CascadeMatrix) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["stage", "set.mode", "avg", "se", "n_prompts", "k", "delta"])
    for s in matrix.rows:
        for column, c in (s.cells or {}).items():
            writer.writerow([s.name, column, f"{c.avg:.4f}", "" if math.isnan(c.se) else f"{c.se:.4f}",
                             c.n_prompts, c.k, "" if c.delta is None else f"{c.delta:.4f}"])
    return buffer.getvalue()


def _num(value: float | None) -> float | None:
    """JSON has no NaN; a missing number is null."""
    return None if value is None or math.isnan(value) else value


def _paired_json(p: Paired | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {"n_prompts": p.n, "before": p.before, "after": p.after, "diff": p.diff, "se": p.se,
            "beyond_noise": p.beyond_noise}


def _finding_json(f: Finding) -> dict[str, Any]:
    return {"subject": f.subject, "outcome": f.outcome, "verdict": f.verdict, "detail": f.detail,
            "paired": _paired_json(f.paired)}


def report_json(matrix: CascadeMatrix, claims: list[Claim]) -> dict[str, Any]:
    """Everything in the report, machine-readable (per-prompt scores stay in the eval files)."""
    return {
        "recipe": matrix.recipe, "recipe_file": matrix.recipe_file, "run_dir": str(matrix.run_dir),
        "run_status": matrix.run_status, "seed": matrix.seed, "eval_seeds": matrix.eval_seeds,
        "columns": matrix.columns, "units": "avg@k and se in percent, delta and diffs in points",
        "rules": {"noise_se": NOISE_SE, "keep_drop_points": KEEP_DROP_POINTS, "math_set": MATH_SET},
        "stages": [
            {"name": s.name, "kind": s.kind, "parent": s.parent, "domain": s.domain, "status": s.status,
             "skip_reason": s.skip_reason, "timings": dict(s.timings),
             "cells": None if s.cells is None else {
                 c: {"avg": cell.avg, "se": _num(cell.se), "n_prompts": cell.n_prompts, "k": cell.k,
                     "n_samples": cell.n_samples, "delta": cell.delta} for c, cell in s.cells.items()}}
            for s in matrix.stages
        ],
        "claims": [
            {"key": c.key, "title": c.title, "rule": c.rule, "verdict": c.verdict, "outcome": c.outcome,
             "findings": [_finding_json(f) for f in c.findings], "extra": [_finding_json(f) for f in c.extra]}
            for c in claims
        ],
    }


@dataclass(frozen=True)
class Report:
    matrix: CascadeMatrix
    claims: list[Claim]
    files: list[Path]


def write_report(run_dir: str | Path, matrix: CascadeMatrix | None = None, *, png: bool = True) -> Report:
    """Write report.md, cascade.csv, cascade.json and (unless png=False) cascade.png into run_dir."""
    root = Path(run_dir)
    matrix = matrix if matrix is not None else build_matrix(root)
    claims = judge_claims(matrix)
    files = [root / "report.md", root / "cascade.csv", root / "cascade.json"]
    write_text_atomic(files[0], render_markdown(matrix, claims))
    write_text_atomic(files[1], render_csv(matrix))
    write_json_atomic(files[2], report_json(matrix, claims))
    if png:
        from cascade.pipeline.plot import write_heatmap

        files.append(write_heatmap(matrix, root / "cascade.png"))
    return Report(matrix, claims, files)


# ---------------------------------------------------------------- terminal


def print_matrix(matrix: CascadeMatrix, console: Console) -> None:
    """The matrix as a rich table: avg@k ± SE, the change against the previous row coloured."""
    from rich.table import Table
    from rich.text import Text

    skipped = [s for s in matrix.stages if s.skip_reason]
    skipped_line = "not in the table: " + "; ".join(f"{s.name} ({s.skip_reason})" for s in skipped)
    if not matrix.rows:
        console.print(f"cascade {matrix.recipe}: no stage has been evaluated yet", markup=False, highlight=False)
        console.print(skipped_line, style="dim", markup=False, highlight=False)
        return
    table = Table(title=f"cascade {matrix.recipe}: avg@k (%) ± SE, change vs previous evaluated stage")
    table.add_column("stage")
    for column in matrix.columns:
        table.add_column(column, justify="right")
    for s in matrix.rows:
        texts = []
        for column in matrix.columns:
            cell = (s.cells or {}).get(column)
            if cell is None:
                texts.append(Text("-", style="dim"))
                continue
            text = Text(f"{cell.avg:.1f} ± {_fmt(cell.se)}")
            if cell.delta is not None:
                style = "green" if cell.delta > 0 else "red" if cell.delta < 0 else "dim"
                text.append(f" ({cell.delta:+.1f})", style=style)
            texts.append(text)
        table.add_row(s.name, *texts)
    console.print(table)
    if skipped:
        console.print(skipped_line, style="dim", markup=False, highlight=False)


VERDICT_STYLES = {True: "green", False: "red", None: "yellow"}  # outcome -> terminal colour


def print_claims(claims: list[Claim], console: Console) -> None:
    styles = VERDICT_STYLES
    for claim in claims:
        console.print(f"({claim.key}) {claim.title}: ", end="", markup=False, highlight=False)
        console.print(claim.verdict, style=f"bold {styles[claim.outcome]}", markup=False, highlight=False)
        for f in claim.findings:
            console.print(f"    {f.line}", style=styles[f.outcome], markup=False, highlight=False)

"""The report in words and numbers: Markdown, CSV, JSON and the terminal's rich tables."""

from __future__ import annotations

import csv
import io
import math
from typing import TYPE_CHECKING, Any

from cascade.report.claims import KEEP_DROP_POINTS, MATH_SET, NOISE_SE, Claim, Finding, Paired
from cascade.report.matrix import CascadeMatrix, Cell

if TYPE_CHECKING:
    from rich.console import Console


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
    """report.md: run facts, the matrix with deltas, what backs each column, time per stage, the claims."""
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
    """cascade.csv: one row per stage and eval column (avg, se, n_prompts, k, delta)."""
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
    """Each claim's verdict and its comparisons on the terminal, coloured by outcome."""
    styles = VERDICT_STYLES
    for claim in claims:
        console.print(f"({claim.key}) {claim.title}: ", end="", markup=False, highlight=False)
        console.print(claim.verdict, style=f"bold {styles[claim.outcome]}", markup=False, highlight=False)
        for f in claim.findings:
            console.print(f"    {f.line}", style=styles[f.outcome], markup=False, highlight=False)

"""The paper's claims pooled over several runs of one recipe with different seeds.

One run's report judges each comparison against the noise of its eval samples only. Whether
a stage's gain survives a different training seed is a separate question, and the issue
behind the toy cascade asks for it ("beyond seed noise: run at least 2 seeds"). Here each
comparison measured in at least two of the runs is pooled (matched by its subject):

- the pooled difference is the mean of the runs' paired differences;
- its standard error is the larger of two estimates: the runs' own standard errors combined
  as for a mean of independent estimates, sqrt(sum se_i^2) / m, and the spread between the
  runs, stdev(diff_i) / sqrt(m). The first misses seed-to-seed variation; the second is
  unreliable with two or three runs; taking the larger never hides either.

The verdict rule of each claim is the single-run one (``claims.CLAIM_RULES``). Torch-free.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from cascade.data.io import write_json_atomic, write_text_atomic
from cascade.report.claims import (
    CLAIM_RULES,
    FAILS,
    HOLDS,
    Claim,
    Finding,
    Paired,
    all_measured_hold,
    judge_claims,
    outcome_tally,
)
from cascade.report.matrix import build_matrix
from cascade.report.render import VERDICT_STYLES

if TYPE_CHECKING:
    from rich.console import Console


@dataclass(frozen=True)
class RunClaims:
    """One run's claims, labelled for the pooled report (e.g. by its seed)."""

    label: str
    run_dir: str
    claims: list[Claim]


@dataclass(frozen=True)
class PooledFinding:
    """One comparison across the runs: each run's finding and the pooled difference."""

    subject: str
    per_run: list[Finding | None]  # in run order; None where the run has no such comparison
    pooled: Paired | None  # None unless at least two runs measured it
    outcome: bool | None
    words: tuple[str, str]

    @property
    def verdict(self) -> str:
        """The pooled outcome in words, or why it cannot be measured."""
        if self.outcome is None:
            return "not measurable (measured in fewer than two runs)"
        return self.words[0] if self.outcome else self.words[1]


@dataclass(frozen=True)
class PooledClaim:
    """One claim judged on the pooled comparisons."""

    key: str
    title: str
    findings: list[PooledFinding]

    @property
    def outcome(self) -> bool | None:
        """As ``Claim.outcome``, over the pooled comparisons."""
        return all_measured_hold([f.outcome for f in self.findings])

    @property
    def verdict(self) -> str:
        """The pooled outcome in words."""
        return "not measurable" if self.outcome is None else (HOLDS if self.outcome else FAILS)

    @property
    def tally(self) -> str:
        """How many pooled comparisons hold, do not, and cannot be measured."""
        return outcome_tally([f.outcome for f in self.findings])


def pool_paired(values: Sequence[Paired]) -> Paired:
    """Pool one comparison measured in several runs (see the module docstring)."""
    if len(values) < 2:
        raise ValueError("pooling needs at least two runs")
    m = len(values)
    diffs = [p.diff for p in values]
    within = math.sqrt(sum(p.se ** 2 for p in values)) / m
    between = statistics.stdev(diffs) / math.sqrt(m)
    return Paired(
        n=sum(p.n for p in values),
        before=statistics.fmean(p.before for p in values),
        after=statistics.fmean(p.after for p in values),
        diff=statistics.fmean(diffs),
        se=max(within, between),
    )


def pool_claims(runs: Sequence[RunClaims]) -> list[PooledClaim]:
    """Match each claim's judged comparisons across runs by their subject and pool them."""
    if not runs:
        return []
    pooled = []
    for claim in runs[0].claims:
        per_run = [{f.subject: f for f in _claim(r, claim.key).findings} for r in runs]
        subjects = list(dict.fromkeys(s for findings in per_run for s in findings))
        findings = []
        for subject in subjects:
            found = [findings_of_run.get(subject) for findings_of_run in per_run]
            measured = [f.paired for f in found if f is not None and f.paired is not None]
            words = next(f.words for f in found if f is not None)
            p = pool_paired(measured) if len(measured) >= 2 else None
            outcome = CLAIM_RULES[claim.key](p) if p is not None else None
            findings.append(PooledFinding(subject, found, p, outcome, words))
        pooled.append(PooledClaim(claim.key, claim.title, findings))
    return pooled


def _claim(run: RunClaims, key: str) -> Claim:
    for claim in run.claims:
        if claim.key == key:
            return claim
    raise ValueError(f"run {run.label} has no claim ({key})")


def claims_of_runs(run_dirs: Sequence[str | Path]) -> list[RunClaims]:
    """Each run's claims, labelled 'seed N' from its run.json (or its directory name)."""
    matrices = [build_matrix(d) for d in run_dirs]
    labels = [f"seed {m.seed}" if m.seed is not None else Path(d).name for m, d in zip(matrices, run_dirs)]
    if len(set(labels)) < len(labels):  # two runs with one seed: tell them apart by directory
        labels = [f"{Path(d).name} ({label})" for d, label in zip(run_dirs, labels)]
    return [RunClaims(label, str(d), judge_claims(m)) for label, d, m in zip(labels, run_dirs, matrices)]


def _pooled_text(f: PooledFinding) -> str:
    if f.pooled is None:
        return "-"
    p, runs = f.pooled, sum(x is not None and x.paired is not None for x in f.per_run)
    return f"{p.before:.1f} -> {p.after:.1f} ({p.diff:+.1f} points, SE {p.se:.1f}, {runs} runs)"


def _cell(f: Finding | None) -> str:
    if f is None or f.paired is None:
        return "-"
    return f"{f.paired.diff:+.1f} ± {f.paired.se:.1f} ({f.verdict})"


def render_pooled_markdown(runs: Sequence[RunClaims], claims: Sequence[PooledClaim]) -> str:
    """pooled.md: per claim, a table of each run's difference, the pooled one and the verdict."""
    out = [f"# The paper's claims over {len(runs)} runs", ""]
    out += [f"- {r.label}: `{r.run_dir}`" for r in runs]
    out += ["", "Each cell is a paired difference in points ± its standard error. Pooled: the mean of the "
            "runs' differences; its SE is the larger of sqrt(sum se_i^2)/m (the runs' own eval noise) and "
            "stdev(diff_i)/sqrt(m) (the spread between seeds). Each claim's rule is the single-run one.", ""]
    for claim in claims:
        out += [f"## ({claim.key}) {claim.title}", "", f"**Pooled verdict: {claim.verdict}** ({claim.tally})", "",
                "| comparison | " + " | ".join(r.label for r in runs) + " | pooled | verdict |",
                "|---|" + "---|" * len(runs) + "---|---|"]
        for f in claim.findings:
            out.append(f"| {f.subject} | " + " | ".join(_cell(x) for x in f.per_run)
                       + f" | {_pooled_text(f)} | {f.verdict} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def pooled_json(runs: Sequence[RunClaims], claims: Sequence[PooledClaim]) -> dict[str, Any]:
    """Everything in pooled.md, machine-readable."""
    def paired(p: Paired | None, n_key: str = "n_prompts") -> dict[str, Any] | None:
        return None if p is None else {n_key: p.n, "before": p.before, "after": p.after, "diff": p.diff, "se": p.se}

    return {
        "runs": [{"label": r.label, "run_dir": r.run_dir} for r in runs],
        "claims": [{"key": c.key, "title": c.title, "verdict": c.verdict, "outcome": c.outcome,
                    "findings": [{"subject": f.subject, "verdict": f.verdict, "outcome": f.outcome,
                                  "pooled": paired(f.pooled, "n_prompts_summed_over_runs"),
                                  "per_run": [None if x is None else paired(x.paired) for x in f.per_run]}
                                 for f in c.findings]}
                   for c in claims],
    }


def write_pooled_report(run_dirs: Sequence[str | Path], out_dir: str | Path) -> tuple[list[PooledClaim], list[Path]]:
    """Pool the claims of several runs; writes pooled.md and pooled.json into out_dir."""
    runs = claims_of_runs(run_dirs)
    claims = pool_claims(runs)
    out = Path(out_dir)
    files = [out / "pooled.md", out / "pooled.json"]
    write_text_atomic(files[0], render_pooled_markdown(runs, claims))
    write_json_atomic(files[1], pooled_json(runs, claims))
    return claims, files


def print_pooled(claims: Sequence[PooledClaim], console: Console) -> None:
    """The pooled claims on the terminal, coloured by verdict."""
    for claim in claims:
        console.print(f"({claim.key}) {claim.title}, pooled: ", end="", markup=False, highlight=False)
        console.print(claim.verdict, style=f"bold {VERDICT_STYLES[claim.outcome]}", markup=False, highlight=False)
        for f in claim.findings:
            runs = ", ".join(_cell(x) for x in f.per_run)
            console.print(f"    {f.subject}: {runs} -> pooled {_pooled_text(f)}: {f.verdict}",
                          style=VERDICT_STYLES[f.outcome], markup=False, highlight=False)

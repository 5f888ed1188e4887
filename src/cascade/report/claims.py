"""The paper's three claims judged on one run's matrix, each comparison paired per prompt.

(a) each RL stage raises its own domain's score over its start; (b) later stages keep the
earlier domains' gains; (c) thinking mode beats instruct mode on multi-step math. Each claim
lists its comparisons (``Finding``) with the numbers and a verdict. Torch-free.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Callable, Mapping

from cascade.report.matrix import CascadeMatrix, StageResult

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
        """Whether the gain is larger than ``NOISE_SE`` standard errors."""
        return self.diff > NOISE_SE * self.se

    @property
    def kept(self) -> bool:
        """Whether the drop, if any, stays within ``KEEP_DROP_POINTS``."""
        return self.diff >= -KEEP_DROP_POINTS


# How each claim judges one paired comparison; `cascade.report.pooled` judges its pooled
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
        """The outcome in words, or why it cannot be measured."""
        if self.outcome is None:
            return f"not measurable ({self.detail})"
        return self.words[0] if self.outcome else self.words[1]

    @property
    def line(self) -> str:
        """The finding as one report line: subject, numbers, verdict."""
        if self.outcome is None:
            return f"{self.subject}: {self.verdict}"
        return f"{self.subject}: {self.detail}: {self.verdict}"


@dataclass(frozen=True)
class Claim:
    """One of the paper's claims with the rule it is judged by and every comparison under it."""

    key: str
    title: str
    rule: str
    findings: list[Finding]
    extra: list[Finding] = field(default_factory=list)  # shown for information, not judged

    @property
    def outcome(self) -> bool | None:
        """True when every measurable comparison holds, False when one does not, None when none is measurable."""
        return all_measured_hold([f.outcome for f in self.findings])

    @property
    def verdict(self) -> str:
        """The claim's outcome in words; when nothing is measurable, why."""
        if self.outcome is None:
            reasons = sorted({f.detail for f in self.findings})
            if len(reasons) > 2:  # one reason per stage would make the verdict line unreadable
                return f"not measurable (none of {len(self.findings)} comparisons; reasons below)"
            return f"not measurable ({'; '.join(reasons)})"
        return HOLDS if self.outcome else FAILS

    @property
    def tally(self) -> str:
        """How many comparisons hold, do not, and cannot be measured."""
        return outcome_tally([f.outcome for f in self.findings])


def all_measured_hold(outcomes: list[bool | None]) -> bool | None:
    """A claim holds when every measurable comparison does; None when none is measurable."""
    measured = [o for o in outcomes if o is not None]
    return all(measured) if measured else None


def outcome_tally(outcomes: list[bool | None]) -> str:
    """``N hold, M do not, K not measurable`` for a list of outcomes."""
    counts = [sum(o is want for o in outcomes) for want in (True, False, None)]
    return f"{counts[0]} hold, {counts[1]} do not, {counts[2]} not measurable"


def judge_claims(matrix: CascadeMatrix) -> list[Claim]:
    """The paper's three claims, (a), (b) and (c), judged on one run's matrix."""
    return [claim_own_domain_gain(matrix), claim_gains_kept(matrix), claim_think_beats_no_think(matrix)]


def _rl_stages(matrix: CascadeMatrix) -> list[StageResult]:
    return [s for s in matrix.stages if s.kind == "grpo"]


NO_RL_STAGE = Finding("RL stages", None, "the run has no RL (grpo) stage")


def _domain_columns(stage: StageResult) -> list[str]:
    # Set names may contain dots; the mode never does.
    return [c for c in (stage.cells or {}) if c.rsplit(".", 1)[0] == stage.domain]


def _unmeasurable_stage(stage: StageResult) -> Finding | None:
    """Why an RL stage cannot be judged at all, or None when it can."""
    if stage.cells is None:
        return Finding(stage.name, None, f"{stage.name} is {stage.skip_reason}")
    if stage.domain is None:
        return Finding(stage.name, None, f"no eval set measures {stage.name}'s domain")
    if not _domain_columns(stage):
        return Finding(stage.name, None, f"{stage.name} was not evaluated on its domain set '{stage.domain}'")
    return None


def paired_text(p: Paired) -> str:
    """A paired comparison in words: before -> after, the difference, its SE and n."""
    return f"{p.before:.1f} -> {p.after:.1f} ({p.diff:+.1f} points, SE {p.se:.1f}, {p.n} prompts)"


def claim_own_domain_gain(matrix: CascadeMatrix) -> Claim:
    """Claim (a): each RL stage raises its own domain's score over the stage it started from."""
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
    """Claim (b): each RL stage's gain on its domain survives to the last evaluated stage."""
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
    """Claim (c): at the last evaluated stage, thinking mode beats instruct mode on math."""
    think, no_think = f"{MATH_SET}.think", f"{MATH_SET}.no_think"

    def compare(stage: StageResult) -> Finding:
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

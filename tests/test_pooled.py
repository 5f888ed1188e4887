"""The claims pooled over runs with different seeds, on hand-made run directories.

Every expected number is worked out by hand in the comments.
"""

from __future__ import annotations

import json
import math

import pytest

from cascade.cli import main
from cascade.report.claims import Paired
from cascade.report.pooled import claims_of_runs, pool_claims, pool_paired, write_pooled_report
from test_report import make_run


def test_pool_paired_by_hand() -> None:
    a = Paired(n=10, before=50.0, after=60.0, diff=10.0, se=3.0)
    b = Paired(n=12, before=40.0, after=44.0, diff=4.0, se=4.0)
    p = pool_paired([a, b])
    # mean diff 7; within sqrt(9 + 16) / 2 = 2.5; between stdev(10, 4) / sqrt(2) = sqrt(18) / sqrt(2) = 3
    assert (p.n, p.before, p.after, p.diff) == (22, 45.0, 52.0, 7.0)
    assert p.se == pytest.approx(3.0)
    assert p.beyond_noise  # 7 > 2 x 3
    # Two runs that agree: the spread between them is 0 and the runs' own noise decides.
    same = pool_paired([a, Paired(n=10, before=50.0, after=60.0, diff=10.0, se=3.0)])
    assert same.se == pytest.approx(math.sqrt(18) / 2)
    with pytest.raises(ValueError, match="at least two"):
        pool_paired([a])


def gain_run(tmp_path, name: str, seed: int, after: list[list[int]]):
    """sft then math-rl on four math prompts, two samples each; sft scores 0, 0, 0, .5."""
    stages = [{"name": "sft", "kind": "sft", "cells": {"math.think": [[0, 0], [0, 0], [0, 0], [0, 1]]}},
              {"name": "math-rl", "kind": "grpo", "parent": "sft", "domain": "math",
               "cells": {"math.think": after}}]
    return make_run(tmp_path / name, stages, seed=seed)


def test_a_gain_in_one_seed_only_does_not_hold_pooled(tmp_path) -> None:
    # seed 1: diffs 1, 1, 1, .5 -> +87.5, SE 12.5 (test_report): holds alone.
    # seed 2: diffs 0, 0, 0, -.5 -> -12.5, SE sqrt(.1875 / 3) / 2 = 12.5: does not hold.
    runs = claims_of_runs([gain_run(tmp_path, "s1", 1, [[1, 1]] * 4),
                           gain_run(tmp_path, "s2", 2, [[0, 0], [0, 0], [0, 0], [0, 0]])])
    assert [r.label for r in runs] == ["seed 1", "seed 2"]
    claim = {c.key: c for c in pool_claims(runs)}["a"]
    (finding,) = claim.findings
    assert [f.verdict for f in finding.per_run] == ["holds", "does not hold"]
    # pooled diff (87.5 - 12.5) / 2 = 37.5; within sqrt(2 x 12.5^2) / 2 = 8.84;
    # between stdev(87.5, -12.5) / sqrt(2) = 70.71 / 1.414 = 50 -> SE 50, and 37.5 < 100
    assert finding.pooled.diff == pytest.approx(37.5)
    assert finding.pooled.se == pytest.approx(50.0)
    assert finding.verdict == "does not hold" and claim.outcome is False


def test_a_gain_in_both_seeds_holds_pooled(tmp_path) -> None:
    # seed 2 this time: diffs 1, 1, 1, 0 -> +75; deviations .25, .25, .25, -.75, ss .75,
    # sd sqrt(.75 / 3) = .5 -> SE 25
    runs = claims_of_runs([gain_run(tmp_path, "s1", 1, [[1, 1]] * 4),
                           gain_run(tmp_path, "s2", 2, [[1, 1], [1, 1], [1, 1], [0, 1]])])
    claim = {c.key: c for c in pool_claims(runs)}["a"]
    (finding,) = claim.findings
    # pooled 81.25; within sqrt(12.5^2 + 25^2) / 2 = 13.98; between stdev(87.5, 75) / sqrt(2) = 6.25
    assert finding.pooled.diff == pytest.approx(81.25)
    assert finding.pooled.se == pytest.approx(math.sqrt(12.5 ** 2 + 25 ** 2) / 2)
    assert claim.verdict == "holds"


def test_a_comparison_one_run_lacks_is_not_measurable(tmp_path) -> None:
    full = gain_run(tmp_path, "s1", 1, [[1, 1]] * 4)
    only_sft = make_run(tmp_path / "s2", [{"name": "sft", "kind": "sft",
                                           "cells": {"math.think": [[0, 0]] * 4}},
                                          {"name": "math-rl", "kind": "grpo", "parent": "sft", "domain": "math",
                                           "status": "running"}], seed=2)
    claim = {c.key: c for c in pool_claims(claims_of_runs([full, only_sft]))}["a"]
    # The finished run's comparison and the unfinished run's "not measurable" line have
    # different subjects, so each is seen in one run only: nothing is pooled.
    by_subject = {f.subject: f for f in claim.findings}
    measured = by_subject["math-rl, math.think vs its start sft"]
    assert measured.per_run[0].verdict == "holds" and measured.per_run[1] is None
    assert all(f.pooled is None and f.outcome is None for f in claim.findings)
    assert claim.verdict == "not measurable"


def test_same_seed_runs_are_told_apart_and_files_written(tmp_path) -> None:
    a = gain_run(tmp_path, "first", 3, [[1, 1]] * 4)
    b = gain_run(tmp_path, "second", 3, [[1, 1]] * 4)
    claims, files = write_pooled_report([a, b], tmp_path / "pooled")
    text = files[0].read_text()
    assert "first (seed 3)" in text and "second (seed 3)" in text
    assert "**Pooled verdict: holds**" in text
    data = json.loads(files[1].read_text())
    assert data["claims"][0]["key"] == "a" and data["claims"][0]["outcome"] is True
    assert data["claims"][0]["findings"][0]["pooled"]["diff"] == pytest.approx(87.5)


def test_cli_pools_several_runs(tmp_path, capsys) -> None:
    a = gain_run(tmp_path, "s1", 1, [[1, 1]] * 4)
    b = gain_run(tmp_path, "s2", 2, [[1, 1], [1, 1], [1, 1], [0, 1]])
    assert main(["report", str(a), str(b), "--no-png", "--pooled-out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "(a) Each RL stage raises its own domain's score over its start, pooled: holds" in out
    assert (a / "report.md").exists() and (b / "report.md").exists()
    assert (tmp_path / "out" / "pooled.md").exists()


def test_cli_pooled_out_needs_two_runs(tmp_path, capsys) -> None:
    a = gain_run(tmp_path, "s1", 1, [[1, 1]] * 4)
    assert main(["report", str(a), "--pooled-out", str(tmp_path / "out")]) != 0
    assert "--pooled-out needs at least two RUN_DIRs" in capsys.readouterr().err

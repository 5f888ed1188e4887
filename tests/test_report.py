"""The cascade report on hand-made run directories, with hand-computed numbers.

Per-prompt scores are written as lists of `passed` per sample; every expected value below
is worked out by hand from those lists in the comments.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from rich.console import Console

from cascade.cli import main
from cascade.errors import CascadeError
from cascade.report.claims import (
    FAILS,
    HOLDS,
    claim_gains_kept,
    claim_own_domain_gain,
    claim_think_beats_no_think,
    paired_difference,
)
from cascade.report.matrix import build_matrix
from cascade.report.render import print_matrix
from cascade.report.write import write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_run(root: Path, stages: list[dict], *, seed: int = 7) -> Path:
    """A run directory as the stage runner writes it. Each stage dict: name, kind, and optionally
    parent, domain, status ("done"), cells {"set.mode": [[passed per sample] per prompt]}."""
    names = [s["name"] for s in stages]
    (root / "run.json").parent.mkdir(parents=True, exist_ok=True)
    (root / "run.json").write_text(json.dumps({"recipe": "handmade", "seed": seed, "status": "running",
                                               "stages": names}))
    for i, spec in enumerate(stages, start=1):
        if spec.get("status") == "not started":
            continue
        stage_dir = root / "stages" / f"{i:02d}-{spec['name']}"
        (stage_dir / "eval").mkdir(parents=True)
        cells = spec.get("cells")
        for column, prompts in (cells or {}).items():
            lines = [json.dumps({"id": f"p{p}", "seed": s, "mode": column.split(".")[1], "passed": bool(ok)})
                     for p, samples in enumerate(prompts) for s, ok in enumerate(samples)]
            (stage_dir / "eval" / f"{column}.jsonl").write_text("\n".join(lines) + "\n")
        manifest = {"stage": spec["name"], "kind": spec["kind"], "parent": spec.get("parent", "base"),
                    "status": spec.get("status", "done"), "domain": spec.get("domain"),
                    "eval": None if cells is None else {"dir": "eval", "sets": list(cells)},
                    "timings": {"train_s": 10.0 * i, "eval_s": 1.5, "total_s": 10.0 * i + 1.5}}
        (stage_dir / "manifest.json").write_text(json.dumps(manifest))
    return root


# sft:      math.think 1, .5, 0, 0 (37.5)   math.no_think 1, 0, 0, 0 (25)   if.no_think 1, 1, 0, 0 (50)
# math-rl:  math.think 1, 1, 1, .5 (87.5)   math.no_think 1, .5, 0, 0 (37.5) if.no_think 1, 1, .5, 0 (62.5)
# if-rl:    math.think 1, 1, .5, .5 (75)    math.no_think 1, .5, 0, 0 (37.5) if.no_think 1, 1, 1, 1 (100)
CASCADE = [
    {"name": "sft", "kind": "sft", "cells": {
        "math.think": [[1, 1], [1, 0], [0, 0], [0, 0]],
        "math.no_think": [[1, 1], [0, 0], [0, 0], [0, 0]],
        "if.no_think": [[1, 1], [1, 1], [0, 0], [0, 0]]}},
    {"name": "rm", "kind": "rm"},
    {"name": "math-rl", "kind": "grpo", "parent": "sft", "domain": "math", "cells": {
        "math.think": [[1, 1], [1, 1], [1, 1], [1, 0]],
        "math.no_think": [[1, 1], [1, 0], [0, 0], [0, 0]],
        "if.no_think": [[1, 1], [1, 1], [1, 0], [0, 0]]}},
    {"name": "if-rl", "kind": "grpo", "parent": "math-rl", "domain": "if", "cells": {
        "math.think": [[1, 1], [1, 1], [1, 0], [1, 0]],
        "math.no_think": [[1, 1], [1, 0], [0, 0], [0, 0]],
        "if.no_think": [[1, 1], [1, 1], [1, 1], [1, 1]]}},
    {"name": "code-rl", "kind": "grpo", "parent": "if-rl", "domain": "code", "status": "running"},
]

# SE of four per-prompt means with sum of squared deviations ss: sqrt(ss / 3) / sqrt(4), in percent.
def se4(ss: float) -> float:
    return 100 * math.sqrt(ss / 3) / 2


@pytest.fixture()
def cascade_run(tmp_path) -> Path:
    return make_run(tmp_path / "run", CASCADE)


def test_matrix_values_deltas_and_standard_errors(cascade_run) -> None:
    m = build_matrix(cascade_run)
    assert [s.name for s in m.rows] == ["sft", "math-rl", "if-rl"]
    assert m.columns == ["math.think", "math.no_think", "if.no_think"]
    assert m.recipe == "handmade" and m.seed == 7 and m.eval_seeds == [0, 1]
    skipped = {s.name: s.skip_reason for s in m.stages if s.skip_reason}
    assert set(skipped) == {"rm", "code-rl"}
    assert "not evaluated" in skipped["rm"] and "running" in skipped["code-rl"]

    sft, math_rl, if_rl = (m.row(n).cells for n in ("sft", "math-rl", "if-rl"))
    assert [sft[c].avg for c in m.columns] == [37.5, 25.0, 50.0]
    assert [math_rl[c].avg for c in m.columns] == [87.5, 37.5, 62.5]
    assert [if_rl[c].avg for c in m.columns] == [75.0, 37.5, 100.0]
    assert [sft[c].delta for c in m.columns] == [None, None, None]
    assert [math_rl[c].delta for c in m.columns] == [50.0, 12.5, 12.5]
    assert [if_rl[c].delta for c in m.columns] == [-12.5, 0.0, 37.5]
    # sft math.think: 1, .5, 0, 0 -> mean .375, squared deviations .390625+.015625+.140625+.140625 = .6875
    assert sft["math.think"].se == pytest.approx(se4(0.6875))
    # sft math.no_think: 1, 0, 0, 0 -> mean .25, ss = .5625 + 3 * .0625 = .75
    assert sft["math.no_think"].se == pytest.approx(se4(0.75))
    # if-rl if.no_think: all 1 -> no spread
    assert if_rl["if.no_think"].se == 0.0
    cell = sft["math.think"]
    assert (cell.n_prompts, cell.k, cell.n_samples) == (4, 2, 8)


def test_paired_difference_by_hand() -> None:
    # diffs 0, .5, 1, .5: mean .5; deviations -.5, 0, .5, 0 -> ss .5
    p = paired_difference({"a": 1, "b": 1, "c": 1, "d": 0.5}, {"a": 1, "b": 0.5, "c": 0, "d": 0, "e": 1})
    assert (p.n, p.before, p.after, p.diff) == (4, 37.5, 87.5, 50.0)
    assert p.se == pytest.approx(se4(0.5))
    assert p.beyond_noise  # 50 > 2 * 20.41
    assert paired_difference({"a": 1}, {"a": 0, "b": 1}) is None  # one shared prompt: no SE


def verdicts(claim) -> dict[str, str]:
    return {f.subject: f.verdict for f in claim.findings}


def test_claim_a_on_the_cascade_does_not_hold(cascade_run) -> None:
    claim = claim_own_domain_gain(build_matrix(cascade_run))
    v = verdicts(claim)
    # math.think diffs 0, .5, 1, .5: +50 with SE 20.4 -> beyond noise
    assert v["math-rl, math.think vs its start sft"] == HOLDS
    # math.no_think diffs 0, .5, 0, 0: +12.5 with SE 12.5 -> within 2 SE
    assert v["math-rl, math.no_think vs its start sft"] == FAILS
    # if.no_think diffs 0, 0, .5, 1: +37.5 with SE 23.9 -> within 2 SE
    assert v["if-rl, if.no_think vs its start math-rl"] == FAILS
    assert v["code-rl"].startswith("not measurable (code-rl is running")
    assert claim.verdict == FAILS


def test_claim_a_holds_and_not_measurable(tmp_path) -> None:
    gain = [{"name": "sft", "kind": "sft", "cells": {"math.think": [[0, 0], [0, 0], [0, 0], [0, 1]]}},
            {"name": "math-rl", "kind": "grpo", "parent": "sft", "domain": "math",
             "cells": {"math.think": [[1, 1], [1, 1], [1, 1], [1, 1]]}}]
    # diffs 1, 1, 1, .5: +87.5, ss .1875 -> SE 12.5
    claim = claim_own_domain_gain(build_matrix(make_run(tmp_path / "gain", gain)))
    assert claim.verdict == HOLDS
    assert claim.findings[0].paired.se == pytest.approx(se4(0.1875))

    from_base = [{"name": "math-rl", "kind": "grpo", "parent": "base", "domain": "math",
                  "cells": {"math.think": [[1, 1], [0, 0]]}},
                 {"name": "chat-rl", "kind": "grpo", "parent": "math-rl", "domain": None,
                  "cells": {"math.think": [[1, 1], [0, 0]]}}]
    claim = claim_own_domain_gain(build_matrix(make_run(tmp_path / "base", from_base)))
    assert claim.outcome is None
    assert claim.verdict.startswith("not measurable (")
    assert "its start 'base' was not evaluated" in claim.verdict
    assert "no eval set measures chat-rl's domain" in claim.verdict


def test_claim_b_on_the_cascade_does_not_hold(cascade_run) -> None:
    claim = claim_gains_kept(build_matrix(cascade_run))
    v = verdicts(claim)
    # math.think after math-rl 1, 1, 1, .5 and at if-rl 1, 1, .5, .5: -12.5 points
    assert v["math.think: after math-rl vs at if-rl"] == "lost"
    assert claim.findings[0].paired.diff == -12.5
    assert v["math.no_think: after math-rl vs at if-rl"] == "kept"
    assert v["if.no_think: after if-rl vs at the last stage"] == \
        "not measurable (no stage was evaluated after if-rl)"
    assert claim.verdict == FAILS


def test_claim_b_holds_within_five_points(tmp_path) -> None:
    # 8 prompts x 4 samples: one sample lost on one prompt is -.25 / 8 = -3.125 points
    after = [[1, 1, 1, 1]] * 4 + [[0, 0, 0, 0]] * 4
    later = [[1, 1, 1, 0]] + [[1, 1, 1, 1]] * 3 + [[0, 0, 0, 0]] * 4
    stages = [{"name": "math-rl", "kind": "grpo", "domain": "math", "cells": {"math.think": after}},
              {"name": "code-rl", "kind": "grpo", "parent": "math-rl", "domain": "code",
               "cells": {"math.think": later}}]
    claim = claim_gains_kept(build_matrix(make_run(tmp_path / "run", stages)))
    assert claim.findings[0].verdict == "kept"
    assert claim.findings[0].paired.diff == pytest.approx(-3.125)
    assert claim.verdict == HOLDS  # code-rl has no code set: not measurable, which does not count against


def test_claim_c_holds_on_the_cascade(cascade_run) -> None:
    claim = claim_think_beats_no_think(build_matrix(cascade_run))
    # if-rl think 1, 1, .5, .5 vs no_think 1, .5, 0, 0: diffs 0, .5, .5, .5 -> +37.5, ss .1875, SE 12.5
    (final,) = claim.findings
    assert final.subject.startswith("if-rl") and final.verdict == HOLDS
    assert (final.paired.diff, final.paired.se) == (37.5, pytest.approx(12.5))
    # earlier: sft diffs 0, .5, 0, 0 (+12.5, SE 12.5: no); math-rl diffs 0, .5, 1, .5 (+50, SE 20.4: yes)
    assert [(f.subject.split(":")[0], f.verdict) for f in claim.extra] == [("sft", FAILS), ("math-rl", HOLDS)]
    assert claim.verdict == HOLDS


def test_claim_c_does_not_hold_and_not_measurable(tmp_path) -> None:
    same = [[1, 0], [1, 1], [0, 0]]
    tie = [{"name": "sft", "kind": "sft", "cells": {"math.think": same, "math.no_think": same}}]
    assert claim_think_beats_no_think(build_matrix(make_run(tmp_path / "tie", tie))).verdict == FAILS
    one_mode = [{"name": "sft", "kind": "sft", "cells": {"math.think": same}}]
    claim = claim_think_beats_no_think(build_matrix(make_run(tmp_path / "one", one_mode)))
    assert claim.verdict == "not measurable (sft was not evaluated on math in both modes)"
    no_rl = build_matrix(tmp_path / "one")
    assert claim_own_domain_gain(no_rl).verdict == "not measurable (the run has no RL (grpo) stage)"
    assert claim_gains_kept(no_rl).verdict == "not measurable (the run has no RL (grpo) stage)"


def test_write_report_files(cascade_run) -> None:
    report = write_report(cascade_run)
    names = sorted(p.name for p in report.files)
    assert names == ["cascade.csv", "cascade.json", "cascade.png", "report.md"]
    assert (cascade_run / "cascade.png").read_bytes()[:8] == PNG_MAGIC
    assert not list(cascade_run.glob(".*.tmp"))

    rows = list(csv.DictReader((cascade_run / "cascade.csv").open()))
    assert len(rows) == 9
    first = rows[0]
    assert (first["stage"], first["set.mode"], float(first["avg"]), first["delta"]) == ("sft", "math.think", 37.5, "")
    assert float(first["se"]) == pytest.approx(se4(0.6875), abs=1e-4)
    assert (first["n_prompts"], first["k"]) == ("4", "2")
    assert float(rows[3]["delta"]) == 50.0  # math-rl math.think

    data = json.loads((cascade_run / "cascade.json").read_text())
    assert [c["verdict"] for c in data["claims"]] == [FAILS, FAILS, HOLDS]
    stages = {s["name"]: s for s in data["stages"]}
    assert stages["rm"]["cells"] is None and stages["if-rl"]["cells"]["if.no_think"]["avg"] == 100.0

    md = (cascade_run / "report.md").read_text()
    assert "| math-rl | grpo | 87.5 ± 12.5 (+50.0) |" in md
    assert "Not in the table: rm (not evaluated" in md and "code-rl (running, not finished)" in md
    assert "mean difference > 2 x SE" in md and "at most 5 points" in md
    assert "4 prompts x 2 samples (8 in all)" in md
    assert "| math-rl | grpo | done | 30.0 | 1.5 | 31.5 |" in md


def test_print_matrix_shows_deltas(cascade_run) -> None:
    console = Console(record=True, width=200, color_system="standard", force_terminal=True)
    print_matrix(build_matrix(cascade_run), console)
    assert "87.5 ± 12.5 (+50.0)" in console.export_text(clear=False)
    styled = console.export_text(styles=True)
    assert "\x1b[32m (+50.0)" in styled and "\x1b[31m (-12.5)" in styled  # gains green, losses red


def test_cli_report(cascade_run, capsys) -> None:
    assert main(["report", str(cascade_run), "--no-png"]) == 0
    out = capsys.readouterr().out
    assert "(a) Each RL stage raises its own domain's score over its start: does not hold" in out
    assert "(c) Thinking mode beats instruct mode on multi-step math: holds" in out
    assert (cascade_run / "report.md").exists() and not (cascade_run / "cascade.png").exists()


def test_corrupt_manifest_names_the_file(cascade_run, capsys) -> None:
    manifest = cascade_run / "stages" / "03-math-rl" / "manifest.json"
    manifest.write_text('{"stage": "math-rl",')
    assert main(["report", str(cascade_run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {manifest}:1: not valid JSON") and "\n" not in err


def test_missing_manifest_and_bad_sample_line(cascade_run) -> None:
    manifest = cascade_run / "stages" / "01-sft" / "manifest.json"
    manifest.unlink()
    with pytest.raises(CascadeError) as err:
        build_matrix(cascade_run)
    assert err.value.file == str(manifest)

    other = make_run(cascade_run.parent / "other", CASCADE[:1])
    samples = other / "stages" / "01-sft" / "eval" / "math.think.jsonl"
    lines = samples.read_text().splitlines()
    lines[2] = json.dumps({"id": "p1", "seed": 0, "passed": "yes"})
    samples.write_text("\n".join(lines) + "\n")
    with pytest.raises(CascadeError) as err:
        build_matrix(other)
    assert (err.value.file, err.value.line, err.value.field) == (str(samples), 3, "passed")


def test_not_a_run_directory(tmp_path) -> None:
    with pytest.raises(CascadeError, match="no run.json"):
        build_matrix(tmp_path)


def test_run_with_nothing_evaluated_yet(tmp_path) -> None:
    stages = [{"name": "sft", "kind": "sft", "status": "running"}] + [
        {"name": f"rl-{i}", "kind": "grpo", "status": "not started"} for i in range(3)]
    run = make_run(tmp_path / "run", stages)
    report = write_report(run)
    assert report.matrix.rows == [] and report.matrix.columns == []
    assert (run / "cascade.png").read_bytes()[:8] == PNG_MAGIC
    # run.json here has no recipe copy, so stages not started have no known kind: no RL stage to judge
    assert [c.verdict for c in report.claims] == ["not measurable (the run has no RL (grpo) stage)"] * 2 + [
        "not measurable (no stage was evaluated)"]
    console = Console(record=True, width=120)
    print_matrix(report.matrix, console)
    text = console.export_text()
    assert "no stage has been evaluated yet" in text and "sft (running, not finished)" in text


def test_stages_not_started_take_their_kind_from_the_recipe_copy(tmp_path) -> None:
    stages = [{"name": "sft", "kind": "sft", "status": "running"}] + [
        {"name": f"rl-{i}", "kind": "grpo", "status": "not started"} for i in range(3)]
    run = make_run(tmp_path / "run", stages)
    data = json.loads((run / "run.json").read_text())
    data["recipe_config"] = {"stages": [{"name": s["name"], "kind": s["kind"]} for s in stages]}
    (run / "run.json").write_text(json.dumps(data))
    claim = claim_own_domain_gain(build_matrix(run))
    assert [f.verdict for f in claim.findings] == [
        f"not measurable (rl-{i} is not started yet)" for i in range(3)]
    # Three different reasons are not packed into the verdict line.
    assert claim.verdict == "not measurable (none of 3 comparisons; reasons below)"


def test_claim_a_judges_the_modes_a_stage_trains_in(tmp_path) -> None:
    """math-rl trains in thinking mode only (think_fraction 1): its math.no_think comparison
    (+12.5, SE 12.5, within noise) is listed for information and no longer judged; with
    think_fraction 0.5 it trains both modes and both are judged."""
    def run_with(fraction: float, name: str) -> Path:
        run = make_run(tmp_path / name, CASCADE)
        data = json.loads((run / "run.json").read_text())
        data["recipe_config"] = {"stages": [
            {"name": s["name"], "kind": s["kind"], **({"think_fraction": fraction} if s["name"] == "math-rl" else {}),
             **({"think_fraction": 0.0} if s["name"] == "if-rl" else {})} for s in CASCADE]}
        (run / "run.json").write_text(json.dumps(data))
        return run

    claim = claim_own_domain_gain(build_matrix(run_with(1.0, "think-only")))
    judged = {f.subject for f in claim.findings}
    assert "math-rl, math.think vs its start sft" in judged
    assert not any("math.no_think" in s for s in judged)
    (info,) = claim.extra
    assert info.subject == "math-rl, math.no_think vs its start sft (a mode the stage does not train in)"
    assert info.outcome is False and info.paired.diff == pytest.approx(12.5)
    write_report(run_with(1.0, "md"), png=False)
    assert "For information (not judged):" in (tmp_path / "md" / "report.md").read_text()

    both = claim_own_domain_gain(build_matrix(run_with(0.5, "both")))
    assert "math-rl, math.no_think vs its start sft" in {f.subject for f in both.findings}
    assert both.extra == []

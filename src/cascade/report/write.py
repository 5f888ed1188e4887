"""``cascade report RUN_DIR``: the report files written into the run directory.

report.md (the matrix, the time per stage and the claims), cascade.csv, cascade.json and the
picture cascade.png. Torch-free by design: the report must open on a laptop that never
trained anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cascade.data.io import write_json_atomic, write_text_atomic
from cascade.report.claims import Claim, judge_claims
from cascade.report.matrix import CascadeMatrix, build_matrix
from cascade.report.render import render_csv, render_markdown, report_json


@dataclass(frozen=True)
class Report:
    """What ``write_report`` built: the matrix, the judged claims and the files written."""

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
        from cascade.report.plot import write_heatmap

        files.append(write_heatmap(matrix, root / "cascade.png"))
    return Report(matrix, claims, files)

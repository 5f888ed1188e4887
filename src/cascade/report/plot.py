"""cascade.png: a heat map of stages x eval sets with every value written in its cell.

matplotlib is imported only here and only when a PNG is asked for, through its Agg canvas
directly (no pyplot), so writing the picture never touches a display or global plot state.
"""

from __future__ import annotations

import math
from pathlib import Path

from cascade.data.io import atomic_open
from cascade.errors import CascadeError
from cascade.report.matrix import CascadeMatrix


def write_heatmap(matrix: CascadeMatrix, path: str | Path) -> Path:
    """Draw the matrix (avg@k %, ± SE, change vs previous row) and write it atomically as PNG."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ModuleNotFoundError:
        raise CascadeError("cascade.png needs matplotlib (pip install matplotlib==3.11.2); "
                           "or leave the picture out with --no-png") from None

    path = Path(path)
    rows, columns = matrix.rows, matrix.columns
    values = [[c.avg if (c := (s.cells or {}).get(col)) else math.nan for col in columns] for s in rows]
    fig = Figure(figsize=(max(4.0, 1.6 * len(columns) + 2.0), max(2.5, 0.7 * len(rows) + 1.6)), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(f"cascade {matrix.recipe}: avg@k (%) after every stage", fontsize=10)
    if not rows:
        ax.axis("off")
        ax.text(0.5, 0.5, "no stage has been evaluated yet", ha="center", va="center")
    else:
        image = ax.imshow(values, cmap="viridis", vmin=0.0, vmax=100.0, aspect="auto")
        fig.colorbar(image, ax=ax, label="avg@k (%)")
        ax.set_xticks(range(len(columns)), labels=columns, rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(len(rows)), labels=[s.name for s in rows], fontsize=8)
        for i, stage in enumerate(rows):
            for j, column in enumerate(columns):
                cell = (stage.cells or {}).get(column)
                if cell is None:
                    continue
                se = "" if math.isnan(cell.se) else f" ±{cell.se:.1f}"
                delta = "" if cell.delta is None else f"\n({cell.delta:+.1f})"
                # Light text on the dark (low) end of viridis, dark text on the bright end.
                ax.text(j, i, f"{cell.avg:.1f}{se}{delta}", ha="center", va="center", fontsize=7,
                        color="white" if cell.avg < 60 else "black")
    fig.tight_layout()
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png")
    return path

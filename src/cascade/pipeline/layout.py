"""The run directory: where `cascade run` writes each file, and the file names the report reads.

    RUN_DIR/run.json                      recipe, seed, status, ordered stage names
    RUN_DIR/base/                         the base model (built here for `init:` recipes)
    RUN_DIR/data/<generator>/...          generated data (the toy world)
    RUN_DIR/stages/NN-<name>/manifest.json   stage, parent, resolved config, data hashes,
                                             metrics, final weights' hash, eval scores,
                                             timings, status
    RUN_DIR/stages/NN-<name>/final/       the stage's Hugging Face checkpoint
    RUN_DIR/stages/NN-<name>/eval/        per-stage eval samples and metrics.json

The stage runner (``cascade.pipeline.runner``), the cluster path and the report
(``cascade.report``) all take these names from here. Torch-free.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cascade.config.recipe import BASE
from cascade.errors import CascadeError

RUN_FILE = "run.json"
MANIFEST = "manifest.json"
BASE_DIR = "base"
FINAL_DIR = "final"
EVAL_DIR = "eval"


def stage_dir(root: Path, index: int, name: str) -> Path:
    """The folder of the ``index``-th stage (1-based, in recipe order) called ``name``."""
    return root / "stages" / f"{index:02d}-{name}"


def generated_path(root: Path, spec: str) -> Path:
    """toy/sft/math -> RUN_DIR/data/toy/sft/math.jsonl"""
    return root / "data" / f"{spec}.jsonl"


def read_json(path: Path) -> dict[str, Any]:
    """A run file or manifest; a file that cannot be read or parsed is a one-line error naming it."""
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CascadeError(f"cannot read: {exc}", file=str(path)) from None


@dataclass
class RunLayout:
    """One run directory with its recipe's stage names in order (which number each stage's folder)."""

    root: Path
    stage_names: list[str]

    def stage_dir(self, name: str) -> Path:
        """``RUN_DIR/stages/NN-<name>``, NN the stage's 1-based place in the recipe."""
        return stage_dir(self.root, self.stage_names.index(name) + 1, name)

    def manifest(self, name: str) -> dict[str, Any] | None:
        """The stage's manifest, or None when it has none yet."""
        path = self.stage_dir(name) / MANIFEST
        return read_json(path) if path.exists() else None

    def is_done(self, name: str) -> bool:
        """Whether the stage finished (its manifest says ``done``)."""
        m = self.manifest(name)
        return bool(m and m.get("status") == "done")

    def output(self, name: str) -> Path:
        """The checkpoint a stage hands to its children."""
        return self.root / BASE_DIR if name == BASE else self.stage_dir(name) / FINAL_DIR

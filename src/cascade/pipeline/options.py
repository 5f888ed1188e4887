"""What ``cascade run`` was asked to do, beyond the recipe: where, which stages, on what device."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable


@dataclass
class RunOptions:
    """The options of one ``cascade run`` (its command-line flags)."""

    out_dir: Path | None = None
    resume: bool = False
    from_stage: str | None = None
    until: str | None = None
    progress: bool = True
    device: str = "auto"
    recipe_file: str | None = None
    echo: Callable[[str], None] = print
    rerun_changed: bool = False  # re-run a stage whose settings or data changed, and what trained on it
    # Trains one stage and writes its manifest; None: the local trainers (run_stage). The
    # cluster path (`--engine verl`) passes cascade.cluster.engine_run's job launcher.
    stage_runner: Callable[..., dict[str, Any]] | None = None

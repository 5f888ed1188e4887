"""The run's base model in ``RUN_DIR/base``: a fresh model for ``init:`` recipes, else the named one
saved with the cascade chat template."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

from cascade.config import Recipe
from cascade.config.recipe import InitBaseModel
from cascade.pipeline.layout import BASE_DIR


def prepare_base(recipe: Recipe, root: Path, echo: Callable[[str], None]) -> None:
    """Write the base model to ``root/base`` (once; atomically, through a temporary folder)."""
    base = root / BASE_DIR
    if (base / "config.json").exists():
        return
    from cascade.engine.rope import write_rope_scaling

    rope = recipe.base_rope_scaling.as_config() if recipe.base_rope_scaling is not None else None
    if isinstance(recipe.base_model, InitBaseModel):
        from cascade.models import init_model

        spec = recipe.base_model.init
        tmp = root / ".base.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        init_model(tmp, spec.size, seed=recipe.seed if spec.seed is None else spec.seed)
        write_rope_scaling(tmp, rope)
        os.replace(tmp, base)
        echo(f"base model: a fresh {spec.size} model in {base}")
        return
    from cascade.models import load_model_and_tokenizer

    source = recipe.base_model_source
    model, tokenizer = load_model_and_tokenizer(source)
    tmp = root / ".base.tmp"
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    write_rope_scaling(tmp, rope)
    os.replace(tmp, base)
    echo(f"base model: {source} (with the cascade chat template) in {base}")

"""RoPE scaling (YaRN) as a model setting: on a loaded model, and in a checkpoint's config.json.

The paper's math and code RL responses (40-56K tokens) outrun the base models' 32K window; the
model cards stretch it with YaRN, ``{"rope_type": "yarn", "factor": 2.0,
"original_max_position_embeddings": 32768}`` in config.json (factor 2 for 64K budgets). A
setting here is that block as a dict (``cascade.config.recipe.RopeScaling.as_config()``).

On a model, the setting goes into ``config.rope_parameters`` (transformers 5's name; it keeps
``rope_theta``) and the rotary module is rebuilt from it, so the module stack and the lean
forward (which reads the same module's tables) both compute transformers' own YaRN. In
config.json both names are written: ``rope_parameters`` for transformers 5, and the model
card's ``rope_scaling`` for readers on transformers 4 (vLLM, verl builds pinned to it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cascade.data.io import atomic_open
from cascade.errors import CascadeError

ROPE_KEYS = ("rope_type", "factor", "original_max_position_embeddings", "attention_factor")


def _checked(scaling: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(scaling) - set(ROPE_KEYS))
    if unknown:
        raise CascadeError(f"unknown rope scaling keys {unknown}; known: {', '.join(ROPE_KEYS)}", field="rope_scaling")
    if scaling.get("rope_type") != "yarn":
        raise CascadeError(f"only rope_type 'yarn' is supported (got {scaling.get('rope_type')!r})",
                           field="rope_scaling.rope_type")
    for key in ("factor", "original_max_position_embeddings"):
        if not isinstance(scaling.get(key), (int, float)) or scaling[key] <= 0:
            raise CascadeError(f"needs a positive {key}", field=f"rope_scaling.{key}")
    return dict(scaling)


def current_rope_scaling(config: Any) -> dict[str, Any] | None:
    """The YaRN block of a Hugging Face config, or None when its RoPE is unscaled."""
    for name in ("rope_parameters", "rope_scaling"):
        block = getattr(config, name, None)
        if isinstance(block, Mapping) and block.get("rope_type", block.get("type")) == "yarn":
            return {key: block[key] for key in ROPE_KEYS if block.get(key) is not None}
    return None


def apply_rope_scaling(model: Any, scaling: Mapping[str, Any]) -> None:
    """Set ``scaling`` on ``model``'s config and rebuild its rotary embedding from it."""
    scaling = _checked(scaling)
    config = model.config
    base = dict(getattr(config, "rope_parameters", None) or {})
    theta = base.get("rope_theta", getattr(config, "rope_theta", None))
    config.rope_parameters = {**({"rope_theta": theta} if theta is not None else {}), **scaling}
    backbone = getattr(model, getattr(model, "base_model_prefix", "model"), None)
    rotary = getattr(backbone, "rotary_emb", None)
    if rotary is None:
        raise CascadeError(f"{type(model).__name__} has no rotary embedding module to rescale", field="rope_scaling")
    device = rotary.inv_freq.device
    backbone.rotary_emb = type(rotary)(config).to(device)


def write_rope_scaling(checkpoint: str | os.PathLike[str], scaling: Mapping[str, Any] | None) -> None:
    """Put ``scaling`` into ``checkpoint/config.json`` under both names (atomically); None
    leaves the file as it is."""
    if scaling is None:
        return
    scaling = _checked(scaling)
    path = Path(checkpoint) / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    params = dict(config.get("rope_parameters") or {})
    theta = params.get("rope_theta", config.get("rope_theta"))
    config["rope_parameters"] = {**({"rope_theta": theta} if theta is not None else {}), **scaling}
    config["rope_scaling"] = dict(scaling)
    with atomic_open(path) as handle:
        json.dump(config, handle, indent=2, sort_keys=True)
        handle.write("\n")

"""Whether a stage that already ran may be skipped on ``cascade run --resume``.

A stage's manifest records what it trained on: its resolved config, seed, parent, the hash
of every local data file, and the ``output_id`` of each stage whose output it used (its
parent, and an rm stage it took rewards from). Resume skips it only while all of those
still hold; otherwise the run would report settings, or stack stages on outputs, that
never trained together. Each mismatch is a ``Difference`` that names the field with its
old and new value, for the one-line error or for the message that says why a stage runs
again (``--rerun-changed``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cascade.config import Recipe
from cascade.config.recipe import BASE
from cascade.data.io import file_sha256
from cascade.errors import CascadeError
from cascade.pipeline.layout import MANIFEST, RunLayout
from cascade.pipeline.sources import data_hash_key, source_file, stage_sources

# Manifest keys written by this module's callers.
OUTPUT_ID = "output_id"  # a fresh id each time a stage (re)starts training
INPUT_IDS = "input_ids"  # stage name -> the output_id of that stage's output used here

_ABSENT = object()


@dataclass(frozen=True)
class Difference:
    """One way a stage's record differs from the recipe (or the files) now."""

    field: str  # relative to the stage: lr, data[0].limit, seed, parent, data
    old: str
    new: str
    file: str | None = None  # the data file, for a changed file

    def text(self) -> str:
        """``field: old -> new``, for messages."""
        return f"{self.field}: {self.old} -> {self.new}"


def input_stages(recipe: Recipe, stage: Any) -> dict[str, str]:
    """The stages whose outputs ``stage`` trains from, by role: ``parent``, and
    ``reward_model`` when it scores with an rm stage of the recipe."""
    used = {"parent": recipe.parent_of(stage.name)}
    reward_model = getattr(stage, "reward_model", None)
    if reward_model in {s.name for s in recipe.stages}:
        used["reward_model"] = reward_model
    return {role: name for role, name in used.items() if name != BASE}


def stage_differences(recipe: Recipe, stage: Any, manifest: dict[str, Any], current_ids: dict[str, str | None],
                      data_now: dict[str, tuple[str, str | None]]) -> list[Difference]:
    """Everything that differs between ``manifest`` (what the stage trained on) and the
    recipe, files and other stages' outputs now.

    ``current_ids``: stage name -> the output_id of that stage's finished output (None when
    it has none). ``data_now``: the stage's data hash key -> (file, its sha256 now, or None
    when it cannot be hashed)."""
    out = []
    if isinstance(manifest.get("config"), dict):
        out += _config_differences(type(stage), manifest["config"], stage.model_dump(mode="json"))
    seed_now = recipe.stage_seed(stage.name)
    if "seed" in manifest and manifest["seed"] != seed_now:
        out.append(Difference("seed", _show(manifest["seed"]), _show(seed_now)))
    parent_now = recipe.parent_of(stage.name)
    if "parent" in manifest and manifest["parent"] != parent_now:
        out.append(Difference("parent", _show(manifest["parent"]), _show(parent_now)))
    for key, then in (manifest.get("data_hashes") or {}).items():
        file, now = data_now.get(key, (key, None))
        if then != "hub" and now is not None and now != then:
            out.append(Difference("data", f"sha256 {then[:12]}...", f"{now[:12]}... ({file} changed)", file=file))
    recorded = manifest.get(INPUT_IDS) or {}
    for role, name in input_stages(recipe, stage).items():
        then_id, now_id = recorded.get(name), current_ids.get(name)
        if then_id and now_id != then_id:
            now_text = f"output {now_id[:8]} ({name} ran again since)" if now_id else f"none ({name} has no finished output)"
            out.append(Difference(role, f"output {then_id[:8]} of {name}", now_text))
    return out


def _config_differences(model: type, then: dict[str, Any], now: dict[str, Any]) -> list[Difference]:
    """Leaf-by-leaf differences of two config dumps. A key the old manifest lacks counts
    only when its value now is not the field's default: a cascade version that added a
    setting must not make every older run look changed."""
    out: list[Difference] = []
    for key in list(now) + [k for k in then if k not in now]:
        old, new = then.get(key, _ABSENT), now.get(key, _ABSENT)
        if old is _ABSENT and _is_default(model, key, new):
            continue
        _diff_values(old, new, key, out)
    return out


def _is_default(model: type, key: str, value: Any) -> bool:
    field = getattr(model, "model_fields", {}).get(key)
    if field is None or field.is_required():
        return False
    default = field.get_default(call_default_factory=True)
    return json.loads(json.dumps(default, default=str)) == value


def _diff_values(old: Any, new: Any, where: str, out: list[Difference]) -> None:
    if old is _ABSENT and new is None:  # an optional nested key added since, left unset
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(new) + [k for k in old if k not in new]:
            _diff_values(old.get(key, _ABSENT), new.get(key, _ABSENT), f"{where}.{key}", out)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new) and \
            any(isinstance(v, (dict, list)) for v in old + new):
        for i, (a, b) in enumerate(zip(old, new)):
            _diff_values(a, b, f"{where}[{i}]", out)
    elif old != new or type(old) is not type(new) and not _same_number(old, new):
        out.append(Difference(where, _show(old), _show(new)))


def _same_number(a: Any, b: Any) -> bool:
    numbers = (int, float)
    return isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) \
        and not isinstance(b, bool) and a == b


def _show(value: Any) -> str:
    if value is _ABSENT:
        return "(unset)"
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value


def describe(differences: list[Difference], limit: int = 3) -> str:
    """``lr: 0.001 -> 0.002; data[0].limit: 24 -> 12 (+1 more)``: one line."""
    shown = "; ".join(d.text() for d in differences[:limit])
    extra = len(differences) - limit
    return shown + (f" (+{extra} more)" if extra > 0 else "")


def read_output_id(manifest_path: Path) -> str | None:
    """The output_id of a finished stage's manifest, or None."""
    if not manifest_path.exists():
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return manifest.get(OUTPUT_ID) if manifest.get("status") == "done" else None


def stage_changes(recipe: Recipe, stage: Any, layout: RunLayout, manifest: dict[str, Any],
                  hashes: dict[Path, str] | None = None) -> list[Difference]:
    """How what ``stage`` trained on (its manifest) differs from the recipe, its local data
    files and the outputs of the stages it starts from, now. ``hashes`` memoises file
    hashes across calls, so a resume reads each data file once."""
    memo = {} if hashes is None else hashes
    data_now: dict[str, tuple[str, str | None]] = {}
    for _, source in stage_sources(stage):
        where = source_file(source, layout.root)
        path = Path(where)
        if path.is_file():
            if path not in memo:
                memo[path] = file_sha256(path)
            data_now[data_hash_key(source, where)] = (where, memo[path])
    current_ids = {name: read_output_id(layout.stage_dir(name) / MANIFEST)
                   for name in input_stages(recipe, stage).values()}
    return stage_differences(recipe, stage, manifest, current_ids, data_now)


def changed_stage_error(stage: Any, manifest: dict[str, Any], changes: list[Difference],
                        recipe_file: str | None) -> CascadeError:
    """The one-line refusal to resume over a stage that would not match its record."""
    first = changes[0]
    what = "finished" if manifest.get("status") == "done" else "was interrupted"
    noun = "data" if first.field == "data" else "settings"
    return CascadeError(
        f"stage {stage.name} {what} on other {noun}: {describe(changes)}. Re-run it and the stages after it "
        f"with --resume --rerun-changed (old outputs are kept), or start a new run with another --out",
        file=first.file or recipe_file, field=f"stages.{stage.name}.{first.field}")

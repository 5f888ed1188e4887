"""Load a recipe: find the YAML, apply ``--set`` overrides, validate, report one clear line.

A bad recipe fails with a single CascadeError such as::

    recipes/bad.yaml:14: field 'stages.math-rl.group_sise': unknown key; allowed: group_size, ...

The line comes from the YAML loader's record of where each key sits; the field path uses
stage names (as ``--set`` does) instead of list indices.
"""

from __future__ import annotations

import importlib.resources
import types
import typing
from pathlib import Path
from typing import Any, Sequence

from pydantic import BaseModel, ValidationError

from cascade.config.recipe import PathError, Recipe
from cascade.config.yaml_lines import load_yaml_with_lines, parse_yaml_value
from cascade.data.validation import describe, format_path, more_suffix, short_repr
from cascade.errors import CascadeError

RawPath = tuple[str | int, ...]
RECIPE_SUFFIXES = (".yaml", ".yml")
PACKAGED_RECIPES = "cascade.recipes"


def packaged_recipe_names() -> list[str]:
    try:
        folder = importlib.resources.files(PACKAGED_RECIPES)
    except ModuleNotFoundError:
        return []
    return sorted(p.name.rsplit(".", 1)[0] for p in folder.iterdir() if p.name.endswith(RECIPE_SUFFIXES))


def read_recipe_text(source: str | Path) -> tuple[str, str]:
    """``(yaml text, label for errors)`` of a recipe file or a packaged recipe name."""
    return _read_recipe(source)[:2]


def _read_recipe(source: str | Path) -> tuple[str, str, Path | None]:
    """``(yaml text, label, folder that relative data paths resolve against)``; packaged
    recipes have no folder (their relative paths, and those of overrides, are the current
    directory's)."""
    path = Path(source).expanduser()
    if path.is_file():
        return decode_recipe(path.read_bytes(), str(source)), str(source), path.parent
    text_source = str(source)
    if text_source.endswith(RECIPE_SUFFIXES) or "/" in text_source or path.exists():
        raise CascadeError("no such recipe file", file=text_source)
    for suffix in RECIPE_SUFFIXES:
        try:
            resource = importlib.resources.files(PACKAGED_RECIPES) / f"{text_source}{suffix}"
        except ModuleNotFoundError:
            break
        if resource.is_file():
            return resource.read_text(encoding="utf-8"), f"{PACKAGED_RECIPES}:{text_source}{suffix}", None
    names = ", ".join(packaged_recipe_names()) or "(none installed)"
    raise CascadeError(f"no recipe file or packaged recipe named '{text_source}'; packaged recipes: {names}")


def decode_recipe(raw: bytes, label: str) -> str:
    """The recipe's text; a byte that is not UTF-8 is an error naming its line and column."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise CascadeError(f"byte 0x{raw[exc.start]:02x} at column {column} is not UTF-8; a recipe is UTF-8 text",
                           file=label, line=line) from None


def load_recipe(source: str | Path, overrides: Sequence[str] = ()) -> Recipe:
    """A validated Recipe from a YAML path or packaged recipe name, with ``--set``
    overrides (``stages.<stage>.<key>=<value>`` or ``<key>[.<key>...]=<value>``) applied.

    Relative data and eval paths written in a recipe file resolve against the file's folder
    (the recipe and its data travel together); paths given with ``--set`` resolve against the
    current directory, like any other command-line path."""
    text, label, folder = _read_recipe(source)
    data, lines = load_yaml_with_lines(text, label)
    if not isinstance(data, dict):
        raise CascadeError(f"a recipe is a YAML mapping (name, base_model, stages, ...), got {type(data).__name__}", file=label, line=1)
    overridden = apply_overrides(data, overrides, label)
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        raise _recipe_error(exc, data, lines, overridden, label) from None
    if folder is not None:
        _resolve_paths(recipe, folder, tuple(overridden))
    return recipe


def _resolve_paths(recipe: Recipe, folder: Path, overridden: tuple[RawPath, ...]) -> None:
    """Join every relative local path the recipe file wrote (not an override's) onto
    ``folder``, in place."""

    def from_override(prefix: RawPath, index: int) -> bool:
        # set by --set: the list (or a container above it), this item, its path, or the path
        # of the one-source mapping form (`data.path=...`)
        return any(key[: len(prefix)] == prefix[: len(key)]
                   and key[len(prefix):] in ((), (index,), (index, "path"), ("path",))
                   for key in overridden)

    def resolve(value: str) -> str:
        path = Path(value).expanduser()
        return value if path.is_absolute() else str(folder / path)

    for i, stage in enumerate(recipe.stages):
        groups: list[tuple[RawPath, list[Any]]] = [(("stages", i, "data"), stage.data)]
        sampled = getattr(stage, "sampled_pairs", None)
        if sampled is not None:
            groups.append((("stages", i, "sampled_pairs", "data"), sampled.data))
        for prefix, sources in groups:
            for j, src in enumerate(sources):
                if src.path is not None and not from_override(prefix, j):
                    src.path = resolve(src.path)
    for suite, sets in recipe.eval.items():
        for j, es in enumerate(sets):
            if es.path is not None and not from_override(("eval", suite), j) and not _hub_path(es.path):
                es.path = resolve(es.path)


def _hub_path(value: str) -> bool:
    from cascade.data.hub import is_hub_id

    return is_hub_id(value)


# ---------------------------------------------------------------- overrides


def apply_overrides(data: dict[str, Any], overrides: Sequence[str], label: str) -> dict[RawPath, str]:
    """Set each ``dotted.key=value`` in ``data`` in place; return the raw path each one
    set, so validation errors can name the override instead of a YAML line.

    Values are YAML (``1e-5``, ``false``, ``[0.9, 0.99]``). A list item is chosen by index
    or by its ``name`` (``stages.math-rl.lr``). Containers along the path must exist; the
    last key may be new (an unknown key then fails validation, naming the override).
    """
    overridden: dict[RawPath, str] = {}
    for text in overrides:
        key, sep, value_text = text.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise CascadeError(f"an override looks like key=value or stages.<stage>.<key>=value, got '{text}'", file=label)
        try:
            value = parse_yaml_value(value_text)
        except Exception as exc:  # yaml raises several error types
            raise CascadeError(f"value is not valid YAML ({exc.__class__.__name__}) in --set '{text}'", file=label, field=key) from None
        container: Any = data
        raw: list[str | int] = []
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            where = ".".join(parts[:depth]) or "the recipe"
            if isinstance(container, dict):
                if not last and part not in container:
                    raise CascadeError(f"no key '{part}' under {where} (from --set '{text}')", file=label, field=key)
                step: str | int = part
            elif isinstance(container, list):
                step = _list_index(container, part, where, text, label, key)
            else:
                raise CascadeError(f"{where} is a {type(container).__name__}, not a mapping (from --set '{text}')", file=label, field=key)
            raw.append(step)
            if last:
                container[step] = value
            else:
                container = container[step]
        overridden[tuple(raw)] = text
    return overridden


def _list_index(items: list[Any], part: str, where: str, text: str, label: str, key: str) -> int:
    if part.lstrip("-").isdigit():
        index = int(part)
        if not -len(items) <= index < len(items):
            raise CascadeError(f"{where} has {len(items)} items, no index {index} (from --set '{text}')", file=label, field=key)
        return index % len(items)
    names = [item.get("name") for item in items if isinstance(item, dict)]
    for index, item in enumerate(items):
        if isinstance(item, dict) and item.get("name") == part:
            return index
    noun = "stage" if where == "stages" else "item"
    known = ", ".join(str(n) for n in names if n is not None) or "(none)"
    raise CascadeError(f"no {noun} named '{part}' in {where}; names: {known} (from --set '{text}')", file=label, field=key)


# ---------------------------------------------------------------- error formatting


def _recipe_error(
    exc: ValidationError, data: dict[str, Any], lines: dict[RawPath, int], overridden: dict[RawPath, str], label: str
) -> CascadeError:
    errors = exc.errors(include_url=False)
    error = errors[0]
    raw, owner = _walk(tuple(error["loc"]))
    kind = error["type"]
    message = describe(error)
    if kind == "extra_forbidden" and owner is not None:
        message = f"unknown key; allowed: {', '.join(owner.model_fields)}"
    elif kind == "value_error" and isinstance(error["ctx"]["error"], PathError):
        raw = raw + error["ctx"]["error"].path
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        # The stage `kind` decides which knobs exist, so name it and its allowed values.
        raw = raw + ("kind",)
        tags = error["ctx"].get("expected_tags", "'sft', 'rm', 'grpo'").replace("'", "")
        got = error["ctx"].get("tag")
        message = (f"got {short_repr(got)}; " if got is not None else "required key missing; ") + f"allowed: {tags}"
    line, via = _place(raw, lines, overridden)
    if via is not None:
        message += f" (from --set '{via}')"
    return CascadeError(message + more_suffix(len(errors)), file=label, line=line, field=_display(raw, data) or None)


def _place(raw: RawPath, lines: dict[RawPath, int], overridden: dict[RawPath, str]) -> tuple[int | None, str | None]:
    """The YAML line of ``raw`` (or of its nearest existing parent), or the override that set it."""
    for n in range(len(raw), -1, -1):
        prefix = raw[:n]
        if prefix in overridden:
            return None, overridden[prefix]
        if prefix in lines:
            return lines[prefix], None
    return None, None


def _display(raw: RawPath, data: dict[str, Any]) -> str:
    """``('stages', 2, 'lr')`` -> ``stages.math-rl.lr`` when stage 2 has a usable name."""
    if len(raw) >= 2 and raw[0] == "stages" and isinstance(raw[1], int):
        stages = data.get("stages")
        if isinstance(stages, list) and 0 <= raw[1] < len(stages) and isinstance(stages[raw[1]], dict):
            name = stages[raw[1]].get("name")
            if isinstance(name, str) and name:
                rest = format_path(raw[2:])
                joined = f"stages.{name}"
                return joined if not rest else joined + ("" if rest.startswith("[") else ".") + rest
    return format_path(raw)


def _walk(loc: tuple[str | int, ...]) -> tuple[RawPath, type[BaseModel] | None]:
    """Follow a pydantic error location through the Recipe type; drop union tags (which are
    not keys in the YAML) and return the raw key path plus the model that holds the last
    key (for an unknown key: the model whose allowed keys to list)."""
    annotation: Any = Recipe
    owner: type[BaseModel] | None = None
    raw: list[str | int] = []
    for element in loc:
        if element == "[key]":  # pydantic's marker for "the dict key itself is invalid"
            continue
        annotation = _unwrap(annotation)
        members = _union_members(annotation)
        if members is not None:
            tagged = {tag: member for member in members for tag in _tags(member)}
            if element in tagged:
                annotation = _unwrap(tagged[element])
                continue
            annotation = None
        owner = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
        raw.append(element)
        if owner is not None and isinstance(element, str):
            field = owner.model_fields.get(element)
            annotation = field.annotation if field is not None else None
        elif isinstance(element, int) and typing.get_origin(annotation) in (list, tuple):
            args = typing.get_args(annotation)
            annotation = args[0] if args else None
        elif isinstance(element, str) and typing.get_origin(annotation) is dict:
            annotation = typing.get_args(annotation)[1]
        else:
            annotation = None
    return tuple(raw), owner


def _unwrap(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    members = _union_members(annotation)
    if members is not None:
        real = [m for m in members if m is not type(None)]
        if len(real) == 1:
            return _unwrap(real[0])
    return annotation


def _union_members(annotation: Any) -> tuple[Any, ...] | None:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return None


def _tags(member: Any) -> list[str]:
    """The tags pydantic puts in an error location for one member of a union."""
    if typing.get_origin(member) is typing.Annotated:
        for meta in typing.get_args(member)[1:]:
            tag = getattr(meta, "tag", None)
            if isinstance(tag, str):
                return [tag]
        member = typing.get_args(member)[0]
    if isinstance(member, type) and issubclass(member, BaseModel) and "kind" in member.model_fields:
        return [str(v) for v in typing.get_args(member.model_fields["kind"].annotation)]
    return [getattr(member, "__name__", str(member))]

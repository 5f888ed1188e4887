"""The data every stage reads: its sources, generated data built on demand, records and file hashes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cascade.config import Recipe
from cascade.config.recipe import DataSource
from cascade.data.io import file_sha256
from cascade.errors import CascadeError
from cascade.pipeline.layout import generated_path


def materialize_generators(recipe: Recipe, root: Path) -> None:
    """Build the generated data (the toy world) the recipe names, once per run directory."""
    specs = [s.generator for st in recipe.stages for _, s in stage_sources(st) if s.generator]
    specs += [es.generator for sets in recipe.eval.values() for es in sets if es.generator]
    if not any(s and s.startswith("toy/") for s in specs):
        return
    marker = root / "data" / "toy" / ".complete"
    if marker.exists():
        return
    from cascade.toyworld import build_toy_world, write_toy_world

    write_toy_world(root / "data" / "toy", build_toy_world(seed=recipe.seed))
    marker.write_text("ok\n")
    missing = [s for s in specs if s and s.startswith("toy/") and not generated_path(root, s).exists()]
    if missing:
        raise CascadeError(f"the toy world has no part {missing[0]!r}; parts are sft/<domain>, rl/<domain>, "
                           "eval/<domain>, preference and rm/chat")


def source_file(source: DataSource, root: Path) -> str:
    """Where a source's records come from: the generated file, the local path or the hub id."""
    return str(generated_path(root, source.generator)) if source.generator else (source.path or source.hub or "")


def data_hash_key(source: DataSource, where: str) -> str:
    """The key a source's file hash is recorded under in a stage manifest's ``data_hashes``."""
    return source.generator or source.path or where


def stage_sources(stage: Any) -> list[tuple[str, DataSource]]:
    """Every data source a stage reads, with its field path: its ``data``, and for a reward
    model with ``sampled_pairs``, the prompts its parent policy answers."""
    out = [(f"stages.{stage.name}.data[{i}]", source) for i, source in enumerate(stage.data)]
    sampled = getattr(stage, "sampled_pairs", None)
    if sampled is not None:
        out += [(f"stages.{stage.name}.sampled_pairs.data[{i}]", source) for i, source in enumerate(sampled.data)]
    return out


def load_stage_records(stage: Any, root: Path, kind: str) -> tuple[list[Any], dict[str, str]]:
    """The stage's records with per-source upsampling, and a hash of every local file."""
    return load_sources(stage.data, root, kind)


def load_sources(data: list[DataSource], root: Path, kind: str) -> tuple[list[Any], dict[str, str]]:
    """The sources' records with per-source upsampling, and a hash of every local file."""
    from cascade.data.hub import load_dataset_source
    from cascade.trainers.sft import mix_sources

    sources, hashes = [], {}
    for source in data:
        where = source_file(source, root)
        if source.hub:
            records = load_dataset_source(source.hub, kind, split=source.split, name=source.name, limit=source.limit,
                                          fmt=source.format)
        else:
            records = load_dataset_source(where, kind, limit=source.limit, fmt=source.format)
        if kind == "sft" and source.train_turns is not None:
            # The recipe's choice for the source wins over what its records say.
            records = [r.model_copy(update={"train_turns": source.train_turns}) for r in records]
        if Path(where).exists():
            hashes[data_hash_key(source, where)] = file_sha256(Path(where))
        else:
            hashes[where] = "hub"
        sources.append((records, source.weight))
    return mix_sources(sources, seed=0), hashes

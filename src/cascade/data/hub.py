"""One entry point for a data source named by a string: a local file or a hub dataset id.

``datasets`` is imported only when a hub id is actually loaded, so this module stays cheap
and torch-free to import. Offline machines get a CascadeError that says what to do instead.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from cascade.data.io import DATA_SUFFIXES, RowPlace, iter_rows, validate_row
from cascade.data.records import RecordKind, record_model
from cascade.errors import CascadeError

# `name` or `owner/name`, as the Hugging Face hub spells dataset ids.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


def is_hub_id(source: str) -> bool:
    """True when ``source`` names a hub dataset rather than a local file.

    A string is a local path when it exists, ends with a data-file suffix (.jsonl, .json,
    .parquet, ...), or starts like a path (``/``, ``./``, ``../``, ``~``); otherwise it is a
    hub id when it reads as ``name`` or ``owner/name``.
    """
    if Path(source).expanduser().exists():
        return False
    if source.lower().endswith(DATA_SUFFIXES) or source.startswith(("/", "./", "../", "~")):
        return False
    return bool(_HUB_ID.match(source))


def load_dataset_source(
    source: str,
    kind: RecordKind | type[BaseModel] | None = None,
    *,
    split: str | None = None,
    name: str | None = None,
    limit: int | None = None,
) -> list[Any]:
    """Rows of a local file or a hub dataset, validated as ``kind`` records when given
    (plain dicts otherwise). ``split`` and ``name`` (the hub config) apply to hub ids;
    ``limit`` keeps the first rows."""
    model = record_model(kind) if kind is not None else None
    if is_hub_id(source):
        rows = _hub_rows(source, split=split, name=name, limit=limit)
    else:
        if split is not None or name is not None:
            raise CascadeError("'split' and 'name' apply to hub datasets, not local files", file=source)
        rows = iter_rows(Path(source).expanduser())
    rows = itertools.islice(rows, limit) if limit is not None else rows
    if model is None:
        return [row for _place, row in rows]
    return [validate_row(model, row, place) for place, row in rows]


def _hub_rows(source: str, *, split: str | None, name: str | None, limit: int | None) -> Any:
    try:
        import datasets
    except ModuleNotFoundError:
        raise CascadeError("loading a hub dataset id needs the datasets package: pip install datasets") from None
    split = split or "train"
    label = f"hub:{source}" + (f"/{name}" if name else "") + f"[{split}]"
    try:
        dataset = datasets.load_dataset(source, name, split=split)
    except Exception as exc:  # network, auth, missing config, offline mode: all user-facing
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CascadeError(
            f"could not load this hub dataset ({reason}); if this machine is offline, "
            "download it elsewhere and pass a local .jsonl or .parquet path instead",
            file=label,
        ) from exc
    if limit is not None:
        dataset = dataset.select(range(min(limit, len(dataset))))
    return ((RowPlace(label, row=index), dict(row)) for index, row in enumerate(dataset))

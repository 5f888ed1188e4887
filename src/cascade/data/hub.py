"""One entry point for a data source named by a string: a local file or a hub dataset id,
in cascade's record schema or a published layout that an adapter turns into records.

``datasets`` is imported only when a hub id is actually loaded, so this module stays cheap
and torch-free to import. Offline machines get a CascadeError that says what to do instead.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from cascade.data.io import DATA_SUFFIXES, RowPlace, iter_rows, validate_row
from cascade.data.records import RecordKind, record_model
from cascade.errors import CascadeError

# The format whose rows already are cascade records (no conversion).
RECORDS_FORMAT = "records"
# Record kinds a published layout can be adapted to.
ADAPTABLE_KINDS = ("sft", "preference", "prompt")

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
    fmt: str | None = None,
) -> list[Any]:
    """Rows of a local file or a hub dataset, validated as ``kind`` records when given
    (plain dicts otherwise). A row in a published layout is first turned into a record by
    the adapter of ``fmt`` (``cascade.data.adapters``; None: detected from the first row).
    ``split`` and ``name`` (the hub config) apply to hub ids; ``limit`` keeps the first rows."""
    rows = source_rows(source, split=split, name=name, limit=limit)
    if kind is None:
        return [row for _place, row in rows]
    return [record for _place, record in adapted_records(rows, kind, fmt)]


def source_rows(
    source: str, *, split: str | None = None, name: str | None = None, limit: int | None = None,
    streaming: bool = False,
) -> Iterator[tuple[RowPlace, dict[str, Any]]]:
    """Raw rows with their place, of a local file or a hub dataset (``streaming``: read a
    hub dataset lazily, for a look at its first rows without downloading it whole)."""
    if is_hub_id(source):
        rows = _hub_rows(source, split=split, name=name, limit=limit, streaming=streaming)
    else:
        if split is not None or name is not None:
            raise CascadeError("'split' and 'name' apply to hub datasets, not local files", file=source)
        rows = iter_rows(Path(source).expanduser())
    return itertools.islice(rows, limit) if limit is not None else iter(rows)


def adapted_records(
    rows: Iterable[tuple[RowPlace, Mapping[str, Any]]], kind: RecordKind | type[BaseModel], fmt: str | None = None,
) -> Iterator[tuple[RowPlace, BaseModel]]:
    """Validated ``kind`` records with their place: each row converted by its format's
    adapter, then checked against the record schema (an error names every bad field)."""
    model = record_model(kind)
    kind_name = kind if isinstance(kind, str) else None
    if kind_name not in ADAPTABLE_KINDS:  # predictions and custom models: our own schema only
        for place, row in rows:
            yield place, validate_row(model, row, place)
        return
    from cascade.data.adapters import ADAPTERS, matching_formats

    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        return
    name = fmt or _detected_format(first[0], first[1], matching_formats(first[1]))
    adapter = ADAPTERS.get(name)
    if adapter is None:
        raise first[0].error(f"unknown data format '{name}'; known: {', '.join(ADAPTERS)}", field="format")
    if kind_name not in adapter.kinds:
        raise first[0].error(f"format '{name}' gives {', '.join(adapter.kinds)} records; this source needs "
                             f"{kind_name} records", field="format")
    for place, row in itertools.chain([first], rows):
        yield place, validate_row(model, adapter.convert(row, place, kind_name), place)


def _detected_format(place: RowPlace, row: Mapping[str, Any], found: list[str]) -> str:
    """The one format the first row matches; a row that matches none is read as cascade
    records (whose schema errors then name each bad field), one that matches several needs
    an explicit ``format:``."""
    if len(found) == 1:
        return found[0]
    if not found:
        return RECORDS_FORMAT
    raise place.error(f"cannot tell the data format: the row matches several ({', '.join(found)}); "
                      "set `format:` on this source", field="format")


def check_rows(
    rows: Iterable[tuple[RowPlace, Mapping[str, Any]]], kind: str, fmt: str | None = None,
) -> list[CascadeError]:
    """Every problem of ``rows`` read as ``kind`` records (through the format's adapter), one
    error per bad row, each naming every bad field; reading goes on past a bad row."""
    problems: list[CascadeError] = []
    rows = iter(rows)
    kind_name = kind if isinstance(kind, str) else None
    while True:
        try:
            item = next(rows)
        except StopIteration:
            return problems
        except CascadeError as exc:  # the file itself (bad JSON, missing, unreadable): no more rows
            problems.append(exc)
            return problems
        if fmt is None and kind_name in ADAPTABLE_KINDS:  # the first row decides, as when loading
            from cascade.data.adapters import matching_formats

            try:
                fmt = _detected_format(item[0], item[1], matching_formats(item[1]))
            except CascadeError as exc:
                return [exc]
        try:
            next(adapted_records([item], kind, fmt))
        except CascadeError as exc:
            problems.append(exc)
            if exc.field == "format":  # an unknown or unfit format fails every row alike
                return problems


def _hub_rows(source: str, *, split: str | None, name: str | None, limit: int | None, streaming: bool = False) -> Any:
    try:
        import datasets
    except ModuleNotFoundError:
        raise CascadeError("loading a hub dataset id needs the datasets package: pip install datasets") from None
    split = split or "train"
    label = f"hub:{source}" + (f"/{name}" if name else "") + f"[{split}]"
    try:
        extra = {"streaming": True} if streaming else {}
        dataset = datasets.load_dataset(source, name, split=split, **extra)
    except Exception as exc:  # network, auth, missing config, offline mode: all user-facing
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CascadeError(
            f"could not load this hub dataset ({reason}); if this machine is offline, "
            "download it elsewhere and pass a local .jsonl or .parquet path instead",
            file=label,
        ) from exc
    if limit is not None and not streaming:
        dataset = dataset.select(range(min(limit, len(dataset))))
    return ((RowPlace(label, row=index), dict(row)) for index, row in enumerate(dataset))

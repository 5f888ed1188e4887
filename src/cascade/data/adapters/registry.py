"""The adapter registry, format detection and the row pipeline that uses them.

``ADAPTERS`` maps a format name (the recipe's ``format:`` value) to its ``Adapter``.
``detect_format`` names the one format whose distinctive fields a row has, or None when no
format or several match: guessing between two layouts could give wrong ground truths, so an
ambiguous file needs an explicit ``format:``. Torch-free.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping

from cascade.data.adapters import (
    allenai_if,
    deepcoder,
    identity,
    lcb,
    nemo_gym,
    nemotron_if,
    nemotron_math,
    nemotron_sft,
    nemotron_swe,
    taco,
    trl,
    verl,
)
from cascade.data.adapters.base import Adapter
from cascade.data.io import RowPlace
from cascade.errors import CascadeError

ADAPTERS: dict[str, Adapter] = {
    module.ADAPTER.name: module.ADAPTER
    for module in (identity, nemotron_sft, nemotron_math, nemotron_if, nemotron_swe, nemo_gym, trl, allenai_if,
                   lcb, taco, deepcoder, verl)
}


def matching_formats(row: Mapping[str, Any]) -> list[str]:
    """Every format whose distinctive fields ``row`` has."""
    if not isinstance(row, Mapping):
        return []
    return [name for name, adapter in ADAPTERS.items() if adapter.detect(row)]


def detect_format(row: Mapping[str, Any]) -> str | None:
    """The format of ``row`` when exactly one format matches it, else None."""
    found = matching_formats(row)
    return found[0] if len(found) == 1 else None


def get_adapter(fmt: str) -> Adapter:
    try:
        return ADAPTERS[fmt]
    except KeyError:
        raise CascadeError(f"unknown data format {fmt!r}; known: {', '.join(ADAPTERS)}", field="format") from None


def adapt_rows(rows: Iterable[tuple[RowPlace, dict[str, Any]]], fmt: str | None, kind: str) -> Iterator[dict[str, Any]]:
    """Convert ``(place, row)`` pairs to records of ``kind``. ``fmt`` None: the format is
    detected from the first row (and then used for every row); a first row that matches
    no format or several is an error asking for ``format:``."""
    adapter = get_adapter(fmt) if fmt is not None else None
    for place, row in rows:
        if adapter is None:
            adapter = get_adapter(_detected(place, row))
        yield adapter.convert(row, place, kind)


def _detected(place: RowPlace, row: Mapping[str, Any]) -> str:
    found = matching_formats(row)
    if len(found) == 1:
        return found[0]
    keys = ", ".join(sorted(map(str, row))[:12]) if isinstance(row, Mapping) else type(row).__name__
    if found:
        why = f"the row matches several formats ({', '.join(found)})"
    else:
        why = f"the row's fields ({keys}) match no known format"
    raise place.error(f"cannot tell the data format: {why}; set `format:` on this source to one of: "
                      f"{', '.join(ADAPTERS)}")

"""Format ``records``: rows already in cascade's own schema (docs/records.md), kept as they are.

Detected by the fields only our schema has together: ``verifier`` + ``ground_truth``
(prompt records), ``messages`` + ``mode`` (SFT), or string ``chosen``/``rejected`` next to a
string ``prompt`` or a ``messages`` list (preference pairs; TRL's plain explicit-prompt
preference rows are the same shape and read the same). Certainty: our own contract.
Torch-free.
"""

from __future__ import annotations

from typing import Any, Mapping

from cascade.data.adapters.base import KINDS, Adapter, Row


def looks_like_records(row: Mapping[str, Any]) -> bool:
    if "verifier" in row and "ground_truth" in row:
        return True
    if "mode" in row and isinstance(row.get("messages"), list):
        return True
    pair = isinstance(row.get("chosen"), str) and isinstance(row.get("rejected"), str)
    return pair and (isinstance(row.get("prompt"), str) or isinstance(row.get("messages"), list))


def _build(row: Row, kind: str) -> dict[str, Any]:
    return dict(row.row)


ADAPTER = Adapter(
    name="records",
    kinds=KINDS,
    summary="cascade's own record schema (identity)",
    detect=looks_like_records,
    build=_build,
)

"""Instruction-following ground truths as the ``instruction_following`` verifier reads them.

Shared by the Nemotron-Cascade IF-RL adapters and the allenai IF-RLVR adapter. The output
is always the official IFEval layout ``{"instruction_id_list": [...], "kwargs": [...]}``
with one kwargs entry per instruction, each an object or ``null``. Normalised here:

- a kwargs entry may arrive as ``null`` (no arguments), a dict, or JSON text of either
  (Cascade 2 IF-RL rows mix all three);
- a dict entry from Parquet carries the union of all instructions' keys, the unused ones
  ``null``; those keys are dropped (IFEval's ``build_description`` rejects them).
Torch-free.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from cascade.data.adapters.base import Row

VERIFIER = "instruction_following"


def clean_kwargs_entry(row: Row, where: str, entry: Any) -> tuple[bool, dict[str, Any] | None]:
    """``(ok, entry)``: ``None`` stays ``None``; a dict (or its JSON text) loses null values."""
    if entry is None:
        return True, None
    if isinstance(entry, str):
        text = entry.strip()
        if text in ("", "null", "None"):
            return True, None
        try:
            entry = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            row.bad(where, f"a string kwargs entry must be JSON text of an object: {exc}")
            return False, None
        if entry is None:
            return True, None
    if not isinstance(entry, Mapping):
        row.bad(where, f"must be an object or null (got {type(entry).__name__})")
        return False, None
    return True, {str(k): v for k, v in entry.items() if v is not None}


def if_ground_truth(row: Row, ids: Any, kwargs: Any, ids_field: str = "instruction_id_list",
                    kwargs_field: str = "kwargs") -> dict[str, Any] | None:
    """The verifier's ground truth from an id list and an aligned kwargs list (every
    problem recorded under the dataset's field names)."""
    ok = True
    if isinstance(ids, str):
        try:
            ids = json.loads(ids)
        except json.JSONDecodeError:
            ids = None
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        row.bad(ids_field, "must be a non-empty list of instruction id strings")
        ok = False
    if isinstance(kwargs, str):
        try:
            kwargs = json.loads(kwargs)
        except json.JSONDecodeError as exc:
            row.bad(kwargs_field, f"not valid JSON: {exc}")
            return None
    if kwargs is None and isinstance(ids, list):
        kwargs = [None] * len(ids)
    if not isinstance(kwargs, list):
        row.bad(kwargs_field, f"must be a list with one entry per instruction (got {type(kwargs).__name__})")
        return None
    if ok and len(kwargs) != len(ids):
        row.bad(kwargs_field, f"has {len(kwargs)} entries for {len(ids)} instructions")
        ok = False
    cleaned = []
    for index, entry in enumerate(kwargs):
        good, value = clean_kwargs_entry(row, f"{kwargs_field}[{index}]", entry)
        ok = ok and good
        cleaned.append(value)
    return {"instruction_id_list": list(ids), "kwargs": cleaned} if ok else None

"""Format ``nemotron_sft``: the released Nemotron-Cascade SFT sets -> ``sft`` records.

Covers ``nvidia/Nemotron-Cascade-SFT-Stage-1``, ``-SFT-Stage-2``, ``-SFT-SWE`` and the
Cascade 2 SFT data (``nvidia/Nemotron-Cascade-2-SFT-Data``), which share one row shape:

- ``messages`` (required): OpenAI-style ``{role, content}`` turns, the last one the
  assistant's; reasoning sits inline as ``<think>...</think>`` in assistant content.
- ``thinking`` (optional): the mode flag. A bool, or the strings ``"true"``/``"false"``
  (its type is not established for SFT-SWE). Without it the mode is read from the final
  assistant turn: a non-empty ``<think>`` block means ``think``.
- ``category``, ``source``, ``generator`` (optional strings), ``tools`` (optional list),
  kept as ``source`` and ``meta``.

Field list confirmed against public code that reads the real rows: NeMo RL's Cascade 2 SFT
wrapper (``nemo_rl/data/datasets/response_datasets/nemotron_cascade2_sft.py``, read in the
``avenkateshha/RL`` fork of NVIDIA-NeMo/RL: ``messages`` by key, a final assistant turn
required, ``tools`` optional, Stage-2 loaded by the same code), the Stage-2 loader in
``SASUKE40/Etude`` (``messages`` by key; ``category``, ``source``, ``generator``,
``thinking`` as optional reads), ``swiss-ai/self-distillation`` (Stage-1 ``messages``,
``source``, ``generator``). Certainty: ``messages`` confirmed; ``thinking`` is only an
optional read in third-party code, hence the fallback to the think block. Torch-free.
"""

from __future__ import annotations

from typing import Any, Mapping

from cascade.data.adapters.base import Adapter, Row, read_messages, thinking_mode


def looks_like_nemotron_sft(row: Mapping[str, Any]) -> bool:
    return (isinstance(row.get("messages"), list) and "mode" not in row and "ground_truth" not in row
            and any(key in row for key in ("thinking", "generator", "category")))


def _mode(row: Row, messages: list[dict[str, Any]] | None) -> str | None:
    flag = row.get("thinking")
    if flag is None:
        return thinking_mode(messages) if messages else None
    if isinstance(flag, str) and flag.strip().lower() in ("true", "false"):
        flag = flag.strip().lower() == "true"
    if not isinstance(flag, bool):
        row.bad("thinking", f"must be a bool (got {type(flag).__name__} {flag!r})")
        return None
    return "think" if flag else "no_think"


def _build(row: Row, kind: str) -> dict[str, Any] | None:
    raw = row.get("messages")
    messages = read_messages(row, "messages", raw)
    mode = _mode(row, messages)
    if isinstance(raw, list) and raw and isinstance(raw[-1], dict) and raw[-1].get("role") != "assistant":
        row.bad(f"messages[{len(raw) - 1}].role", "the last turn must be the assistant's (the training target)")
    source = row.text("source", required=False)
    meta = {k: row.get(k) for k in ("category", "generator") if isinstance(row.get(k), str)}
    if messages is None or mode is None:
        return None
    record: dict[str, Any] = {"id": row.row_id("id", "uuid"), "messages": messages, "mode": mode}
    if source:
        record["source"] = source
    if isinstance(row.get("tools"), list):
        record["tools"] = row.get("tools")
    if meta:
        record["meta"] = meta
    return record


ADAPTER = Adapter(
    name="nemotron_sft",
    kinds=("sft",),
    summary="Nemotron-Cascade SFT Stage-1/Stage-2/SFT-SWE and Cascade 2 SFT rows",
    detect=looks_like_nemotron_sft,
    build=_build,
)

"""Format ``nemotron_if``: ``nvidia/Nemotron-Cascade-RL-Instruction-Following`` -> ``prompt``
records (verifier ``instruction_following``).

Fields read:
- ``prompt`` (required): a chat list (``[{"role": "user", "content": ...}]`` in the
  released Parquet) or a plain string;
- ``instruction_id_list`` (required): IFEval instruction ids;
- ``kwargs`` (required): one entry per id. Parquet stores each entry as a struct with the
  union of all kwarg keys, the unused ones null: those keys are dropped. A whole entry may
  be null (no arguments) or JSON text; both are accepted;
- ``index`` / ``id`` (optional): the row id.

Record: ``{"id", "messages" | "prompt", "verifier": "instruction_following",
"ground_truth": {"instruction_id_list", "kwargs"}, "meta": {"prompt": user text}}``
(``meta.prompt`` serves the repeat-the-prompt instructions).

Field list confirmed against public code that reads the released Parquet by key:
``geehokim/verl_nemotron_merge`` ``scripts/convert_ifrl_to_verl.py`` (all four fields; the
null-key struct quirk in its ``test_if_reward.py``) and ``imhmhm/verl``
``examples/data_preprocess/instruction_following.py``. The NVIDIA-style row layout with a
``null`` kwargs entry is shown in NVIDIA's NeMo-Gym ``resources_servers/instruction_following``
README. Certainty: confirmed by third-party readers of the real file. Torch-free.
"""

from __future__ import annotations

from typing import Any, Mapping

from cascade.data.adapters.base import Adapter, Row, last_user_text, read_messages
from cascade.data.adapters.if_truth import VERIFIER, if_ground_truth


def looks_like_nemotron_if(row: Mapping[str, Any]) -> bool:
    return ("instruction_id_list" in row and "kwargs" in row and "prompt" in row
            and "responses_create_params" not in row)


def prompt_fields(row: Row, key: str = "prompt") -> tuple[dict[str, Any], str | None]:
    """``({"prompt": str} | {"messages": [...]}, user text)`` from a string or a chat list."""
    value = row.get(key)
    if isinstance(value, str):
        if not value.strip():
            row.bad(key, "must not be empty")
            return {}, None
        return {"prompt": value}, value
    if value is None:
        row.bad(key, "required key missing")
        return {}, None
    messages = read_messages(row, key, value)
    if messages is None:
        return {}, None
    return {"messages": messages}, last_user_text(messages)


def _build(row: Row, kind: str) -> dict[str, Any] | None:
    prompt, text = prompt_fields(row)
    truth = if_ground_truth(row, row.get("instruction_id_list"), row.get("kwargs"))
    if not prompt or truth is None:
        return None
    return {"id": row.row_id("id", "index", "key"), **prompt, "verifier": VERIFIER, "ground_truth": truth,
            "meta": {"prompt": text} if text else {}}


ADAPTER = Adapter(
    name="nemotron_if",
    kinds=("prompt",),
    summary="Nemotron-Cascade-RL-Instruction-Following rows (prompt, instruction_id_list, kwargs)",
    detect=looks_like_nemotron_if,
    build=_build,
    renames={"messages": "prompt"},
)

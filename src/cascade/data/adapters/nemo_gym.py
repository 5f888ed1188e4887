"""Format ``nemo_gym``: ``nvidia/Nemotron-Cascade-2-RL-data`` (NeMo-Gym rows) -> ``prompt`` records.

Every row carries its prompt as an OpenAI Responses API request:
``responses_create_params.input`` is a string or a list of ``{role, content}`` items
(``content`` a string or a list of text parts; the ``developer`` role is read as
``system``). The other fields depend on the subset, and decide the verifier:

- IF-RL rows (``instruction_id_list`` + ``kwargs``; entries may be ``null``, JSON text or
  objects) -> ``instruction_following``. A kwargs list of another length than the id list
  is an error (a silent pad could drop an argument). The ids use NVIDIA's extended
  taxonomy; ids the verifier does not know are reported when scoring, not here;
- MCQA rows (``expected_answer`` letter + ``options``, a list of one-key
  ``{letter: text}`` objects) -> ``mcq`` with ``{"answer", "options"}``;
- math rows (``expected_answer`` without ``options``, e.g. the AceReason rows of MOPD)
  -> ``math``;
- structured-output (``schema_str``), workbench (``environment_name``/``ground_truth``
  tool calls) and SWE-RL (``FAIL_TO_PASS``) rows need verifiers cascade does not have:
  such a row is an error that says which kind it is.

``id``, ``dataset``, ``agent_ref.name``, ``pass_rate`` and ``category`` go to ``meta``.

Field list confirmed against the dataset card (core columns ``responses_create_params``,
``agent_ref``, ``dataset``; per-subset columns) and public readers of the real JSONL:
``thinking-machines-lab/tinker-cookbook`` (``recipes/nemotron_cascade/rl/envs/``:
``if_rl.py``, ``mcqa.py``, ``structured_output.py``, ``workbench.py``, ``swe_rl_env.py``) and
NVIDIA's NeMo-Gym ``resources_servers/mcqa`` and ``instruction_following`` READMEs (field
meanings).
Certainty: card for the columns, third-party code for the per-subset fields. Torch-free.
"""

from __future__ import annotations

from typing import Any, Mapping

from cascade.data.adapters.base import Adapter, Row, last_user_text, read_messages
from cascade.data.adapters.if_truth import VERIFIER as IF_VERIFIER
from cascade.data.adapters.if_truth import if_ground_truth

_ROLE_MAP = {"developer": "system"}
_KEY = "responses_create_params"


def looks_like_nemo_gym(row: Mapping[str, Any]) -> bool:
    return isinstance(row.get(_KEY), Mapping)


def _messages(row: Row) -> list[dict[str, Any]] | None:
    params = row.get(_KEY)
    if not isinstance(params, Mapping):
        row.bad(_KEY, "must be an object with an 'input'")
        return None
    value = params.get("input")
    if isinstance(value, str) and value.strip():
        return [{"role": "user", "content": value}]
    if value is None:
        row.bad(f"{_KEY}.input", "required key missing")
        return None
    messages = read_messages(row, f"{_KEY}.input", value, role_map=_ROLE_MAP)
    if messages is not None:
        # Responses API items may carry a type ("message"); the record keeps role/content.
        messages = [{k: v for k, v in m.items() if k != "type"} for m in messages]
    return messages


def _mcq_truth(row: Row) -> dict[str, Any] | None:
    answer = row.get("expected_answer")
    options = row.get("options")
    ok = True
    if not isinstance(answer, str) or not answer.strip():
        row.bad("expected_answer", "must be the letter of the correct option")
        ok = False
    texts: dict[str, str] = {}
    if not isinstance(options, list) or not options:
        row.bad("options", "must be a non-empty list of {letter: text}")
        return None
    for index, option in enumerate(options):
        if not (isinstance(option, Mapping) and len(option) == 1):
            row.bad(f"options[{index}]", "must be an object with one key, the letter")
            ok = False
            continue
        (letter, text), = option.items()
        if not isinstance(text, str):
            row.bad(f"options[{index}].{letter}", "must be a string")
            ok = False
            continue
        texts[str(letter).strip().upper()] = text
    letters = sorted(texts)
    if ok and letters != [chr(ord("A") + i) for i in range(len(letters))]:
        row.bad("options", f"letters must run A, B, C, ... (got {', '.join(letters)})")
        ok = False
    if ok and answer.strip().upper() not in texts:
        row.bad("expected_answer", f"{answer!r} is not one of the option letters")
        ok = False
    return {"answer": answer.strip().upper(), "options": [texts[k] for k in letters]} if ok else None


def _unsupported(row: Row) -> str | None:
    if row.has("schema_str"):
        return "a structured-output row (schema_str): cascade has no JSON-schema verifier"
    if row.get("environment_name") == "workbench" or isinstance(row.get("ground_truth"), list):
        return "a workbench row (tool-call ground_truth): cascade has no workplace-environment verifier"
    if row.has("FAIL_TO_PASS"):
        return "an SWE-RL row (FAIL_TO_PASS): cascade's SWE reward needs a gold patch, not tests to run"
    return None


def _build(row: Row, kind: str) -> dict[str, Any] | None:
    messages = _messages(row)
    meta: dict[str, Any] = {k: row.get(k) for k in ("dataset", "category", "pass_rate") if row.has(k)}
    agent = row.get("agent_ref")
    if isinstance(agent, Mapping) and isinstance(agent.get("name"), str):
        meta["agent"] = agent["name"]
    if "instruction_id_list" in row.row:
        verifier = IF_VERIFIER
        truth = if_ground_truth(row, row.get("instruction_id_list"), row.get("kwargs"))
        text = row.get("prompt") if isinstance(row.get("prompt"), str) else (messages and last_user_text(messages))
        if text:
            meta["prompt"] = text
    elif "options" in row.row:
        verifier, truth = "mcq", _mcq_truth(row)
    elif row.has("expected_answer"):
        value = row.get("expected_answer")
        verifier = "math"
        truth = str(value).strip() if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None
        if not truth:
            row.bad("expected_answer", "must be a non-empty string or number")
    else:
        why = _unsupported(row)
        row.bad("(row)", why or "no ground truth found: expected instruction_id_list, options or expected_answer")
        return None
    if messages is None or truth is None:
        return None
    return {"id": row.row_id("id", "uuid"), "messages": messages, "verifier": verifier, "ground_truth": truth,
            "meta": meta}


ADAPTER = Adapter(
    name="nemo_gym",
    kinds=("prompt",),
    summary="Nemotron-Cascade 2 RL data (NeMo-Gym rows: responses_create_params.input)",
    detect=looks_like_nemo_gym,
    build=_build,
    renames={"messages": f"{_KEY}.input"},
)

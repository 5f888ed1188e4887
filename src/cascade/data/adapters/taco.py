"""Format ``taco``: TACO and APPS problems -> ``prompt`` records (verifier ``code``).

Fields read:
- ``question`` (required string): the statement;
- ``input_output`` (required): JSON text of ``{"inputs": [...], "outputs": [...],
  "fn_name"?}``: stdin tests, or function tests when ``fn_name`` is set (each input the
  argument list; see ``code_truth`` for the output wrapping);
- ``starter_code`` (optional): shown in the prompt;
- ``problem_id`` / ``name`` / ``id`` (optional) -> id; ``difficulty``, ``source``,
  ``url``, ``time_limit`` -> ``meta``.

Record: ``{"id", "messages": [user], "verifier": "code", "ground_truth": {"style":
"stdin" | "call", "tests"}, "meta"}``. Rows whose ``input_output`` is empty (some APPS
problems have no tests) are an error: they cannot be scored.

Field list confirmed against public readers of the real rows: verl's
``verl/utils/reward_score/prime_code`` (decodes ``input_output`` JSON and reads
``inputs``/``outputs``/``fn_name``), agentica's rllm ``rllm/rewards/code_reward.py`` (TACO and
APPS via the TACO judge, which joins list inputs and accepts wrapped outputs). Certainty:
official-style readers; no sample rows were available (docs/adapters.md). Torch-free.
"""

from __future__ import annotations

from typing import Any, Mapping

from cascade.data.adapters.base import MISSING, Adapter, Row
from cascade.data.adapters.code_truth import code_prompt, from_input_output

_META = ("difficulty", "source", "url", "time_limit", "name")


def looks_like_taco(row: Mapping[str, Any]) -> bool:
    return "input_output" in row and "question" in row


def _build(row: Row, kind: str) -> dict[str, Any] | None:
    question = row.text("question")
    io = row.json_value("input_output")
    truth = from_input_output(row, "input_output", io) if io is not MISSING else None
    starter = row.text("starter_code", required=False)
    if question is None or truth is None:
        return None
    meta = {k: row.get(k) for k in _META if isinstance(row.get(k), (str, int, float)) and not isinstance(row.get(k), bool)}
    return {"id": row.row_id("problem_id", "id", "name"),
            "messages": [{"role": "user", "content": code_prompt(question, starter, truth.get("fn_name"))}],
            "verifier": "code", "ground_truth": truth, "meta": meta}


ADAPTER = Adapter(
    name="taco",
    kinds=("prompt",),
    summary="TACO / APPS rows (question, input_output JSON, starter_code)",
    detect=looks_like_taco,
    build=_build,
)

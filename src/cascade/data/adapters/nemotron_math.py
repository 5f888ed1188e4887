"""Format ``nemotron_math``: ``nvidia/Nemotron-Cascade-RL-Math`` -> ``prompt`` records (verifier ``math``).

Fields read:
- ``problem`` (required string): the bare problem. The data carries no answer-format
  instruction, so the math verifier's ``\\boxed{}`` instruction is appended (unless the
  problem already asks for ``\\boxed``);
- ``answer`` (required): the short reference answer, used as the ground truth unchanged
  (a number is turned into its text; the math verifier compares by value, so ``14`` and
  ``14.0`` agree);
- ``source``, ``task_type`` (optional strings) -> ``meta``; ``id``/``index`` when present.

Record: ``{"id", "messages": [user], "verifier": "math", "ground_truth": answer, "meta"}``.
The same layout (``problem``/``answer``) is used by DeepScaleR and AceReason-Math, which
read the same way.

Field list confirmed against public code that loads the released file and reads the
fields by key: ``eoeldroal/Distill_start`` ``Code/rl/prepare_cascade.py`` and
``geehokim/verl_nemotron_merge`` ``scripts/convert_math_json_to_verl_parquet.py`` (both
read ``problem``, ``answer``, ``source``; the file is one JSON array). Certainty: those
three confirmed by two independent readers; ``task_type`` is in no reader seen and is
only carried along when present. Torch-free.
"""

from __future__ import annotations

from typing import Any, Mapping

from cascade.data.adapters.base import Adapter, Row

# The AceReason-style instruction (paper notes on the math prompt); the math verifier
# scores the last \boxed{} of the answer.
BOXED_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


def looks_like_nemotron_math(row: Mapping[str, Any]) -> bool:
    return "problem" in row and "answer" in row and "tests" not in row


def math_prompt(problem: str) -> str:
    return problem if "\\boxed" in problem else f"{problem.rstrip()}\n{BOXED_INSTRUCTION}"


def answer_text(row: Row, key: str = "answer") -> str | None:
    value = row.get(key)
    if isinstance(value, bool) or value is None:
        row.bad(key, f"must be a string or a number (got {type(value).__name__})" if key in row.row
                else "required key missing")
        return None
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    if not isinstance(value, str) or not value.strip():
        row.bad(key, "must be a non-empty string or a number")
        return None
    return value.strip()


def _build(row: Row, kind: str) -> dict[str, Any] | None:
    problem = row.text("problem")
    answer = answer_text(row)
    meta = {k: row.get(k) for k in ("source", "task_type") if isinstance(row.get(k), str)}
    if problem is None or answer is None:
        return None
    return {"id": row.row_id("id", "index"), "messages": [{"role": "user", "content": math_prompt(problem)}],
            "verifier": "math", "ground_truth": answer, "meta": meta}


ADAPTER = Adapter(
    name="nemotron_math",
    kinds=("prompt",),
    summary="Nemotron-Cascade-RL-Math rows (problem, answer, source)",
    detect=looks_like_nemotron_math,
    build=_build,
)

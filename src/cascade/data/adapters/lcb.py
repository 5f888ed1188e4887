"""Format ``lcb``: LiveCodeBench ``code_generation_lite`` rows -> ``prompt`` records (verifier ``code``).

Fields read:
- ``question_content`` (required string): the statement;
- ``public_test_cases`` (required): JSON text of ``[{"input", "output", "testtype"}]``;
- ``private_test_cases`` (optional): the hidden tests, JSON text or base64 of zlib of a
  pickled JSON string, decoded by ``decode_lcb_private_tests`` without running the pickle;
- ``metadata`` (JSON text): ``func_name`` for functional (LeetCode) problems;
- ``starter_code``, ``question_id``, ``question_title``, ``platform``, ``contest_id``,
  ``contest_date``, ``difficulty`` (optional) -> prompt and ``meta``.

Record: ``{"id": question_id, "messages": [user], "verifier": "code", "ground_truth":
{"style": "stdin" | "call", "tests": public + private}, "meta"}``; the tests are public
then private, as LiveCodeBench's ``get_evaluation_sample`` orders them. A training set
made from LCB should use problems outside the eval windows (``cascade eval`` applies them).

Field list confirmed against LiveCodeBench's own loader,
``lcb_runner/benchmarks/code_generation.py`` (``CodeGenerationProblem``: every field above,
and the private-test decoding). Certainty: the official reader. Torch-free.
"""

from __future__ import annotations

from typing import Any, Mapping

from cascade.data.adapters.base import MISSING, Adapter, Row
from cascade.data.adapters.code_truth import code_prompt, from_lcb_tests
from cascade.data.adapters.lcb_tests import decode_lcb_private_tests
from cascade.errors import CascadeError

_META = ("question_title", "platform", "contest_id", "contest_date", "difficulty")


def looks_like_lcb(row: Mapping[str, Any]) -> bool:
    return "question_content" in row and "public_test_cases" in row


def _build(row: Row, kind: str) -> dict[str, Any] | None:
    question = row.text("question_content")
    public = row.json_value("public_test_cases")
    private: list[Any] = []
    if row.has("private_test_cases"):
        try:
            private = decode_lcb_private_tests(row.get("private_test_cases"))
        except CascadeError as exc:
            row.bad("private_test_cases", exc.message)
    metadata = row.json_value("metadata", required=False)
    if metadata is MISSING:
        metadata = {}
    if not isinstance(metadata, Mapping):
        row.bad("metadata", "must be an object (JSON text of one)")
        metadata = {}
    fn_name = metadata.get("func_name")
    starter = row.text("starter_code", required=False)
    truth = None
    if public is not MISSING:
        if not isinstance(public, list):
            row.bad("public_test_cases", "must be a list of tests")
        else:
            truth = from_lcb_tests(row, "public_test_cases", public + private, fn_name)
    if question is None or truth is None or row.problems:
        return None
    meta = {k: str(row.get(k)) for k in _META if row.has(k)}
    meta["private_tests"] = len(private)
    call_fn = fn_name if truth["style"] == "call" else None
    return {"id": row.row_id("question_id"), "messages": [{"role": "user", "content": code_prompt(question, starter, call_fn)}],
            "verifier": "code", "ground_truth": truth, "meta": meta}


ADAPTER = Adapter(
    name="lcb",
    kinds=("prompt",),
    summary="LiveCodeBench code_generation_lite rows (public and compressed private tests)",
    detect=looks_like_lcb,
    build=_build,
)

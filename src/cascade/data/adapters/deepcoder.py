"""Format ``deepcoder``: agentica's DeepCoder problems -> ``prompt`` records (verifier ``code``).

``agentica-org/DeepCoder-Preview-Dataset`` (subsets ``lcbv5``, ``primeintellect``,
``taco``, ``codeforces``) and the rllm test files share one row shape:

- ``problem`` (required string): the statement;
- ``tests`` (required): JSON text (or the decoded value) whose layout depends on the
  subset: LiveCodeBench test list, PrimeIntellect test list, TACO ``{inputs, outputs,
  fn_name?}`` object, a plain ``[{input, output}]`` list, or LeetCode's
  ``{"functional": "<check code>"}`` (run as assert tests with LeetCode's imports);
- ``metadata`` (optional object or JSON text): ``func_name`` for LiveCodeBench functional
  problems; ``starter_code`` (optional) -> the prompt.

Record: ``{"id", "messages": [user], "verifier": "code", "ground_truth", "meta"}``.

Field list confirmed against public readers of the real rows: agentica's rllm
``scripts/data/deepcoder_dataset.py`` (``problem``, ``tests``, ``metadata.func_name``,
``starter_code``) and ``rllm/rewards/code_reward.py`` (per-subset test layouts), and NVIDIA
NeMo RL forks' ``nemo_rl/data/eval_datasets/deepcoder_preview.py`` (``problem``, ``tests`` as
JSON text; ``testtype`` and PrimeIntellect ``type``). Local rllm test files with the
``problem``/``tests`` shape were used as a check. Certainty: third-party and official
readers agree. Torch-free.
"""

from __future__ import annotations

from typing import Any, Mapping

from cascade.data.adapters.base import MISSING, Adapter, Row
from cascade.data.adapters.code_truth import code_prompt, from_test_list


def looks_like_deepcoder(row: Mapping[str, Any]) -> bool:
    return "problem" in row and "tests" in row


def _build(row: Row, kind: str) -> dict[str, Any] | None:
    question = row.text("problem")
    metadata = row.json_value("metadata", required=False)
    if metadata is MISSING:
        metadata = {}
    if not isinstance(metadata, Mapping):
        row.bad("metadata", "must be an object (or JSON text of one)")
        metadata = {}
    tests = row.json_value("tests")
    truth = from_test_list(row, "tests", tests, metadata.get("func_name")) if tests is not MISSING else None
    starter = row.text("starter_code", required=False)
    if question is None or truth is None:
        return None
    return {"id": row.row_id("id", "problem_id"),
            "messages": [{"role": "user", "content": code_prompt(question, starter, truth.get("fn_name"))}],
            "verifier": "code", "ground_truth": truth, "meta": {}}


ADAPTER = Adapter(
    name="deepcoder",
    kinds=("prompt",),
    summary="DeepCoder rows (problem, tests JSON in the LCB/PrimeIntellect/TACO/LeetCode layouts)",
    detect=looks_like_deepcoder,
    build=_build,
)

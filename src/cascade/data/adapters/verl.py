"""Format ``verl``: verl's RL parquet layout -> ``prompt`` records.

Fields read (verl's ``RLHFDataset`` and its ``examples/data_preprocess`` scripts):
- ``prompt`` (required): a chat list ``[{role, content}]``;
- ``data_source`` (required string) and ``ability`` (string): route the row to a verifier,
  the way verl's ``default_compute_score`` routes by ``data_source``;
- ``reward_model.ground_truth`` (required): the reference (``reward_model.style`` is
  ``rule``);
- ``extra_info`` (optional object): ``index``/``id``; rows that cascade exported itself
  (``cascade.cluster.verl_data``) carry ``verifier`` and ``record`` here and are read back
  exactly.

Routing: cascade's own export -> its ``verifier`` with the JSON-decoded ground truth; a
ground truth in the IFEval layout (``{instruction_id_list, kwargs, prompt?}``, as third-party
converters of the Nemotron-Cascade IF-RL set write it) -> ``instruction_following``;
``ability: math`` or a math ``data_source`` (``openai/gsm8k``, MATH sets, ``aime*``,
``math*``, ``numina_*``) -> ``math``; ``ability: code`` or a code ``data_source``
(``codecontests``, ``apps``, ``codeforces``, ``taco``, ``livecodebench``, ``primeintellect``,
``leetcode``) -> ``code`` with the tests read as TACO ``input_output`` or the DeepCoder
layouts; anything else is an error naming ``data_source`` and ``ability``. verl's gsm8k
example asks for the answer after ``####``, while cascade's math verifier reads
``\\boxed{}``: such prompts need their instruction changed before training.

Field list confirmed against verl itself: ``verl/utils/dataset/rl_dataset.py`` (the
``prompt`` key, ``extra_info``), ``examples/data_preprocess/gsm8k.py`` (the row layout),
``verl/utils/reward_score/__init__.py`` (routing by ``data_source``). Certainty: the
official reader. Torch-free.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from cascade.data.adapters.base import Adapter, Row, read_messages
from cascade.data.adapters.code_truth import from_test_list
from cascade.data.adapters.if_truth import if_ground_truth

_MATH_SOURCES = ("openai/gsm8k", "lighteval/MATH", "DigitalLearningGmbH/MATH-lighteval", "HuggingFaceH4/MATH-500")
_MATH_PREFIXES = ("aime", "math", "numina_", "deepscaler", "amc")
_CODE_SOURCES = ("codecontests", "apps", "codeforces", "taco", "livecodebench", "primeintellect", "leetcode")


def looks_like_verl(row: Mapping[str, Any]) -> bool:
    return "data_source" in row and isinstance(row.get("reward_model"), Mapping) and "prompt" in row


def _domain(source: str, ability: str) -> str | None:
    if ability == "math" or source in _MATH_SOURCES or source.lower().startswith(_MATH_PREFIXES):
        return "math"
    if ability == "code" or source in _CODE_SOURCES:
        return "code"
    return None


def _cascade_export(row: Row, extra: Mapping[str, Any], truth_text: Any) -> dict[str, Any] | None:
    try:
        record = json.loads(extra["record"])
        truth = json.loads(truth_text) if isinstance(truth_text, str) else truth_text
    except (json.JSONDecodeError, TypeError) as exc:
        row.bad("extra_info.record", f"cascade's exported record is not valid JSON: {exc}")
        return None
    if not isinstance(record, dict):
        row.bad("extra_info.record", "must be JSON text of an object")
        return None
    return {**record, "ground_truth": truth}


def _build(row: Row, kind: str) -> dict[str, Any] | None:
    source = row.text("data_source")
    ability = row.get("ability") if isinstance(row.get("ability"), str) else ""
    reward = row.get("reward_model")
    if not isinstance(reward, Mapping) or "ground_truth" not in reward:
        row.bad("reward_model.ground_truth", "required key missing")
        return None
    truth_value = reward.get("ground_truth")
    extra = row.get("extra_info") if isinstance(row.get("extra_info"), Mapping) else {}
    if isinstance(extra.get("record"), str) and isinstance(extra.get("verifier"), str):
        return _cascade_export(row, extra, truth_value)
    messages = read_messages(row, "prompt", row.get("prompt"))
    if source is None:
        return None
    domain = _domain(source, ability)
    if_truth = _if_truth(truth_value)
    if if_truth is not None:
        domain = "instruction_following"
    if domain is None:
        row.bad("data_source", f"no cascade verifier for data_source {source!r} (ability {ability!r}); "
                "known: math sources or ability 'math', code sources or ability 'code'")
        return None
    prompt_text = None
    if domain == "instruction_following":
        assert if_truth is not None
        truth: Any = if_ground_truth(row, if_truth.get("instruction_id_list"), if_truth.get("kwargs"),
                                     "reward_model.ground_truth.instruction_id_list",
                                     "reward_model.ground_truth.kwargs")
        prompt_text = if_truth.get("prompt")
    elif domain == "math":
        if isinstance(truth_value, bool) or not isinstance(truth_value, (str, int, float)) or not str(truth_value).strip():
            row.bad("reward_model.ground_truth", "a math ground truth must be a non-empty string or number")
            return None
        truth = str(truth_value).strip()
    else:
        tests = truth_value
        if isinstance(tests, str):
            try:
                tests = json.loads(tests)
            except json.JSONDecodeError as exc:
                row.bad("reward_model.ground_truth", f"code tests must be JSON text: {exc}")
                return None
        fn_name = None
        if isinstance(tests, list) and tests and isinstance(tests[0], Mapping):
            fn_name = (tests[0].get("metadata") or {}).get("func_name") if isinstance(tests[0].get("metadata"), Mapping) else None
        elif isinstance(tests, Mapping) and isinstance(tests.get("metadata"), Mapping):
            fn_name = tests["metadata"].get("func_name")
        truth = from_test_list(row, "reward_model.ground_truth", tests, fn_name)
    if messages is None or truth is None:
        return None
    record_id = extra.get("id") if isinstance(extra.get("id"), str) else None
    if record_id is None and isinstance(extra.get("index"), int):
        record_id = f"{source}-{extra['index']}"
    meta: dict[str, Any] = {"data_source": source, "ability": ability}
    if domain == "instruction_following" and isinstance(prompt_text, str) and prompt_text:
        meta["prompt"] = prompt_text
    return {"id": record_id or row.default_id(), "messages": messages, "verifier": domain, "ground_truth": truth,
            "meta": meta}


def _if_truth(value: Any) -> Mapping[str, Any] | None:
    """An IFEval-layout ground truth (``instruction_id_list`` + ``kwargs``), as an object or
    its JSON text, else None."""
    if isinstance(value, str) and "instruction_id_list" in value:
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return None
    return value if isinstance(value, Mapping) and "instruction_id_list" in value else None


ADAPTER = Adapter(
    name="verl",
    kinds=("prompt",),
    summary="verl RL parquet rows (data_source, prompt, ability, reward_model.ground_truth, extra_info)",
    detect=looks_like_verl,
    build=_build,
    renames={"messages": "prompt"},
)

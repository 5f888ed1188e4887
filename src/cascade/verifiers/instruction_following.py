"""``instruction_following`` (aliases ``ifeval``, ``ifbench``): verifiable format constraints.

Record:
- ``ground_truth``, in either of two layouts:
  - official IFEval/IFBench: ``{"instruction_id_list": [...], "kwargs": [...]}``, optionally
    with ``"prompt"``. A ``kwargs`` entry may be ``null``; a ``None`` value means "not set".
  - allenai ``IF_multi_constraints_upto5``: a list (or its JSON string) of
    ``{"instruction_id": [...], "kwargs": [...]}`` groups, concatenated in order.
- ``meta.loose`` (optional): score with the official loose rule instead of strict.
- the user prompt, needed by the repeat-the-prompt instructions when their kwargs lack
  ``prompt_to_repeat``: ``ground_truth.prompt``, else ``meta.prompt``, else the record's
  ``prompt`` (a string, or the last user message of a chat list), else ``messages``.

The score is 1.0 when every instruction is followed. ``details`` has the per-instruction
``strict`` and ``loose`` verdicts and the prompt-level ``prompt_strict``/``prompt_loose``.
An unknown instruction id, unusable kwargs or a missing optional resource (the POS tagger)
gives a result with ``error`` rather than an exception; a ground truth in neither layout is a
CascadeError. Checker semantics and their parity with the official scorers:
``cascade.verifiers.ifcheck``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from cascade.errors import CascadeError
from cascade.verifiers.base import Verifier, VerifyResult, register
from cascade.verifiers.ifcheck import InstructionError, evaluate


def _parse_ground_truth(truth: Any) -> tuple[list[str], list[Any], str | None]:
    """``(instruction_ids, kwargs, prompt)`` from either accepted layout."""
    if isinstance(truth, str):
        try:
            truth = json.loads(truth)
        except json.JSONDecodeError as exc:
            raise CascadeError(
                f"ground_truth is a string but not JSON ({exc})", field="ground_truth"
            ) from None
    if isinstance(truth, Mapping) and "instruction_id" in truth:
        truth = [truth]
    if isinstance(truth, Mapping) and "instruction_id_list" in truth:
        ids, kwargs = truth["instruction_id_list"], truth.get("kwargs")
        prompt = truth.get("prompt")
    elif (
        isinstance(truth, list)
        and truth
        and all(isinstance(g, Mapping) and "instruction_id" in g for g in truth)
    ):
        ids, kwargs, prompt = [], [], None
        for index, group in enumerate(truth):
            group_ids = group["instruction_id"]
            group_ids = [group_ids] if isinstance(group_ids, str) else group_ids
            group_kwargs = group.get("kwargs")
            if group_kwargs is None:
                group_kwargs = [None] * len(group_ids)
            elif isinstance(group_kwargs, Mapping):
                group_kwargs = [group_kwargs]
            if not isinstance(group_ids, list) or not isinstance(group_kwargs, list):
                raise CascadeError(
                    "instruction_id and kwargs must be lists", field=f"ground_truth[{index}]"
                )
            ids.extend(group_ids)
            kwargs.extend(group_kwargs)
    elif isinstance(truth, Mapping) and "func_name" in truth:
        raise CascadeError(
            "ground_truth is in the older allenai RLVR-IFeval 'func_name' layout, which is not "
            "supported; use {'instruction_id_list': [...], 'kwargs': [...]}",
            field="ground_truth",
        )
    else:
        raise CascadeError(
            "the instruction_following verifier needs "
            "{'instruction_id_list': [...], 'kwargs': [...]} "
            "or a list of {'instruction_id': [...], 'kwargs': [...]}",
            field="ground_truth",
        )
    if kwargs is None:
        kwargs = [None] * len(ids)
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise CascadeError(
            "instruction ids must be a list of strings", field="ground_truth.instruction_id_list"
        )
    if not isinstance(kwargs, list) or len(kwargs) != len(ids):
        raise CascadeError(
            f"kwargs must be a list with one entry per instruction ({len(ids)})",
            field="ground_truth.kwargs",
        )
    if not all(k is None or isinstance(k, Mapping) for k in kwargs):
        raise CascadeError(
            "each kwargs entry must be an object or null", field="ground_truth.kwargs"
        )
    return ids, kwargs, prompt if isinstance(prompt, str) else None


def _last_user_message(messages: Any) -> str | None:
    if not isinstance(messages, Sequence) or isinstance(messages, str):
        return None
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else None
    return None


def record_prompt(record: Mapping[str, Any], truth_prompt: str | None) -> str | None:
    """The user prompt, looked up in the documented order."""
    if truth_prompt:
        return truth_prompt
    meta_prompt = (record.get("meta") or {}).get("prompt")
    if isinstance(meta_prompt, str) and meta_prompt:
        return meta_prompt
    prompt = record.get("prompt")
    if isinstance(prompt, str) and prompt:
        return prompt
    return _last_user_message(prompt) or _last_user_message(record.get("messages"))


@register("instruction_following")
class InstructionFollowingVerifier(Verifier):
    def check(self, answer: str, record: Mapping[str, Any]) -> VerifyResult:
        ids, kwargs, truth_prompt = _parse_ground_truth(record.get("ground_truth"))
        loose = bool((record.get("meta") or {}).get("loose", False))
        details: dict[str, Any] = {
            "instruction_id_list": ids,
            "mode": "loose" if loose else "strict",
        }
        try:
            verdicts = evaluate(answer, ids, kwargs, record_prompt(record, truth_prompt))
        except InstructionError as exc:
            return VerifyResult(0.0, False, details=details, error=str(exc))
        details.update(
            strict=verdicts.strict,
            loose=verdicts.loose,
            prompt_strict=verdicts.prompt_strict,
            prompt_loose=verdicts.prompt_loose,
        )
        passed = verdicts.prompt_loose if loose else verdicts.prompt_strict
        error = "; ".join(verdicts.errors) or None
        return VerifyResult(1.0 if passed else 0.0, passed, details=details, error=error)


@register("ifeval")
class IFEvalVerifier(InstructionFollowingVerifier):
    """The same verifier under the benchmark's name."""


@register("ifbench")
class IFBenchVerifier(InstructionFollowingVerifier):
    """The same verifier under the benchmark's name."""

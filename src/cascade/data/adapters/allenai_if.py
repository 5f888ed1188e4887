"""Format ``allenai_if``: allenai's IF-RLVR sets -> ``prompt`` records (verifier ``instruction_following``).

Rows (``allenai/IF_multi_constraints_upto5``, ``allenai/RLVR-IFeval`` and their variants):
``messages`` (the user prompt), ``ground_truth`` (text), ``key`` (id), ``dataset``,
``constraint_type``, ``constraint``. ``ground_truth`` comes in two layouts:

- **groups** (IF_multi_constraints_upto5): a list of ``{"instruction_id": [...],
  "kwargs": [...]}`` groups (each may itself be JSON text). open-instruct parses the text
  with ``ast.literal_eval``, so Python-literal text (single quotes, ``None``) occurs and is
  read the same way (literals only; nothing is evaluated). All groups are concatenated.
- **func_name** (the older Tulu 3 RLVR-IFeval): one flat object naming an open-instruct
  check function (``verify_bullet_points``) with its arguments (``N``, ``quantifier``, ...),
  unused ones null. It is translated to the IFEval instruction with the same meaning
  (table ``FUNC_NAME_TO_IFEVAL``); functions with no IFEval equivalent (exact keyword or
  letter counts, an "around" quantifier, a free choice list) are an error naming them.

Record: ``{"id": key, "messages", "verifier": "instruction_following", "ground_truth":
{"instruction_id_list", "kwargs"}, "meta": {"prompt", "dataset", "constraint_type"}}``.

Disagreements with open-instruct, on purpose: open-instruct's ``IFEvalVerifier`` reads only
the first group and gives partial credit (fraction of instructions met); cascade checks
every instruction and scores 1 only when all hold (the paper's IF reward). The func_name
translation scores with the IFEval checker, whose details differ slightly from the old
functions (e.g. bullet lines: IFEval counts ``*``/``-`` list items only).

Field list confirmed against the dataset card (features ``key``, ``messages``,
``ground_truth``, ``dataset``, ``constraint_type``, ``constraint``) and open-instruct's
readers (``open_instruct/ground_truth_utils.py``: ``IFEvalVerifier`` and ``IFEvalVerifierOld``;
``open_instruct/if_functions.py``: the function names and argument names). Certainty: card
plus the official reader. Torch-free.
"""

from __future__ import annotations

import ast
import json
from typing import Any, Callable, Mapping

from cascade.data.adapters.base import Adapter, Row, last_user_text, read_messages
from cascade.data.adapters.if_truth import VERIFIER, clean_kwargs_entry


def looks_like_allenai_if(row: Mapping[str, Any]) -> bool:
    if "verifier" in row or not isinstance(row.get("messages"), list) or "ground_truth" not in row:
        return False
    if "constraint_type" in row or "constraint" in row:
        return True
    truth = row.get("ground_truth")
    return isinstance(truth, str) and ("instruction_id" in truth or "func_name" in truth)


def _relation(quantifier: Any, n: Any) -> tuple[str, int] | None:
    """IFEval has "less than" and "at least"; "at most N" is "less than N+1"."""
    if not isinstance(n, int) or isinstance(n, bool):
        return None
    if quantifier == "at least":
        return "at least", n
    if quantifier == "at most":
        return "less than", n + 1
    return None


def _words(a: Mapping[str, Any]) -> tuple[str, dict] | None:
    r = _relation(a.get("quantifier"), a.get("N"))
    return r and ("length_constraints:number_words", {"relation": r[0], "num_words": r[1]})


def _sentences(a: Mapping[str, Any]) -> tuple[str, dict] | None:
    r = _relation(a.get("quantifier"), a.get("N"))
    return r and ("length_constraints:number_sentences", {"relation": r[0], "num_sentences": r[1]})


def _capitals(a: Mapping[str, Any]) -> tuple[str, dict] | None:
    r = _relation(a.get("quantifier"), a.get("N"))
    return r and ("change_case:capital_word_frequency", {"capital_relation": r[0], "capital_frequency": r[1]})


def _fixed(instruction: str, **names: str) -> Callable[[Mapping[str, Any]], tuple[str, dict]]:
    """An instruction whose IFEval kwargs are the function's arguments renamed."""
    return lambda a: (instruction, {ours: a.get(theirs) for ours, theirs in names.items()})


# open-instruct check function -> (IFEval id, kwargs); None when the meaning differs.
FUNC_NAME_TO_IFEVAL: dict[str, Callable[[Mapping[str, Any]], tuple[str, dict] | None]] = {
    "verify_keywords": _fixed("keywords:existence", keywords="keyword_list"),
    "validate_forbidden_words": _fixed("keywords:forbidden_words", forbidden_words="forbidden_words"),
    "validate_response_language": _fixed("language:response_language", language="language"),
    "verify_paragraph_count": _fixed("length_constraints:number_paragraphs", num_paragraphs="N"),
    "validate_word_constraint": _words,
    "verify_sentence_constraint": _sentences,
    "validate_paragraphs": _fixed("length_constraints:nth_paragraph_first_word", num_paragraphs="N",
                                  nth_paragraph="i", first_word="first_word"),
    "verify_postscript": _fixed("detectable_content:postscript", postscript_marker="postscript_marker"),
    "validate_placeholders": _fixed("detectable_content:number_placeholders", num_placeholders="N"),
    "verify_bullet_points": _fixed("detectable_format:number_bullet_lists", num_bullets="N"),
    "validate_title": _fixed("detectable_format:title"),
    "validate_highlighted_sections": _fixed("detectable_format:number_highlighted_sections", num_highlights="N"),
    "validate_sections": _fixed("detectable_format:multiple_sections", num_sections="N",
                                section_spliter="section_splitter"),
    "validate_json_format": _fixed("detectable_format:json_format"),
    "validate_repeat_prompt": _fixed("combination:repeat_prompt", prompt_to_repeat="original_prompt"),
    "validate_two_responses": _fixed("combination:two_responses"),
    "validate_uppercase": _fixed("change_case:english_capital"),
    "validate_lowercase": _fixed("change_case:english_lowercase"),
    "validate_frequency_capital_words": _capitals,
    "validate_end": _fixed("startend:end_checker", end_phrase="end_phrase"),
    "validate_quotation": _fixed("startend:quotation"),
    "validate_no_commas": _fixed("punctuation:no_comma"),
}
# Known functions with no IFEval instruction of the same meaning (exact counts, free options).
NO_IFEVAL_EQUIVALENT = ("verify_keyword_frequency", "verify_letter_frequency", "validate_choice")


def _parse_text(row: Row, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        pass
    try:
        return ast.literal_eval(value)  # literals only: open-instruct's own reading
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        row.bad("ground_truth", "neither JSON nor a Python literal")
        return None


def _from_groups(row: Row, groups: list[Any]) -> dict[str, Any] | None:
    ids: list[str] = []
    kwargs: list[Any] = []
    ok = True
    for g, group in enumerate(groups):
        where = f"ground_truth[{g}]"
        group = _parse_text(row, group) if isinstance(group, str) else group
        if not isinstance(group, Mapping) or "instruction_id" not in group:
            row.bad(where, "must be an object with instruction_id and kwargs")
            ok = False
            continue
        group_ids = group["instruction_id"]
        group_ids = [group_ids] if isinstance(group_ids, str) else group_ids
        group_kwargs = group.get("kwargs")
        if isinstance(group_kwargs, Mapping) or group_kwargs is None:
            group_kwargs = [group_kwargs] * (1 if isinstance(group_kwargs, Mapping) else len(group_ids or []))
        if not isinstance(group_ids, list) or not group_ids or not all(isinstance(i, str) for i in group_ids):
            row.bad(f"{where}.instruction_id", "must be a non-empty list of instruction id strings")
            ok = False
            continue
        if not isinstance(group_kwargs, list) or len(group_kwargs) != len(group_ids):
            row.bad(f"{where}.kwargs", f"must be a list with one entry per instruction ({len(group_ids)})")
            ok = False
            continue
        for k, entry in enumerate(group_kwargs):
            good, value = clean_kwargs_entry(row, f"{where}.kwargs[{k}]", entry)
            ok = ok and good
            kwargs.append(value)
        ids.extend(group_ids)
    return {"instruction_id_list": ids, "kwargs": kwargs} if ok and ids else None


def _from_func_name(row: Row, truth: Mapping[str, Any]) -> dict[str, Any] | None:
    name = truth.get("func_name")
    args = {k: v for k, v in truth.items() if k != "func_name" and v is not None}
    translate = FUNC_NAME_TO_IFEVAL.get(name) if isinstance(name, str) else None
    if translate is None:
        why = "has no IFEval instruction with the same meaning" if name in NO_IFEVAL_EQUIVALENT else "is unknown"
        row.bad("ground_truth.func_name", f"{name!r} {why}; such rows cannot be scored by cascade")
        return None
    result = translate(args)
    if result is None:
        row.bad("ground_truth.quantifier", f"{args.get('quantifier')!r} with N={args.get('N')!r}: only "
                "'at least' and 'at most' with an integer N have an IFEval equivalent")
        return None
    instruction, kwargs = result
    return {"instruction_id_list": [instruction], "kwargs": [{k: v for k, v in kwargs.items() if v is not None}]}


def _build(row: Row, kind: str) -> dict[str, Any] | None:
    messages = read_messages(row, "messages", row.get("messages"))
    raw = row.get("ground_truth")
    truth = None
    if raw is None:
        row.bad("ground_truth", "required key missing")
    else:
        parsed = _parse_text(row, raw)
        if isinstance(parsed, Mapping) and "func_name" in parsed:
            truth = _from_func_name(row, parsed)
        elif isinstance(parsed, Mapping) and "instruction_id" in parsed:
            truth = _from_groups(row, [parsed])
        elif isinstance(parsed, list) and parsed:
            truth = _from_groups(row, parsed)
        elif parsed is not None:
            row.bad("ground_truth", "must be a list of {instruction_id, kwargs} groups or a {func_name, ...} object")
    if messages is None or truth is None:
        return None
    meta = {k: row.get(k) for k in ("dataset", "constraint_type") if isinstance(row.get(k), str)}
    text = last_user_text(messages)
    if text:
        meta["prompt"] = text
    return {"id": row.row_id("key", "id"), "messages": messages, "verifier": VERIFIER, "ground_truth": truth,
            "meta": meta}


ADAPTER = Adapter(
    name="allenai_if",
    kinds=("prompt",),
    summary="allenai IF-RLVR rows (messages, ground_truth in the groups or func_name layout)",
    detect=looks_like_allenai_if,
    build=_build,
)

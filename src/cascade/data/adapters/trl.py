"""Format ``trl``: Hugging Face datasets in the column layouts TRL's trainers read.

TRL's dataset-format guide names the columns per dataset type, each either *standard*
(plain strings) or *conversational* (lists of ``{role, content}``):

- language modeling ``messages`` (conversational) -> ``sft``; (standard ``text`` has no
  roles, so it cannot become a conversation: an error);
- prompt-completion ``prompt`` + ``completion`` -> ``sft`` (prompt turns + the completion
  as the assistant turn);
- preference ``prompt`` + ``chosen`` + ``rejected`` (explicit prompt), or ``chosen`` +
  ``rejected`` alone (implicit prompt: the shared leading turns, or for strings the shared
  leading text up to the first difference, as TRL's ``extract_prompt`` splits it)
  -> ``preference``;
- prompt-only ``prompt`` -> ``prompt`` (for reward-model stages: ``verifier:
  "reward_model"``, ``ground_truth: null``; the RLHF stage reward reads the reward model and
  ignores the verifier);
- unpaired preference (``completion`` + ``label``) and stepwise supervision are not record
  kinds of cascade: an error.

The SFT mode is ``think`` when the trained assistant turn opens with a non-empty
``<think>`` block, else ``no_think``.

Field list confirmed against TRL's documentation ("Dataset formats and types": the
columns above) and its data utilities (``trl/data_utils.py``: ``extract_prompt``,
``maybe_extract_prompt`` for the implicit prompt). An ``id`` or ``index`` column becomes
the id. Certainty: the official docs.
Torch-free.
"""

from __future__ import annotations

from typing import Any, Mapping

from cascade.data.adapters.base import Adapter, Row, read_messages, thinking_mode
from cascade.data.adapters.identity import looks_like_records

# Record-routing value for prompts scored by a reward model (no ground truth).
REWARD_MODEL_VERIFIER = "reward_model"
_TRL_COLUMNS = {"prompt", "messages", "completion", "chosen", "rejected", "text", "label"}
_OTHER_FORMATS = {"verifier", "ground_truth", "mode", "thinking", "generator", "category", "instruction_id_list",
                  "problem", "answer", "golden_patch", "responses_create_params", "reward_model", "tests",
                  "input_output", "question_content"}


def looks_like_trl(row: Mapping[str, Any]) -> bool:
    keys = set(row)
    return bool(keys & _TRL_COLUMNS) and not keys & _OTHER_FORMATS and not looks_like_records(row)


def _turns(row: Row, key: str, role: str) -> list[dict[str, Any]] | None:
    """A standard string as one ``role`` turn, or a conversational list as it is."""
    value = row.get(key)
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    if value is None:
        row.bad(key, "required key missing")
        return None
    return read_messages(row, key, value)


def _answer(row: Row, key: str) -> str | None:
    """A preference answer: a string, or a conversation whose last turn is the assistant's."""
    value = row.get(key)
    if isinstance(value, str):
        return value
    turns = _turns(row, key, "assistant")
    if turns is None:
        return None
    if turns[-1].get("role") != "assistant" or not isinstance(turns[-1].get("content"), str):
        row.bad(f"{key}[{len(turns) - 1}]", "the last turn must be the assistant's answer")
        return None
    return turns[-1]["content"]


def _sft(row: Row) -> dict[str, Any] | None:
    if row.has("messages"):
        messages = read_messages(row, "messages", row.get("messages"))
    elif row.has("completion"):
        prompt, completion = _turns(row, "prompt", "user"), _turns(row, "completion", "assistant")
        messages = prompt + completion if prompt and completion else None
    elif row.has("text"):
        row.bad("text", "plain language-modeling text has no roles; SFT needs a conversation (messages)")
        return None
    else:
        row.bad("messages", "required key missing (or prompt + completion)")
        return None
    if messages is None:
        return None
    return {"id": row.row_id("id", "index"), "messages": messages, "mode": thinking_mode(messages)}


def _shared_text_prefix(chosen: str, rejected: str) -> int:
    """Where the implicit prompt of two standard answers ends: at their first differing
    character, moved back before a space so the space stays with the answers (TRL's
    ``extract_prompt`` rule). 0 when they share nothing or one contains the other."""
    for index, (a, b) in enumerate(zip(chosen, rejected)):
        if a != b:
            return index - 1 if index > 0 and chosen[index - 1] == " " else index
    return 0


def _preference(row: Row) -> dict[str, Any] | None:
    chosen_value, rejected_value = row.get("chosen"), row.get("rejected")
    if row.has("prompt"):
        prompt = row.get("prompt")
        prompt_fields: dict[str, Any] = ({"prompt": prompt} if isinstance(prompt, str)
                                         else {"messages": read_messages(row, "prompt", prompt)})
        chosen, rejected = _answer(row, "chosen"), _answer(row, "rejected")
    elif isinstance(chosen_value, list) and isinstance(rejected_value, list):
        # Implicit prompt: the turns both conversations share are the prompt.
        shared = 0
        while (shared < min(len(chosen_value), len(rejected_value)) - 1
               and chosen_value[shared] == rejected_value[shared]):
            shared += 1
        if shared == 0:
            row.bad("chosen", "chosen and rejected share no prompt turns (and there is no prompt column)")
            return None
        prompt_fields = {"messages": read_messages(row, "chosen", chosen_value[:shared])}
        chosen, rejected = _answer(row, "chosen"), _answer(row, "rejected")
    elif isinstance(chosen_value, str) and isinstance(rejected_value, str):
        split = _shared_text_prefix(chosen_value, rejected_value)
        if not split:
            row.bad("chosen", "chosen and rejected share no prompt text (and there is no prompt column)")
            return None
        prompt_fields = {"prompt": chosen_value[:split]}
        chosen, rejected = chosen_value[split:], rejected_value[split:]
    else:
        chosen, rejected = _answer(row, "chosen"), _answer(row, "rejected")
        row.bad("prompt", "required key missing (or chosen/rejected conversations with shared prompt turns)")
        return None
    if chosen is None or rejected is None or prompt_fields.get("messages", True) is None:
        return None
    return {"id": row.row_id("id", "index"), **prompt_fields, "chosen": chosen, "rejected": rejected}


def _prompt(row: Row) -> dict[str, Any] | None:
    key = "prompt" if row.has("prompt") else "messages"
    value = row.get(key)
    if value is None:
        row.bad("prompt", "required key missing")
        return None
    if isinstance(value, str):
        fields: dict[str, Any] = {"prompt": value}
    else:
        messages = read_messages(row, key, value)
        if messages is None:
            return None
        if messages[-1].get("role") == "assistant":
            row.bad(f"{key}[{len(messages) - 1}].role", "a prompt must not end with the assistant's answer")
            return None
        fields = {"messages": messages}
    return {"id": row.row_id("id", "index"), **fields, "verifier": REWARD_MODEL_VERIFIER, "ground_truth": None}


def _build(row: Row, kind: str) -> dict[str, Any] | None:
    if row.has("label") and row.has("completion"):
        row.bad("label", "unpaired preference rows (completion + label) are not a cascade record kind")
        return None
    return {"sft": _sft, "preference": _preference, "prompt": _prompt}[kind](row)


ADAPTER = Adapter(
    name="trl",
    kinds=("sft", "preference", "prompt"),
    summary="TRL-style HF datasets (messages; prompt/completion; prompt/chosen/rejected; prompt-only)",
    detect=looks_like_trl,
    build=_build,
)

"""Prompt records -> verl's RL parquet layout, with each prompt's mode decided up front.

verl reads one row per prompt:

- ``data_source`` (str): a label verl groups metrics by;
- ``prompt``: the chat messages (``[{role, content}]``), rendered by the tokenizer's chat template;
- ``ability`` (str): the domain (the record's ``meta.domain``, else its verifier);
- ``reward_model``: ``{style: "rule", ground_truth: <JSON text>}``; JSON text because ground truths
  differ in shape (a string for math, a dict for IF, tests for code) and Arrow needs one type;
- ``extra_info``: what our reward hook needs: ``index``, ``id``, ``verifier``, ``mode``, the stage
  ``reward`` (or ""), and ``record``: the cascade record without its ground truth, as JSON text,
  because some verifiers read the prompt or ``meta`` (IF checks, SWE's issue text).

How the mode stays consistent with our chat template. verl applies the chat template itself, with
ONE set of ``apply_chat_template`` kwargs for the whole run, so ``enable_thinking`` cannot differ per
row, and a unified-model stage mixes ``/think`` and ``/no_think`` prompts in one batch. So:

1. the mode is baked into the data: the last user turn ends with `` /think`` or `` /no_think``;
2. verl renders with ``verl_chat_template()``: our inference template with one rule changed, namely
   that when ``enable_thinking`` is not passed, the flag written at the end of the last user turn
   picks the mode (no flag: think, as before). With ``enable_thinking`` passed it is our template
   unchanged, and a baked prompt rendered without it gives byte for byte what
   ``cascade.chat.render(messages_without_flag, enable_thinking=mode == "think")`` gives, which
   tests/test_verl_adapter.py checks. The launcher hands it to verl as
   ``actor_rollout_ref.model.custom_chat_template``, so no checkpoint's own template matters.

Modes are drawn once for the whole file with ``cascade.algo.modes.assign_modes`` (an exact share of
``think_fraction`` over the file). verl shuffles rows into batches, so a single batch holds that
share only on average, unlike the local trainer, which splits every batch exactly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel

from cascade.algo.modes import THINK, assign_modes
from cascade.chat import NO_THINK_FLAG, THINK_FLAG, chat_template
from cascade.data.io import RowPlace, atomic_open, validate_row
from cascade.data.records import PromptRecord, record_messages
from cascade.errors import CascadeError

_FLAG_WORDS = (THINK_FLAG.strip(), NO_THINK_FLAG.strip())

# The one line of our inference template that decides the mode, and its replacement for verl.
_MODE_LINE = (
    "{%- set thinking = true if enable_thinking is not defined or enable_thinking is none "
    "else (true if enable_thinking else false) %}"
)
_MODE_FROM_FLAG = (
    "{%- set baked = namespace(think=true) %}\n"
    "{%- for message in messages if message.role == 'user' and message.content is string %}\n"
    "    {%- set baked.think = (message.content.rstrip().rsplit(none, 1) or [''])[-1] != '"
    + NO_THINK_FLAG.strip()
    + "' %}\n"
    "{%- endfor %}\n"
    "{%- set thinking = baked.think if enable_thinking is not defined or enable_thinking is none "
    "else (true if enable_thinking else false) %}"
)


def verl_chat_template() -> str:
    """Our inference chat template, except that without ``enable_thinking`` the flag at the end
    of the last user turn picks the mode (see the module docstring)."""
    source = chat_template()
    if source.count(_MODE_LINE) != 1:
        # The chat template changed how it picks the mode; this adapter must follow it.
        raise RuntimeError("cascade.chat's template no longer has the expected mode line; update verl_data")
    return source.replace(_MODE_LINE, _MODE_FROM_FLAG)


def bake_mode(messages: list[dict[str, Any]], mode: str) -> list[dict[str, Any]]:
    """``messages`` with the last user turn ending in the mode's flag (a flag already written
    there is replaced, as our template does)."""
    flag = THINK_FLAG if mode == THINK else NO_THINK_FLAG
    out = [dict(m) for m in messages]
    last_user = max((i for i, m in enumerate(out) if m.get("role") == "user"), default=None)
    if last_user is None:
        raise CascadeError("a prompt needs a user turn to carry the mode flag", field="messages")
    text = str(out[last_user].get("content") or "")
    words = text.rstrip().rsplit(None, 1)
    if words and words[-1] in _FLAG_WORDS:
        text = words[0] if len(words) == 2 else ""
    out[last_user]["content"] = text + flag
    return out


def verl_rows(
    records: Iterable[PromptRecord | Mapping[str, Any]],
    *,
    data_source: str,
    think_fraction: float,
    seed: int,
    reward: str | None = None,
    label: str = "records",
) -> list[dict[str, Any]]:
    """The verl rows of ``records`` (validated as prompt records; errors name ``label`` and
    the row index). ``reward`` is the stage reward the hook applies (None: the verifier's score)."""
    validated = [_as_prompt_record(r, RowPlace(label, row=i)) for i, r in enumerate(records)]
    modes = assign_modes(len(validated), think_fraction, seed=seed, step=0)
    rows = []
    for index, (record, mode) in enumerate(zip(validated, modes)):
        messages = [{"role": m["role"], "content": m["content"]} for m in record_messages(record)]
        plain = record.model_dump(mode="json", exclude_none=True)
        ground_truth = plain.pop("ground_truth", None)
        rows.append(
            {
                "data_source": data_source,
                "prompt": bake_mode(messages, mode),
                "ability": str(record.meta.get("domain") or record.verifier),
                "reward_model": {"style": "rule", "ground_truth": json.dumps(ground_truth, ensure_ascii=False)},
                "extra_info": {
                    "index": index,
                    "id": record.id,
                    "verifier": record.verifier,
                    "mode": mode,
                    "reward": reward or "",
                    "record": json.dumps(plain, ensure_ascii=False),
                },
            }
        )
    return rows


def export_verl_parquet(
    records: Iterable[PromptRecord | Mapping[str, Any]],
    path: str | Path,
    *,
    data_source: str,
    think_fraction: float,
    seed: int,
    reward: str | None = None,
) -> int:
    """Write ``records`` as a verl RL parquet file (atomically); returns the row count."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ModuleNotFoundError:
        raise CascadeError("exporting verl parquet needs pyarrow: pip install pyarrow") from None
    rows = verl_rows(records, data_source=data_source, think_fraction=think_fraction, seed=seed, reward=reward)
    if not rows:
        raise CascadeError("no prompt records to export", file=str(path))
    # An explicit schema: verl expects these exact types, and inference from the rows could
    # turn a column into something else (e.g. null for an all-empty field).
    schema = pa.schema(
        [
            ("data_source", pa.string()),
            ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
            ("ability", pa.string()),
            ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
            (
                "extra_info",
                pa.struct(
                    [
                        ("index", pa.int64()),
                        ("id", pa.string()),
                        ("verifier", pa.string()),
                        ("mode", pa.string()),
                        ("reward", pa.string()),
                        ("record", pa.string()),
                    ]
                ),
            ),
        ]
    )
    table = pa.Table.from_pylist(rows, schema=schema)
    with atomic_open(path, "wb") as fh:
        pq.write_table(table, fh)
    return len(rows)


def _as_prompt_record(record: PromptRecord | Mapping[str, Any], place: RowPlace) -> PromptRecord:
    if isinstance(record, PromptRecord):
        return record
    if isinstance(record, BaseModel):
        record = record.model_dump()
    if not isinstance(record, Mapping):
        raise place.error(f"expected a prompt record (an object), got {type(record).__name__}")
    return cast(PromptRecord, validate_row(PromptRecord, record, place))


__all__ = ["bake_mode", "export_verl_parquet", "verl_chat_template", "verl_rows"]

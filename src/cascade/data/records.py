"""The data contract: the record kinds every trainer, verifier and outside tool exchanges.

Four kinds (docs/records.md has one example of each):

- ``sft``:        a conversation to imitate, with its mode (``think`` or ``no_think``);
- ``preference``: a prompt (or conversation) with a chosen and a rejected answer;
- ``prompt``:     an RL / eval prompt that names its verifier and ground truth;
- ``prediction``: a prompt record plus the ``completion`` to score.

Unknown top-level keys are allowed and kept, because outside tools add their own fields
(``dataset``, ``pass_rate``, ...). ``meta`` is free-form. Torch-free.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Mapping

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

Role = Literal["system", "user", "assistant", "tool"]
Mode = Literal["think", "no_think"]
# Which assistant turns of an SFT conversation carry loss: every one, or only the final one.
TrainTurns = Literal["all", "final"]
# Default "all": in the paper's SFT data every assistant turn is a teacher's response (section
# 3.2: multi-turn data is made by adding a rewrite turn or concatenating single-turn samples,
# and the tool-calling data is counted as 1.41M turns in 310K conversations, i.e. each step is
# a target); training only the final turn would discard most of those responses.
DEFAULT_TRAIN_TURNS: TrainTurns = "all"


class _Record(BaseModel):
    # extra="allow": fields added by outside tools survive a read/write round trip.
    model_config = ConfigDict(extra="allow")


class ToolCall(_Record):
    """A call in the Qwen3 style: ``<tool_call>{"name": ..., "arguments": ...}</tool_call>``.

    The OpenAI shape ``{"type": "function", "function": {"name", "arguments"}}`` is accepted
    and flattened, so data from either ecosystem reads the same.
    """

    name: str
    arguments: dict[str, Any] | str = Field(default_factory=dict)

    @field_validator("arguments")
    @classmethod
    def _string_arguments_are_a_json_object(cls, value: dict[str, Any] | str) -> dict[str, Any] | str:
        # The template writes a string verbatim into the call; broken JSON here would teach
        # the model calls that no parser can read.
        if isinstance(value, str):
            try:
                ok = isinstance(json.loads(value), dict)
            except (ValueError, RecursionError):
                ok = False
            if not ok:
                raise ValueError("arguments is a string but not a JSON object")
        return value

    @model_validator(mode="before")
    @classmethod
    def _flatten_openai_shape(cls, value: Any) -> Any:
        if isinstance(value, Mapping) and isinstance(value.get("function"), Mapping):
            flat = {k: v for k, v in value.items() if k not in ("function", "type")}
            flat.update(value["function"])
            return flat
        return value


class Message(_Record):
    role: Role
    content: str
    tool_calls: list[ToolCall] | None = None

    @model_validator(mode="before")
    @classmethod
    def _null_content_with_tool_calls(cls, value: Any) -> Any:
        # OpenAI-style data writes content: null on a turn that only calls tools.
        if isinstance(value, Mapping) and value.get("content") is None and value.get("tool_calls"):
            return {**value, "content": ""}
        return value


def _id_to_str(value: Any) -> Any:
    # Benchmarks use integer keys (IFEval's `key`); ids are compared as strings everywhere.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


RecordId = Annotated[str, BeforeValidator(_id_to_str)]


class SFTConversation(_Record):
    """A conversation whose assistant turns are the training targets."""

    messages: list[Message] = Field(min_length=1)
    mode: Mode
    id: RecordId | None = None
    source: str | None = None
    tools: list[dict[str, Any]] | None = None
    # None: DEFAULT_TRAIN_TURNS. A recipe's data source can set it for all of its records.
    train_turns: TrainTurns | None = None

    @field_validator("messages")
    @classmethod
    def _has_assistant_turn(cls, messages: list[Message]) -> list[Message]:
        if not any(m.role == "assistant" for m in messages):
            raise ValueError("needs at least one assistant message (the training target)")
        return messages


class _HasPrompt(_Record):
    """Exactly one of ``prompt`` (a plain user string) or ``messages``."""

    prompt: str | None = None
    messages: list[Message] | None = None

    @model_validator(mode="after")
    def _exactly_one_prompt_form(self) -> "_HasPrompt":
        if (self.prompt is None) == (self.messages is None):
            which = "both" if self.prompt is not None else "neither"
            raise ValueError(f"give exactly one of 'prompt' or 'messages' ({which} given)")
        if self.messages is not None and not self.messages:
            raise ValueError("'messages' is empty")
        return self


class PreferencePair(_HasPrompt):
    """``messages`` is the conversation before the answer; chosen/rejected are the answers."""

    chosen: str
    rejected: str
    id: RecordId | None = None
    source: str | None = None


class PromptRecord(_HasPrompt):
    """An RL or eval prompt. ``verifier`` routes it; ``ground_truth`` keeps the benchmark's
    official field names (IFEval: ``{"instruction_id_list": [...], "kwargs": [...]}``; math:
    the answer string). ``ground_truth`` is required but may be null (reward-model stages)."""

    id: RecordId
    verifier: str
    ground_truth: Any = Field(...)
    meta: dict[str, Any] = Field(default_factory=dict)


class Prediction(PromptRecord):
    """A prompt record plus the model's completion (reasoning included) to score."""

    completion: str


RECORD_KINDS: dict[str, type[BaseModel]] = {
    "sft": SFTConversation,
    "preference": PreferencePair,
    "prompt": PromptRecord,
    "prediction": Prediction,
}

RecordKind = Literal["sft", "preference", "prompt", "prediction"]


def record_model(kind: str | type[BaseModel]) -> type[BaseModel]:
    """The model class for a kind name (``sft``, ``preference``, ``prompt``, ``prediction``)."""
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return kind
    try:
        return RECORD_KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown record kind {kind!r}; known: {', '.join(RECORD_KINDS)}") from None


def record_messages(record: BaseModel | Mapping[str, Any]) -> list[dict[str, Any]]:
    """The conversation of a record as plain dicts; a ``prompt`` string becomes one user turn."""
    if isinstance(record, BaseModel):
        messages = getattr(record, "messages", None)
        if messages is not None:
            return [m.model_dump(exclude_none=True) for m in messages]
        prompt = getattr(record, "prompt", None)
    else:
        if record.get("messages") is not None:
            return [dict(m) for m in record["messages"]]
        prompt = record.get("prompt")
    if prompt is None:
        raise ValueError("record has neither 'messages' nor 'prompt'")
    return [{"role": "user", "content": prompt}]

"""Split a model completion into reasoning, answer and tool calls.

Torch-free. The rules follow the chat format (the model card's Chat Template section, ``cascade.chat.template``):
thinking replies are ``<think>...</think>`` followed by the answer; a ``<think>`` that never
closes means the model ran out of budget mid-thought, so there is no answer. Tool calls come
after the answer as ``<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>`` blocks,
one line break apart, which is how the template renders them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
END_OF_TURN = "<|im_end|>"
TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
# Deepest nesting of objects/lists accepted in a call's arguments. Real arguments nest a few
# levels; a model that writes thousands of "[" would otherwise make every later step that
# walks the value (matching, pickling to the parent, writing JSONL) hit Python's recursion
# limit, far from here.
MAX_ARGUMENT_DEPTH = 64


@dataclass
class ParsedCompletion:
    """One assistant completion, taken apart.

    reasoning:  the think block's text, or None when there is none
    answer:     the text before the first tool call; "" for an unfinished think
    tool_calls: ``{"name": str, "arguments": dict}`` for each well-formed call, in order
    finished:   False when the text stops inside a think block or inside a tool call
    errors:     one line per problem with the tool calls: unreadable JSON or shape (that call
                is left out), a call cut off before ``</tool_call>``, text after the calls
    """

    reasoning: str | None
    answer: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finished: bool = True
    errors: list[str] = field(default_factory=list)


def split_reasoning(text: str) -> tuple[str | None, str, bool]:
    """Return ``(reasoning, answer, finished)``.

    - ``reasoning`` is the text inside the think block, or None when there is none.
    - ``answer`` is the text after ``</think>`` (leading newlines removed), or the whole
      text when there is no think block; it is ``""`` when a ``<think>`` never closes.
    - ``finished`` is False exactly when a ``<think>`` was opened and not closed.

    Anything after an ``<|im_end|>`` is dropped first: it is not part of this turn.
    """
    if END_OF_TURN in text:
        text = text.split(END_OF_TURN, 1)[0]
    if THINK_CLOSE in text:
        head, _, tail = text.partition(THINK_CLOSE)
        # Everything before the first </think> is reasoning; an optional <think> opener
        # may be absent because generation prompts sometimes pre-fill it.
        reasoning = head.split(THINK_OPEN, 1)[1] if THINK_OPEN in head else head
        return reasoning.strip("\n"), tail.lstrip("\n"), True
    stripped = text.lstrip()
    if stripped.startswith(THINK_OPEN):
        return stripped[len(THINK_OPEN) :].strip("\n"), "", False
    return None, text, True


def final_answer(text: str) -> str:
    """The part of a completion that verifiers score (empty for an unfinished think)."""
    return split_reasoning(text)[1]


def parse_completion(text: str) -> ParsedCompletion:
    """Take a completion apart: reasoning, answer, tool calls (see ParsedCompletion).

    Anything after ``<|im_end|>`` is dropped, as in ``split_reasoning``.
    """
    reasoning, rest, finished = split_reasoning(text)
    answer, found, calls_text = rest.partition(TOOL_CALL_OPEN)
    if not found:
        return ParsedCompletion(reasoning, answer, finished=finished)
    # The template joins the answer and the first call with exactly one line break.
    answer = answer.removesuffix("\n")
    tool_calls, errors, calls_closed = _read_tool_calls(TOOL_CALL_OPEN + calls_text)
    return ParsedCompletion(reasoning, answer, tool_calls, finished and calls_closed, errors)


def _read_tool_calls(text: str) -> tuple[list[dict[str, Any]], list[str], bool]:
    """Read consecutive ``<tool_call>`` blocks; returns (calls, errors, every block closed)."""
    calls: list[dict[str, Any]] = []
    errors: list[str] = []
    number = 0
    rest = text
    while rest.strip():
        number += 1
        stripped = rest.lstrip()
        if not stripped.startswith(TOOL_CALL_OPEN):
            errors.append(f"text after tool call {number - 1} ignored: {_preview(stripped)}")
            break
        body, closed, rest = stripped[len(TOOL_CALL_OPEN) :].partition(TOOL_CALL_CLOSE)
        if not closed:
            errors.append(f"tool call {number} has no {TOOL_CALL_CLOSE} (cut off?)")
            return calls, errors, False
        call, error = _read_tool_call(body)
        if error:
            errors.append(f"tool call {number}: {error}")
        else:
            calls.append(call)
    return calls, errors, True


def _read_tool_call(body: str) -> tuple[dict[str, Any], str | None]:
    try:
        payload = json.loads(body)
    except json.JSONDecodeError as exc:
        return {}, f"invalid JSON ({exc.msg} at char {exc.pos}): {_preview(body.strip())}"
    except RecursionError:
        return {}, f"JSON nested deeper than {MAX_ARGUMENT_DEPTH} levels"
    if _deeper_than(payload, MAX_ARGUMENT_DEPTH + 1):  # +1: the call object itself
        return {}, f"JSON nested deeper than {MAX_ARGUMENT_DEPTH} levels"
    if not isinstance(payload, dict) or not isinstance(payload.get("name"), str):
        return {}, f"expected an object with a string 'name': {_preview(body.strip())}"
    arguments = payload.get("arguments", {})
    if isinstance(arguments, str):
        # Some models write the arguments as a JSON string, the way the OpenAI API carries them.
        try:
            arguments = json.loads(arguments)
        except (json.JSONDecodeError, RecursionError):
            return {}, f"'arguments' is a string but not JSON: {_preview(arguments)}"
        if _deeper_than(arguments, MAX_ARGUMENT_DEPTH):
            return {}, f"JSON nested deeper than {MAX_ARGUMENT_DEPTH} levels"
    if not isinstance(arguments, dict):
        return {}, f"'arguments' must be an object: {_preview(body.strip())}"
    return {"name": payload["name"], "arguments": arguments}, None


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether objects/lists nest more than ``limit`` levels (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def _preview(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")

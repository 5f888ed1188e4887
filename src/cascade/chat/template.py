"""The Nemotron-Cascade chat format: the Jinja template, and rendering without transformers.

Two templates ship with the package (``templates/*.jinja``):

- ``chat_template()``: the inference template, the one to attach to a tokenizer
  (``tokenizer.chat_template = chat_template()``), so that ``apply_chat_template(messages,
  add_generation_prompt=True, enable_thinking=...)`` gives the model card's prompts byte for
  byte;
- ``chat_template(training=True)``: the same text for a finished conversation, plus
  ``{% generation %}`` markers around the final assistant reply (or, with the template
  argument ``train_every_turn=True``, around every assistant reply), for assistant-only loss.

``render`` and ``render_training`` run those templates with jinja2 in the same sandbox settings
as Hugging Face's ``apply_chat_template``, so engines and data code get identical text without
importing transformers.

The rules (the model card's "Chat Template" section; the paper, section 3.1.2):

- ChatML; with no system message the system turn is ``DEFAULT_SYSTEM_PROMPT``, as in the card's
  examples; a given system message replaces it. With tools too: Qwen3's template has no default
  system prompt, but the card states its default without an exception for tools, so the tools
  block follows the default prompt the way Qwen3 writes it after a given one.
- Every user turn ends with a mode flag, ``THINK_FLAG`` or ``NO_THINK_FLAG``. The LAST user turn
  gets the flag of ``enable_thinking`` (default True, as in Qwen3). Every earlier user turn
  gets ``NO_THINK_FLAG``, because its reply is folded to its summary (next rule), which is what
  an instruct reply looks like.
- Folding: an assistant reply before the last user turn keeps only the text after ``</think>``
  (leading newlines dropped). Replies after the last user turn (the turn in progress, e.g. the
  steps of a tool-calling loop) keep their ``<think>`` block in thinking mode and drop it in
  instruct mode.
- Flags the user already wrote as the last words of the text (``/think``, ``/no_think``, one or more) are
  taken out before the flag is added. Decision: ``enable_thinking`` wins over it. The flag the
  model sees then always agrees with the mode the caller asked for and with the training
  target's think block (a thinking target under a ``/no_think`` flag would teach the wrong
  behaviour), and a flag is never doubled. A caller who wants the text's own flag to decide
  reads it and passes the matching ``enable_thinking``.
- Reasoning comes either inline (``<think>...</think>`` in ``content``, as in the SFT data) or as
  ``reasoning_content`` (as from OpenAI-compatible servers; ``thinking`` and ``reasoning`` are
  accepted aliases, like transformers does). A kept think block is rendered canonically:
  ``<think>\\n{reasoning}\\n</think>\\n\\n{answer}``.
- Instruct mode has no empty think block; the generation prompt is ``<|im_start|>assistant\\n``
  in both modes.
- Tools, in the wording of Qwen3's published chat template (the ``# Tools`` block: an
  instruction line, the signatures as JSON lines inside ``<tools></tools>``, the call format);
  assistant ``tool_calls`` (OpenAI format, arguments a dict or a JSON string) as
  ``<tool_call>\\n{"name": ..., "arguments": ...}\\n</tool_call>`` after the answer, one line
  break apart; a run of consecutive ``tool`` messages becomes one user turn of
  ``<tool_response>`` blocks, without a mode flag. One difference from Qwen3: the call's name
  is written as a JSON string, where Qwen3 pastes it between quotes; the text is the same for
  any name without quotes or backslashes, and stays valid JSON for the others.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from typing import Any

import jinja2
import jinja2.ext
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from cascade.errors import CascadeError

DEFAULT_SYSTEM_PROMPT = "You are a helpful and harmless assistant."
THINK_FLAG = " /think"
NO_THINK_FLAG = " /no_think"
# The tokens a tokenizer for this format must keep whole. <tools>, <tool_response> and their
# closers are left out on purpose: they only ever appear in prompts the template writes, never
# in what the model generates, so nothing has to find them token by token.
SPECIAL_TOKENS = [
    "<|im_start|>",
    "<|im_end|>",
    "<think>",
    "</think>",
    "<tool_call>",
    "</tool_call>",
    "<|endoftext|>",
]

_ROLES = ("system", "user", "assistant", "tool")
_TEMPLATE_FILES = {False: "nemotron_cascade.jinja", True: "nemotron_cascade_training.jinja"}
# transformers copies a message's reasoning from these older names into reasoning_content.
_REASONING_ALIASES = ("reasoning_content", "thinking", "reasoning")


def chat_template(training: bool = False) -> str:
    """The Jinja source of the inference template, or of its training variant."""
    return _template_source(training)


def render(
    messages: Sequence[Mapping[str, Any]],
    *,
    enable_thinking: bool = True,
    add_generation_prompt: bool = True,
    tools: list | None = None,
    training: bool = False,
) -> str:
    """Render a conversation exactly as ``tokenizer.apply_chat_template(..., tokenize=False)``.

    ``training=True`` uses the training variant: the conversation must end with the assistant
    reply to train on, and ``add_generation_prompt`` is ignored (there is nothing to prompt).
    Bad messages raise CascadeError naming the field, e.g. ``messages[2].role``.
    """
    text, _ = _render(messages, enable_thinking, add_generation_prompt, tools, training)
    return text


def render_training(
    messages: Sequence[Mapping[str, Any]],
    *,
    enable_thinking: bool,
    tools: list | None = None,
    every_turn: bool = False,
) -> tuple[str, list[tuple[int, int]]]:
    """The training text and the ``(start, end)`` character spans of the trained tokens.

    A span covers one assistant reply: its think block where the render keeps one, its
    answer, its tool calls and its ``<|im_end|>``; not the ``\\n`` after it, which the model
    never generates. With ``every_turn=False`` only the final reply has a span; with
    ``every_turn=True`` every assistant reply has one, in order. These are the spans
    ``return_assistant_tokens_mask=True`` turns into a mask (pass ``train_every_turn=True`` to
    ``apply_chat_template`` for the second).
    """
    return _render(messages, enable_thinking, False, tools, True, every_turn)


def check_messages(
    messages: Any, *, training: bool = False, file: str | None = None, line: int | None = None
) -> None:
    """Raise CascadeError, naming the field, for anything the template cannot render."""

    def fail(message: str, field: str) -> None:
        raise CascadeError(message, file=file, line=line, field=field)

    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence) or not messages:
        fail("expected a non-empty list of messages", "messages")
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, Mapping):
            fail("a message must be an object with 'role' and 'content'", where)
        role = message.get("role")
        if role not in _ROLES:
            fail(f"unknown role {role!r}; expected one of {', '.join(_ROLES)}", f"{where}.role")
        if role == "system" and index > 0:
            fail("only the first message may be a system message", f"{where}.role")
        content = message.get("content")
        if role in ("system", "user") and not isinstance(content, str):
            fail(f"a {role} message needs string content", f"{where}.content")
        if role == "tool" and content is None:
            fail("a tool message needs content (the tool's result)", f"{where}.content")
        if role == "assistant":
            _check_assistant(message, where, fail)
    if training and messages[-1].get("role") != "assistant":
        fail(
            "the training render needs a conversation that ends with the assistant reply to "
            "train on",
            f"messages[{len(messages) - 1}].role",
        )


def check_tools(tools: Any, *, file: str | None = None) -> None:
    """Raise CascadeError unless ``tools`` is a list of JSON-serialisable objects."""
    if not isinstance(tools, list):
        raise CascadeError(
            "expected a list of tool (function) signatures", file=file, field="tools"
        )
    for index, tool in enumerate(tools):
        if not isinstance(tool, Mapping):
            raise CascadeError(
                "a tool signature must be a JSON object", file=file, field=f"tools[{index}]"
            )
        try:
            json.dumps(tool)
        except (TypeError, ValueError) as exc:
            raise CascadeError(
                f"not JSON-serialisable: {exc}", file=file, field=f"tools[{index}]"
            ) from exc


def _check_assistant(message: Mapping[str, Any], where: str, fail: Any) -> None:
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        fail("an assistant message needs string content", f"{where}.content")
    for alias in _REASONING_ALIASES:
        value = message.get(alias)
        if value is not None and not isinstance(value, str):
            fail("reasoning must be a string", f"{where}.{alias}")
    tool_calls = message.get("tool_calls")
    if tool_calls is None:
        if content is None:
            fail("an assistant message needs content or tool_calls", f"{where}.content")
        return
    if not isinstance(tool_calls, list):
        fail("tool_calls must be a list", f"{where}.tool_calls")
    for index, call in enumerate(tool_calls):
        call_where = f"{where}.tool_calls[{index}]"
        if not isinstance(call, Mapping):
            fail("a tool call must be an object", call_where)
        # OpenAI nests name/arguments under "function"; a flat {"name", "arguments"} is accepted.
        function = call.get("function", call)
        if "function" in call:
            call_where += ".function"
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            fail("a tool call needs a string 'name'", f"{call_where}.name")
        arguments = function.get("arguments", {})
        if not isinstance(arguments, (str, Mapping)):
            fail("arguments must be an object or a JSON string", f"{call_where}.arguments")
        # A string is rendered verbatim inside the call's JSON, so text that is not a JSON
        # object would render (and train the model on) a call no parser can read.
        if isinstance(arguments, str) and not _is_json_object(arguments):
            fail("arguments is a string but not a JSON object", f"{call_where}.arguments")


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except (ValueError, RecursionError):
        return False


def _render(
    messages: Sequence[Mapping[str, Any]],
    enable_thinking: bool,
    add_generation_prompt: bool,
    tools: list | None,
    training: bool,
    every_turn: bool = False,
) -> tuple[str, list[tuple[int, int]]]:
    check_messages(messages, training=training)
    if tools is not None:
        check_tools(tools)
    recording = _Recording()
    token = _RECORDING.set(recording)
    try:
        for piece in _compiled(training).generate(
            messages=[_as_transformers_sees_it(m) for m in messages],
            tools=tools,
            documents=None,
            add_generation_prompt=add_generation_prompt,
            enable_thinking=enable_thinking,
            train_every_turn=every_turn,
        ):
            recording.pieces.append(piece)
    finally:
        _RECORDING.reset(token)
    return "".join(recording.pieces), recording.spans


def _as_transformers_sees_it(message: Mapping[str, Any]) -> dict[str, Any]:
    """The message after apply_chat_template's own clean-up, so both renderings agree.

    transformers drops keys whose value is None and copies reasoning given under an older
    name into ``reasoning_content``.
    """
    plain = {key: value for key, value in message.items() if value is not None}
    reasoning = next((plain[key] for key in _REASONING_ALIASES if key in plain), None)
    if reasoning is not None:
        plain["reasoning_content"] = reasoning
    return plain


@cache
def _template_source(training: bool) -> str:
    path = files("cascade.chat") / "templates" / _TEMPLATE_FILES[training]
    return path.read_text(encoding="utf-8")


@cache
def _compiled(training: bool) -> jinja2.Template:
    # The same environment settings as transformers' apply_chat_template: whitespace handling
    # changes the output, and a template that works here must work there.
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[_GenerationMarker, jinja2.ext.loopcontrols],
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    return env.from_string(_template_source(training))


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    # Jinja's own tojson escapes <, > and & for HTML; chat templates need plain JSON.
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _raise_exception(message: str) -> None:
    raise CascadeError(message)


@dataclass
class _Recording:
    """The render in progress: the pieces of text produced so far, and the generation spans."""

    pieces: list[str] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)


_RECORDING: contextvars.ContextVar[_Recording | None] = contextvars.ContextVar(
    "chat_template_recording", default=None
)


class _GenerationMarker(jinja2.ext.Extension):
    """``{% generation %}...{% endgeneration %}``: record where the enclosed text lands.

    The block's text is yielded right after the call returns, so its start offset is the
    length of everything the template yielded before it.
    """

    tags = {"generation"}

    def parse(self, parser: jinja2.parser.Parser) -> nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.CallBlock(self.call_method("_mark", []), [], [], body).set_lineno(lineno)

    def _mark(self, caller: Any) -> str:
        text = caller()
        recording = _RECORDING.get()
        if recording is not None:
            start = sum(len(piece) for piece in recording.pieces)
            recording.spans.append((start, start + len(text)))
        return text

"""`cascade template`: show exactly what the model sees.

``render`` writes the rendered text to stdout byte for byte (UTF-8) and adds nothing: a
generation prompt already ends in ``<|im_start|>assistant\\n``, and an extra newline would be
a byte the model never sees. ``show`` writes the Jinja source the same way, so
``cascade template show > chat_template.jinja`` gives a file to attach to any tokenizer.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cascade.errors import CascadeError

DESCRIPTION = """\
Render conversations with the Nemotron-Cascade chat template, or print the template.

The format is ChatML. With no system message, the system turn is 'You are a helpful and
harmless assistant.'. Every user turn ends with a mode flag: the last one with ' /think'
(default) or ' /no_think' (--no-think), every earlier one with ' /no_think'. Earlier
assistant replies keep only their final summary (the text after </think>).
"""

RENDER_DESCRIPTION = """\
Print exactly the text the model sees for a conversation, byte for byte: nothing is added
after it (no trailing newline of our own).

--messages FILE holds one conversation:
  JSON   a list of messages, or {"messages": [...], "tools": [...]} (tools optional)
  JSONL  one line holding either of those (.jsonl files)
A message is {"role": "system"|"user"|"assistant"|"tool", "content": "..."}; an assistant
message may carry "reasoning_content" (or <think>...</think> in its content) and OpenAI-style
"tool_calls". Without --training the prompt ends with '<|im_start|>assistant\\n', where the
model starts to write (--no-generation-prompt leaves it out).

--training renders a finished conversation the way SFT trains on it: the last message must
be the assistant reply, which keeps its <think> block in thinking mode.
"""

RENDER_EXAMPLES = """\
  cascade template render --messages chat.json
  cascade template render --messages chat.json --no-think
  cascade template render --messages chat.json --tools tools.json
  cascade template render --messages sft_record.jsonl --training
"""

SHOW_DESCRIPTION = """\
Print the Jinja source of the chat template (or of its training variant, whose
{% generation %} markers let apply_chat_template(..., return_assistant_tokens_mask=True)
mask the trained tokens).
"""

SHOW_EXAMPLES = """\
  cascade template show > chat_template.jinja
  cascade template show --training
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "template",
        help="render a conversation exactly as the model sees it",
        description=DESCRIPTION,
        epilog="examples:\n" + RENDER_EXAMPLES + SHOW_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="template_action", metavar="ACTION", required=True)

    render = actions.add_parser(
        "render",
        help="print the rendered conversation",
        description=RENDER_DESCRIPTION,
        epilog="examples:\n" + RENDER_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    render.add_argument("--messages", required=True, metavar="FILE", help="the conversation")
    render.add_argument(
        "--no-think", action="store_true", help="instruct mode: ' /no_think' on the last user turn"
    )
    render.add_argument(
        "--tools", metavar="FILE", help='tool signatures: a JSON list, or {"tools": [...]}'
    )
    render.add_argument(
        "--training", action="store_true", help="render with the training variant (SFT view)"
    )
    render.add_argument(
        "--no-generation-prompt",
        action="store_true",
        help="leave out the final '<|im_start|>assistant\\n'",
    )
    render.set_defaults(func=run_render)

    show = actions.add_parser(
        "show",
        help="print the Jinja template",
        description=SHOW_DESCRIPTION,
        epilog="examples:\n" + SHOW_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    show.add_argument("--training", action="store_true", help="the training variant")
    show.set_defaults(func=run_show)


def run_render(args: argparse.Namespace) -> int:
    from cascade.chat.template import check_messages, check_tools, render

    messages, record_tools, line = _load_conversation(args.messages)
    check_messages(messages, training=args.training, file=args.messages, line=line)
    tools = record_tools
    if args.tools:
        tools = _load_tools(args.tools)
    if tools is not None:
        check_tools(tools, file=args.tools or args.messages)
    text = render(
        messages,
        enable_thinking=not args.no_think,
        add_generation_prompt=not args.no_generation_prompt,
        tools=tools,
        training=args.training,
    )
    _write_exactly(text)
    return 0


def run_show(args: argparse.Namespace) -> int:
    from cascade.chat.template import chat_template

    _write_exactly(chat_template(training=args.training))
    return 0


def _write_exactly(text: str) -> None:
    # Through the byte stream: the console's encoding and newline translation must not
    # change a single byte of the prompt.
    sys.stdout.flush()
    sys.stdout.buffer.write(text.encode("utf-8"))
    sys.stdout.buffer.flush()


def _load_conversation(path: str) -> tuple[Any, list | None, int | None]:
    """Return (messages, tools or None, the JSONL line number or None)."""
    text = _read_text(path)
    line: int | None = None
    if path.endswith(".jsonl"):
        # Split on "\n" only: str.splitlines() also breaks at U+2028, which JSON strings may hold.
        rows = [(number, row) for number, row in enumerate(text.split("\n"), 1) if row.strip()]
        if not rows:
            raise CascadeError("the file holds no conversation", file=path)
        if len(rows) > 1:
            raise CascadeError(
                f"holds {len(rows)} conversations; render takes one (one line)",
                file=path,
                line=rows[1][0],
            )
        line, text = rows[0]
    data = _parse_json(text, path, line)
    if isinstance(data, dict):
        if "messages" not in data:
            raise CascadeError(
                "expected a list of messages or an object with 'messages'",
                file=path,
                line=line,
                field="messages",
            )
        return data["messages"], data.get("tools"), line
    return data, None, line


def _load_tools(path: str) -> Any:
    data = _parse_json(_read_text(path), path, None)
    if isinstance(data, dict):
        if "tools" not in data:
            raise CascadeError(
                "expected a list of tool signatures or an object with 'tools'",
                file=path,
                field="tools",
            )
        return data["tools"]
    return data


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CascadeError("file not found", file=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CascadeError(f"cannot read: {exc}", file=path) from None


def _parse_json(text: str, path: str, line: int | None) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        # In a JSONL file the error is on the conversation's line, not on line 1 of the row.
        where = line if line is not None else exc.lineno
        message = f"not valid JSON: {exc.msg} (column {exc.colno})"
        raise CascadeError(message, file=path, line=where) from None
    except RecursionError:
        raise CascadeError("JSON nested too deeply to read", file=path, line=line) from None

"""Turn a completion into an OpenAI assistant message, losslessly. Torch-free.

The split follows vLLM's Qwen3 reasoning parser: a reply that opens with ``<think>`` has
its reasoning (the text up to ``</think>``, verbatim) in ``reasoning_content`` and the
rest, verbatim, in ``content``; a reply that never closes its think block ran out of
budget and has ``content`` null. Nothing is stripped, so
``cascade.eval.backends.openai_http.merge_reasoning`` rebuilds exactly the model's text,
which is what makes `cascade eval --backend openai` against `cascade serve` equal to the
local backend sample by sample.

Tool calls become structured ``tool_calls`` only when the request offered tools and every
``<tool_call>`` block parses; arguments are re-serialised the way the chat template
writes them, so a model that follows the template round-trips exactly. Anything else
stays in ``content`` as text.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from cascade.chat.parse import THINK_CLOSE, THINK_OPEN, TOOL_CALL_OPEN, parse_completion


@dataclass
class Reply:
    reasoning: str | None  # None: the reply did not open a think block
    content: str | None  # None: the think block never closed
    tool_calls: list[dict[str, Any]] = field(default_factory=list)

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.content,
                                   "reasoning_content": self.reasoning}
        if self.tool_calls:
            message["tool_calls"] = self.tool_calls
        return message


def split_reply(text: str, *, tools_offered: bool) -> Reply:
    """``text`` is the completion without its stop marker."""
    if not text.startswith(THINK_OPEN):
        reasoning, content = None, text
    elif THINK_CLOSE in text:
        reasoning, _, content = text[len(THINK_OPEN):].partition(THINK_CLOSE)
    else:
        return Reply(reasoning=text[len(THINK_OPEN):], content=None)
    if tools_offered and TOOL_CALL_OPEN in content:
        parsed = parse_completion(content)
        if parsed.tool_calls and parsed.finished and not parsed.errors:
            return Reply(reasoning, parsed.answer, [_openai_call(c) for c in parsed.tool_calls])
    return Reply(reasoning, content)


def _openai_call(call: dict[str, Any]) -> dict[str, Any]:
    # ensure_ascii=False and the default separators are what the template's tojson writes.
    return {"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
            "function": {"name": call["name"], "arguments": json.dumps(call["arguments"], ensure_ascii=False)}}

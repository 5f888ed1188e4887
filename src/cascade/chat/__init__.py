"""The Nemotron-Cascade chat format: templates, rendering and completion parsing.

Torch- and transformers-free: data code, verifiers and engines all render and parse through
here, so training and inference can never disagree on the format.
"""

from cascade.chat.parse import ParsedCompletion, final_answer, parse_completion, split_reasoning
from cascade.chat.template import (
    DEFAULT_SYSTEM_PROMPT,
    NO_THINK_FLAG,
    SPECIAL_TOKENS,
    THINK_FLAG,
    chat_template,
    check_messages,
    check_tools,
    render,
    render_training,
)

__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "NO_THINK_FLAG",
    "SPECIAL_TOKENS",
    "THINK_FLAG",
    "ParsedCompletion",
    "chat_template",
    "check_messages",
    "check_tools",
    "final_answer",
    "parse_completion",
    "render",
    "render_training",
    "split_reasoning",
]

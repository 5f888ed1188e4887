"""The one place a chat request becomes a prompt string, for every local generation path,
and the context length those paths check budgets against.

The local backend, the vllm backend and `cascade serve` all call ``render_prompt``, so a
sample evaluated in process and the same sample served over HTTP see byte-identical
prompts (the tokenizer carries the cascade template; see ``cascade.models.loading``).
Torch-free.
"""

from __future__ import annotations

from typing import Any, Sequence

# Generation stops after one of these; it is framing, not part of the reply's text.
STOP_STRINGS = ("<|im_end|>", "<|endoftext|>")


def render_prompt(tokenizer: Any, messages: Sequence[dict[str, Any]], *, enable_thinking: bool,
                  tools: list[dict[str, Any]] | None = None) -> str:
    """The chat-rendered prompt, ending with the assistant generation prompt."""
    return tokenizer.apply_chat_template(list(messages), tools=tools, tokenize=False, add_generation_prompt=True,
                                         enable_thinking=enable_thinking)


def strip_stop(text: str) -> str:
    """Drop the stop marker the engine keeps at the end of a finished completion."""
    for stop in STOP_STRINGS:
        if text.endswith(stop):
            return text[: -len(stop)]
    return text


def context_length(config: Any) -> int | None:
    """Positions the model can attend over: ``max_position_embeddings``, or YaRN's stretch of
    the original window when the config carries the model card's rope scaling block."""
    limit = getattr(config, "max_position_embeddings", None)
    if not isinstance(limit, int):
        return None
    for name in ("rope_scaling", "rope_parameters"):
        scaling = getattr(config, name, None)
        if isinstance(scaling, dict) and scaling.get("rope_type", scaling.get("type")) == "yarn":
            original = scaling.get("original_max_position_embeddings") or limit
            limit = max(limit, int(original * float(scaling.get("factor", 1.0))))
    return limit

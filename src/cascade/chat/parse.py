"""Split a model completion into reasoning, answer and tool calls.

Torch-free. The rules follow the chat format (design.md section 3): thinking replies are
``<think>...</think>`` followed by the answer; a ``<think>`` that never closes means the
model ran out of budget mid-thought, so there is no answer.
"""

from __future__ import annotations

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
END_OF_TURN = "<|im_end|>"


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
        return stripped[len(THINK_OPEN):].strip("\n"), "", False
    return None, text, True


def final_answer(text: str) -> str:
    """The part of a completion that verifiers score (empty for an unfinished think)."""
    return split_reasoning(text)[1]

"""Text-extraction helpers shared by the verifiers (torch-free, pure functions).

``all_boxed`` / ``last_boxed``: the contents of ``\\boxed{...}`` / ``\\fbox{...}``
(brace-balanced, nested braces allowed). Tool calls are read by ``cascade.chat.parse``.
"""

from __future__ import annotations

import re

# ``\boxed`` and ``\fbox`` are the two box commands models use for final answers.
_BOX_COMMAND = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")


def _balanced_group(text: str, open_at: int) -> str | None:
    """The text inside the brace group whose ``{`` is at ``open_at`` (None if unclosed).

    Escaped braces (``\\{``, ``\\}``) are literal characters, not grouping, so that
    ``\\boxed{\\{1,2\\}}`` yields ``\\{1,2\\}``.
    """
    depth = 0
    i = open_at
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[open_at + 1 : i]
        i += 1
    return None


def all_boxed(text: str) -> list[str]:
    """Contents of every complete ``\\boxed{}``/``\\fbox{}`` in order of appearance.

    The brace-less form ``\\boxed 5`` (one token after a space) is accepted too, because
    some models write it for single-token answers.
    """
    found: list[str] = []
    for match in _BOX_COMMAND.finditer(text):
        rest = match.end()
        while rest < len(text) and text[rest] == " ":
            rest += 1
        if rest < len(text) and text[rest] == "{":
            content = _balanced_group(text, rest)
            if content is not None:
                found.append(content.strip())
        elif rest > match.end():
            token = re.match(r"[^\s$]+", text[rest:])
            if token:
                found.append(token.group(0))
    return found


def last_boxed(text: str) -> str | None:
    """The content of the last complete box in ``text``, or None when there is none."""
    boxes = all_boxed(text)
    return boxes[-1] if boxes else None

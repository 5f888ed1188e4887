"""Text-extraction helpers shared by the verifiers (torch-free, pure functions).

``all_boxed`` / ``last_boxed``: the contents of ``\\boxed{...}`` / ``\\fbox{...}``
(brace-balanced, nested braces allowed). Tool calls are read by ``cascade.chat.parse``.
"""

from __future__ import annotations

import re

# ``\boxed`` and ``\fbox`` are the two box commands models use for final answers; the
# spaces after the command are part of the match, so the argument starts at match.end().
_BOX_COMMAND = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])(?P<space> *)")
# What brace matching looks at: an escape (``\{`` is a literal brace) or a brace.
_BRACE_TOKEN = re.compile(r"\\.|[{}]", re.DOTALL)
_BARE_TOKEN = re.compile(r"[^\s$]+")


def _matching_braces(text: str) -> dict[int, int]:
    r"""Position of every ``{`` that closes -> position of its ``}``, in one pass.

    Escaped braces (``\{``, ``\}``) are literal characters, not grouping, so that
    ``\boxed{\{1,2\}}`` yields ``\{1,2\}``. One pass for all boxes, because scanning
    from each box to the end of the text is quadratic: a model that writes ``\boxed{``
    twenty thousand times must not stall the verifier.
    """
    closing: dict[int, int] = {}
    open_at: list[int] = []
    for token in _BRACE_TOKEN.finditer(text):
        char = token.group()
        if char == "{":
            open_at.append(token.start())
        elif char == "}" and open_at:
            closing[open_at.pop()] = token.start()
    return closing


def all_boxed(text: str) -> list[str]:
    """Contents of every complete ``\\boxed{}``/``\\fbox{}`` in order of appearance.

    The brace-less form ``\\boxed 5`` (one token after a space) is accepted too, because
    some models write it for single-token answers.
    """
    found: list[str] = []
    closing: dict[int, int] | None = None
    for match in _BOX_COMMAND.finditer(text):
        rest = match.end()
        if text.startswith("{", rest):
            if closing is None:
                closing = _matching_braces(text)
            end = closing.get(rest)
            if end is not None:
                found.append(text[rest + 1 : end].strip())
        elif match.group("space"):
            token = _BARE_TOKEN.match(text, rest)
            if token:
                found.append(token.group(0))
    return found


def last_boxed(text: str) -> str | None:
    """The content of the last complete box in ``text``, or None when there is none."""
    boxes = all_boxed(text)
    return boxes[-1] if boxes else None

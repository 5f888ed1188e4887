"""Turn one pydantic validation error into a short, human sentence and a field path.

Shared by the record readers and the recipe loader so that every bad input reads the same
way: ``file:line: field 'messages[1].role': ...``. Torch-free.
"""

from __future__ import annotations

from typing import Any, Sequence

from pydantic import ValidationError

Loc = tuple[str | int, ...]

# Longest rendering of an offending value inside a message: errors must stay one line.
_MAX_VALUE_CHARS = 60


def format_path(loc: Sequence[str | int]) -> str:
    """``('messages', 1, 'role')`` -> ``messages[1].role``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def short_repr(value: Any) -> str:
    text = repr(value).replace("\n", "\\n")
    if len(text) > _MAX_VALUE_CHARS:
        text = text[: _MAX_VALUE_CHARS - 3] + "..."
    return text


def describe(error: Any) -> str:
    """One pydantic error dict -> a lower-case sentence that says what was wrong and what
    is allowed. ``error`` is an item of ``ValidationError.errors()``."""
    kind = error["type"]
    if kind == "missing":
        return "required item missing" if error["loc"] and isinstance(error["loc"][-1], int) else "required key missing"
    if kind == "value_error":
        # Our own validators raise ValueError; pydantic prefixes "Value error, ".
        return str(error["ctx"]["error"])
    message = error["msg"]
    message = message[0].lower() + message[1:] if message else message
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "literal_error" and isinstance(error.get("input"), str) and not error["input"].isascii():
        # A look-alike ('usеr' with a Cyrillic 'е') prints like an allowed value; escape it.
        return f"{message} (got {ascii(error['input'])[:_MAX_VALUE_CHARS]}, which has non-ASCII characters)"
    if "input" in error and kind not in ("model_type", "dict_type", "list_type"):
        return f"{message} (got {short_repr(error['input'])})"
    return f"{message} (got {type(error.get('input')).__name__})"


def every_error(exc: ValidationError) -> tuple[Loc, str]:
    """All errors of ``exc`` as ``(first loc, message)``: the first error's sentence, then
    ``; field 'x': ...`` for each further one, so a row with three bad fields names all three
    at once instead of costing three rounds of fix-and-rerun."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    parts = [describe(first)]
    seen = {(tuple(first["loc"]), parts[0])}
    for error in errors[1:]:
        loc, sentence = tuple(error["loc"]), describe(error)
        if (loc, sentence) in seen:
            continue
        seen.add((loc, sentence))
        where = format_path(loc)
        parts.append(f"field '{where}': {sentence}" if where else sentence)
    return tuple(first["loc"]), "; ".join(parts)


def more_suffix(count: int) -> str:
    return "" if count <= 1 else f" (and {count - 1} more error{'s' if count > 2 else ''})"

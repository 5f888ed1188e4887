"""The adapter contract and the helpers every adapter shares.

An ``Adapter`` turns one row of a published dataset into one cascade record (a plain dict
that validates as ``sft``, ``preference`` or ``prompt``, docs/records.md). A bad row raises
one ``AdapterRowError`` that names the file, the line (or row index) and EVERY bad field of
the row, not only the first: a user fixing a converter sees all of its mistakes at once.
Field names in errors are the dataset's own (``problem``, ``kwargs[2]``), not ours.
Torch-free.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Callable, Mapping, Sequence

from pydantic import ValidationError

from cascade.data.io import RowPlace
from cascade.data.records import Message, record_model
from cascade.data.validation import describe, format_path, short_repr
from cascade.errors import CascadeError

KINDS = ("sft", "preference", "prompt")
ROLES = ("system", "user", "assistant", "tool")
_MISSING = object()


class RowProblems:
    """The bad fields of one row, collected in the order they were found."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, field: str, message: str) -> None:
        if (field, message) not in self.items:
            self.items.append((field, message))

    def __bool__(self) -> bool:
        return bool(self.items)

    def fields(self) -> list[str]:
        return [f for f, _ in self.items]


class AdapterRowError(CascadeError):
    """A row that an adapter cannot convert. ``problems`` lists every ``(field, message)``;
    the message names them all, the first one is also ``field``."""

    def __init__(self, place: RowPlace, problems: Sequence[tuple[str, str]], fmt: str) -> None:
        problems = list(problems)
        first_field, first_message = problems[0]
        rest = "".join(f"; field '{f}': {m}" for f, m in problems[1:])
        count = f" [{len(problems)} bad fields]" if len(problems) > 1 else ""
        file = place.file if place.row is None else f"{place.file} row {place.row}"
        super().__init__(f"{first_message}{rest} (format '{fmt}'){count}", file=file, line=place.line,
                         field=first_field)
        self.problems = problems
        self.format_name = fmt


Build = Callable[["Row", str], "dict[str, Any] | None"]


@dataclass(frozen=True)
class Adapter:
    """One published layout. ``kinds``: the record kinds it can produce. ``detect``: whether
    a row has this layout's distinctive fields. ``renames``: record field -> dataset field,
    so validation errors of the built record name the dataset's field."""

    name: str
    kinds: tuple[str, ...]
    summary: str
    detect: Callable[[Mapping[str, Any]], bool]
    build: Build
    renames: Mapping[str, str] = field(default_factory=dict)

    def convert(self, row: Mapping[str, Any], place: RowPlace, kind: str) -> dict[str, Any]:
        """``row`` as a record of ``kind`` (a dict that validates with ``cascade.data.records``)."""
        if kind not in self.kinds:
            raise place.error(f"format '{self.name}' gives {' or '.join(self.kinds)} records, not {kind!r}")
        if not isinstance(row, Mapping):
            raise place.error(f"expected an object, got {type(row).__name__}")
        reader = Row(row, place, self.name)
        record = self.build(reader, kind)
        if record is not None:
            check_record(record, kind, reader.problems, self.renames)
        if reader.problems:
            raise AdapterRowError(place, reader.problems.items, self.name)
        if record is None:  # an adapter that gave up must have said why; never pass a hole on
            raise place.error(f"format '{self.name}' could not convert this row")
        return record


def check_record(record: Mapping[str, Any], kind: str, problems: RowProblems,
                 renames: Mapping[str, str] | None = None) -> None:
    """Validate ``record`` as ``kind``; every error goes into ``problems``, its path renamed
    to the dataset's field where ``renames`` says so."""
    try:
        record_model(kind).model_validate(record)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            path = format_path(error["loc"])
            problems.add(_renamed(path, renames or {}) or "(record)", describe(error))


def _renamed(path: str, renames: Mapping[str, str]) -> str:
    for ours, theirs in renames.items():
        if path == ours or path.startswith(ours + ".") or path.startswith(ours + "["):
            return theirs + path[len(ours):]
    return path


class Row:
    """A raw row plus its problems: typed getters that record a problem instead of raising."""

    def __init__(self, row: Mapping[str, Any], place: RowPlace, fmt: str) -> None:
        self.row = row
        self.place = place
        self.format = fmt
        self.problems = RowProblems()

    def get(self, key: str, default: Any = None) -> Any:
        return self.row.get(key, default)

    def has(self, key: str) -> bool:
        return self.row.get(key) is not None

    def bad(self, field: str, message: str) -> None:
        self.problems.add(field, message)

    def text(self, key: str, *, required: bool = True, empty_ok: bool = False) -> str | None:
        """A string field; numbers are not strings (a column of the wrong type is a bug)."""
        value = self.row.get(key, _MISSING)
        if value is _MISSING or value is None:
            if required:
                self.bad(key, "required key missing" if value is _MISSING else "must be a string (got None)")
            return None
        if not isinstance(value, str):
            self.bad(key, f"must be a string (got {type(value).__name__} {short_repr(value)})")
            return None
        if not empty_ok and not value.strip() and required:
            self.bad(key, "must not be empty")
            return None
        return value

    def json_value(self, key: str, *, required: bool = True) -> Any:
        """A field stored either as JSON text or as the decoded value (Parquet/hub rows)."""
        value = self.row.get(key, _MISSING)
        if value is _MISSING or value is None:
            if required:
                self.bad(key, "required key missing" if value is _MISSING else "must not be null")
            return _MISSING
        if isinstance(value, str):
            try:
                return json.loads(value)
            except (json.JSONDecodeError, RecursionError) as exc:
                self.bad(key, f"not valid JSON: {exc}")
                return _MISSING
        return value

    def default_id(self) -> str:
        """A row id from the place: unique within a file and stable across reads."""
        stem = PurePath(self.place.file).name.split(".")[0] or "row"
        if self.place.item is not None:
            return f"{stem}-item{self.place.item}"
        number = self.place.line if self.place.line is not None else self.place.row
        return f"{stem}-{number if number is not None else 0}"

    def row_id(self, *keys: str) -> str:
        """The first of ``keys`` that holds a string or integer id, else ``default_id``."""
        for key in keys:
            value = self.row.get(key)
            if isinstance(value, str) and value.strip():
                return value
            if isinstance(value, int) and not isinstance(value, bool):
                return str(value)
        return self.default_id()


MISSING = _MISSING


def read_messages(row: Row, key: str, value: Any, *, role_map: Mapping[str, str] | None = None) -> list[dict[str, Any]] | None:
    """A chat list as plain ``{role, content, ...}`` dicts. Content given as a list of typed
    parts (``[{"type": "text", "text": ...}]``, the OpenAI and Responses API shapes) is joined;
    ``role_map`` renames roles (``developer`` -> ``system``). Bad turns are recorded."""
    if not isinstance(value, list):
        row.bad(key, f"must be a list of messages (got {type(value).__name__})")
        return None
    if not value:
        row.bad(key, "must not be empty")
        return None
    out = []
    ok = True
    for index, message in enumerate(value):
        where = f"{key}[{index}]"
        if not isinstance(message, Mapping):
            row.bad(where, f"must be an object with role and content (got {type(message).__name__})")
            ok = False
            continue
        message = dict(message)
        role = message.get("role")
        if role_map and role in role_map:
            message["role"] = role_map[role]
        content = message.get("content")
        if isinstance(content, list):
            parts = [p.get("text") for p in content if isinstance(p, Mapping)]
            if len(parts) != len(content) or not all(isinstance(p, str) for p in parts):
                row.bad(f"{where}.content", "a list content must hold text parts ({'text': ...})")
                ok = False
                continue
            message["content"] = "".join(parts)
        # Parquet stores the union of keys of all turns; a key that does not apply is null.
        for extra in [k for k, v in message.items() if v is None and k not in ("role", "content")]:
            del message[extra]
        try:
            Message.model_validate(message)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                path = format_path(error["loc"])
                row.bad(f"{where}.{path}" if path else where, describe(error))
            ok = False
        out.append(message)
    return out if ok else None


def last_user_text(messages: Sequence[Mapping[str, Any]]) -> str | None:
    for message in reversed(messages):
        if message.get("role") == "user" and isinstance(message.get("content"), str):
            return message["content"]
    return None


def thinking_mode(messages: Sequence[Mapping[str, Any]]) -> str:
    """``think`` when the final assistant turn opens with a non-empty ``<think>`` block
    (the released SFT sets keep reasoning inline), else ``no_think``."""
    for message in reversed(messages):
        if message.get("role") == "assistant":
            content = (message.get("content") or "").lstrip()
            if content.startswith("<think>"):
                end = content.find("</think>")
                inner = content[len("<think>"): end if end >= 0 else None]
                return "think" if inner.strip() else "no_think"
            return "no_think"
    return "no_think"

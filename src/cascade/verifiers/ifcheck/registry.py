"""One registry from instruction id to checker builder, plus typed access to the kwargs.

A checker builder takes the instruction's arguments (``Args``) and returns a predicate over
the response text. Arguments come from the official ``kwargs`` dicts, where ``None`` means
"not set". The official code fills a missing argument with a random value; a verifier must be
deterministic, so here a missing or invalid argument is an ``InstructionError`` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Check = Callable[[str], bool]
Builder = Callable[["Args"], Check]

CHECKERS: dict[str, Builder] = {}


class InstructionError(Exception):
    """A record this instruction cannot be checked against (unknown id, bad kwargs)."""


class ResourceMissing(InstructionError):
    """A checker needs an optional resource that is not installed (e.g. the POS tagger)."""


def checker(instruction_id: str) -> Callable[[Builder], Builder]:
    def wrap(build: Builder) -> Builder:
        if instruction_id in CHECKERS:
            raise RuntimeError(f"instruction id registered twice: {instruction_id}")
        CHECKERS[instruction_id] = build
        return build

    return wrap


RELATIONS = ("less than", "at least")


@dataclass
class Args:
    """The kwargs of one instruction, with ``None`` values dropped, plus the user prompt."""

    instruction_id: str
    values: Mapping[str, Any] = field(default_factory=dict)
    prompt: str | None = None

    def _fail(self, name: str, why: str) -> InstructionError:
        return InstructionError(f"{self.instruction_id}: kwarg '{name}' {why}")

    def has(self, name: str) -> bool:
        return self.values.get(name) is not None

    def raw(self, name: str) -> Any:
        if not self.has(name):
            raise self._fail(name, "is required")
        return self.values[name]

    def integer(self, name: str, *, minimum: int = 0) -> int:
        value = self.raw(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise self._fail(name, f"must be an integer, got {value!r}")
        if value < minimum:
            raise self._fail(name, f"must be >= {minimum}, got {value!r}")
        return int(value)

    def text(self, name: str) -> str:
        value = self.raw(name)
        if not isinstance(value, str):
            raise self._fail(name, f"must be a string, got {value!r}")
        return value

    def text_list(self, name: str) -> list[str]:
        value = self.raw(name)
        if isinstance(value, str) or not all(isinstance(v, str) for v in value):
            raise self._fail(name, f"must be a list of strings, got {value!r}")
        return list(value)

    def relation(self, name: str) -> str:
        value = self.text(name)
        if value not in RELATIONS:
            raise self._fail(name, f"must be one of {RELATIONS}, got {value!r}")
        return value

    def prompt_to_repeat(self) -> str:
        """``prompt_to_repeat`` if given, else the record's prompt."""
        if self.has("prompt_to_repeat"):
            return self.text("prompt_to_repeat")
        if self.prompt:
            return self.prompt
        raise self._fail("prompt_to_repeat", "is required (and the record carries no prompt)")


def compare(count: int, relation: str, threshold: int) -> bool:
    """The official relations: 'less than' is strict, 'at least' is inclusive."""
    return count < threshold if relation == RELATIONS[0] else count >= threshold


def build(instruction_id: str, kwargs: Mapping[str, Any] | None, prompt: str | None) -> Check:
    """The predicate for one instruction; InstructionError for unknown ids or bad kwargs."""
    try:
        builder = CHECKERS[instruction_id]
    except KeyError:
        raise InstructionError(f"unknown instruction id '{instruction_id}'") from None
    values = {k: v for k, v in (kwargs or {}).items() if v is not None}
    return builder(Args(instruction_id, values, prompt))

"""Strict and loose scoring of one response against a list of instructions.

Strict checks the response as is. Loose (the official upper bound) also accepts an
instruction when any of these variants passes: the response with its first line, last line
or both removed, each of those with every ``*`` deleted too (markdown emphasis often breaks
exact-format checks). A blank variant never passes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cascade.verifiers.ifcheck.registry import Check, InstructionError, ResourceMissing, build


def loose_variants(response: str) -> list[str]:
    """The eight official loose variants, in the official order (the original first)."""
    lines = response.split("\n")
    without_first = "\n".join(lines[1:]).strip()
    without_last = "\n".join(lines[:-1]).strip()
    without_both = "\n".join(lines[1:-1]).strip()
    return [
        response,
        response.replace("*", ""),
        without_first,
        without_last,
        without_both,
        without_first.replace("*", ""),
        without_last.replace("*", ""),
        without_both.replace("*", ""),
    ]


@dataclass
class Verdicts:
    """Per-instruction strict and loose verdicts, in instruction order.

    A verdict is None when its checker could not run (a missing optional resource such as
    the POS tagger); ``errors`` then says why, and the prompt-level verdicts are False.
    """

    strict: list[bool | None]
    loose: list[bool | None]
    errors: list[str] = field(default_factory=list)

    @property
    def prompt_strict(self) -> bool:
        return all(v is True for v in self.strict)

    @property
    def prompt_loose(self) -> bool:
        return all(v is True for v in self.loose)


def _passes(check: Check, response: str) -> bool:
    return bool(response.strip()) and check(response)


def evaluate(
    response: str,
    instruction_ids: Sequence[str],
    kwargs: Sequence[Mapping[str, Any] | None],
    prompt: str | None = None,
) -> Verdicts:
    """Score ``response``; raises InstructionError for unknown ids or unusable kwargs."""
    if len(instruction_ids) != len(kwargs):
        raise InstructionError(
            f"{len(instruction_ids)} instruction ids but {len(kwargs)} kwargs entries"
        )
    checks: list[Check | None] = []
    errors: list[str] = []
    for instruction_id, instruction_kwargs in zip(instruction_ids, kwargs, strict=False):
        try:
            checks.append(build(instruction_id, instruction_kwargs, prompt))
        except ResourceMissing as exc:
            checks.append(None)
            errors.append(str(exc))
    variants = loose_variants(response)
    strict: list[bool | None] = []
    loose: list[bool | None] = []
    for check in checks:
        if check is None:
            strict.append(None)
            loose.append(None)
            continue
        passed = _passes(check, response)
        strict.append(passed)
        loose.append(passed or any(_passes(check, v) for v in variants[1:]))
    return Verdicts(strict=strict, loose=loose, errors=errors)

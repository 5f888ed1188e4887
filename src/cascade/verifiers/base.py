"""The verifier contract: one small class per verifier, one registry, one result type.

A verifier scores a completion against its record. The record is a plain mapping with at
least ``ground_truth`` (any JSON, in the benchmark's official field names) and optionally
``meta``. Verifiers are torch-free and must be picklable, because the batch API runs them
in worker processes.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, ClassVar, Mapping

from cascade.chat.parse import split_reasoning
from cascade.errors import CascadeError


@dataclass
class VerifyResult:
    """What every verifier returns.

    score:   the reward (usually 0/1; SWE is in [-1, 1], stage rewards may reshape it)
    passed:  the pass/fail verdict used for pass@k
    details: per-check information (which constraint failed, the failing test, ...)
    error:   why scoring could not be done (no answer, unparseable, timeout, bad record)
    seconds: wall time the verification took
    """

    score: float
    passed: bool
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Verifier:
    """Base class. Subclasses set ``name`` and implement ``check(answer, record)``.

    ``verify`` strips the reasoning first (only the text after ``</think>`` is scored)
    and times the call; an unfinished ``<think>`` scores ``no_answer_score`` with error
    ``no_answer``.
    Verifiers that must see the raw text (for example the language-mixing detector)
    set ``needs_reasoning = True`` and get the whole completion.
    """

    name: ClassVar[str] = ""
    needs_reasoning: ClassVar[bool] = False
    # What a completion with no answer at all (a <think> that never closes) scores. It must
    # not beat the verifier's worst scored answer, or RL learns never to close <think>.
    no_answer_score: ClassVar[float] = 0.0

    def verify(self, completion: str, record: Mapping[str, Any]) -> VerifyResult:
        start = time.perf_counter()
        if self.needs_reasoning:
            result = self.check(completion, record)
        else:
            _reasoning, answer, finished = split_reasoning(completion)
            if not finished:
                result = VerifyResult(self.no_answer_score, False, error="no_answer: <think> never closed")
            else:
                result = self.check(answer, record)
        result.seconds = time.perf_counter() - start
        return result

    def check(self, answer: str, record: Mapping[str, Any]) -> VerifyResult:  # pragma: no cover
        raise NotImplementedError


_REGISTRY: dict[str, Callable[[], Verifier]] = {}


def register(name: str) -> Callable[[type[Verifier]], type[Verifier]]:
    """Class decorator: ``@register("math")`` makes ``get_verifier("math")`` build it."""

    def wrap(cls: type[Verifier]) -> type[Verifier]:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def get_verifier(name: str) -> Verifier:
    from cascade.verifiers import load_builtin  # registers the built-ins on first use

    load_builtin()
    try:
        return _REGISTRY[name]()
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "(none)"
        raise CascadeError(f"unknown verifier '{name}'; known verifiers: {known}") from None


def registered_names() -> list[str]:
    from cascade.verifiers import load_builtin

    load_builtin()
    return sorted(_REGISTRY)

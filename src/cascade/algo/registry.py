"""Choosing an algorithm variant by name: each variant family (loss aggregations, reward
shapings, group filters) is a dict from the name a recipe uses to a function, as verl's
``core_algos`` registers its estimators; the trainer looks the name up instead of branching."""

from __future__ import annotations

from typing import Mapping, TypeVar

F = TypeVar("F")


def pick(kind: str, registry: Mapping[str, F], name: str) -> F:
    """``registry[name]``; an unknown name is a one-line error listing the known ones."""
    if name not in registry:
        raise ValueError(f"unknown {kind} {name!r}; known: {', '.join(sorted(registry))}")
    return registry[name]

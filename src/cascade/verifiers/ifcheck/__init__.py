"""Instruction-following checkers: every IFEval and IFBench instruction, torch-free.

``evaluate(response, instruction_ids, kwargs, prompt)`` gives strict and loose verdicts per
instruction; ``CHECKERS`` maps each supported instruction id to its builder;
``parity`` re-scores the published official reference runs and lists every disagreement.

Deliberate departures from the official scorers (none changes a verdict on the reference
runs except the two random-letter rows listed in tests/test_if_parity.py):
- a missing or invalid argument, which the official builders replace with a random value,
  is an ``InstructionError``; a non-letter ``letter`` is counted as given;
- keywords and section splitters are matched literally, not as regular expressions;
- input the official code would crash on (no words, an empty CSV field) gives False;
- ``words:start_verb`` needs NLTK's POS tagger and yields no verdict without it.
"""

from __future__ import annotations

from cascade.verifiers.ifcheck import (  # noqa: F401  (registration)
    ifbench_format,
    ifbench_words,
    ifeval,
)
from cascade.verifiers.ifcheck.evaluate import Verdicts, evaluate, loose_variants
from cascade.verifiers.ifcheck.registry import CHECKERS, InstructionError, ResourceMissing

__all__ = [
    "CHECKERS",
    "InstructionError",
    "ResourceMissing",
    "Verdicts",
    "evaluate",
    "loose_variants",
]

"""``mcq``: multiple-choice answers (GPQA: A–D, MMLU-Pro: up to A–J, at most A–P).

Record:
- ``ground_truth``: the correct letter, ``"C"``, or ``{"answer": "C"}`` (an ``options``
  list may sit beside ``answer``).
- ``meta.options`` (or ``ground_truth.options``): the option texts in letter order. They
  fix which letters are valid (4 options: A–D) and allow matching an answer that
  restates an option's text. Without options every letter A–P is valid.

The choice is read from the answer (the text after ``</think>``) in this order, the
first rule that finds a valid letter wins:
1. the last ``\\boxed{X}`` (also ``\\boxed{\\text{X}}``, ``\\boxed{(X)}``, ``\\boxed{X. text}``);
2. the last ``Answer: X`` / ``the answer is (X)`` phrase (markdown bold tolerated);
3. the answer (or the boxed text) equals one option's text.
There is deliberately no "last capital letter anywhere" fallback: it guesses, and a
guess that happens to be right would be rewarded in RL.

``shuffle_choices`` reorders options deterministically per record and seed.
"""

from __future__ import annotations

import hashlib
import random
import re
import string
from typing import Any, Mapping, Sequence

from cascade.errors import CascadeError
from cascade.verifiers.base import Verifier, VerifyResult, register
from cascade.verifiers.extract import last_boxed

LETTERS = string.ascii_uppercase[:16]  # A–P

_TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|mathrm|mathbf|textrm)\s*\{([^{}]*)\}")
_BOXED_LETTER = re.compile(r"^\(?([A-P])\)?(?:[\s.:)]|$)")
_ANSWER_PHRASE = re.compile(
    r"(?i:answer)\s*(?:is|:)\s*[:\s]*(?:option\s*|choice\s*)?[*_\s]*\(?([A-P])\)?(?![A-Za-z])"
)
_ANSWER_PHRASE_BOLD_LABEL = re.compile(r"(?i:answer)\s*:?\*\*\s*:?\s*\(?([A-P])\)?(?![A-Za-z])")


def _normalise_option(text: str) -> str:
    text = _TEXT_WRAPPER.sub(r"\1", text)
    text = re.sub(r"[*_`$]", "", text).strip().rstrip(".").strip()
    return re.sub(r"\s+", " ", text).lower()


def _letter_in_box(content: str) -> str | None:
    content = _TEXT_WRAPPER.sub(r"\1", content).strip()
    match = _BOXED_LETTER.match(content)
    return match.group(1) if match else None


def _letter_in_phrases(answer: str, allowed: str) -> str | None:
    found = [
        (m.start(), m.group(1))
        for pattern in (_ANSWER_PHRASE, _ANSWER_PHRASE_BOLD_LABEL)
        for m in pattern.finditer(answer)
        if m.group(1) in allowed
    ]
    return max(found)[1] if found else None


def _letter_by_text(candidates: Sequence[str], options: Sequence[str], allowed: str) -> str | None:
    normalised = [_normalise_option(str(o)) for o in options]
    for candidate in candidates:
        text = _normalise_option(candidate)
        if text and text in normalised:
            return allowed[normalised.index(text)]
    return None


def extract_choice(answer: str, options: Sequence[str] | None) -> tuple[str | None, str]:
    """``(letter, rule)`` where rule names how it was found (``boxed``, ``phrase``, ``text``)."""
    allowed = LETTERS[: len(options)] if options else LETTERS
    boxed = last_boxed(answer)
    if boxed is not None:
        letter = _letter_in_box(boxed)
        if letter and letter in allowed:
            return letter, "boxed"
    letter = _letter_in_phrases(answer, allowed)
    if letter:
        return letter, "phrase"
    if options:
        letter = _letter_by_text([answer] + ([boxed] if boxed else []), options, allowed)
        if letter:
            return letter, "text"
    return None, "none"


def _expected(record: Mapping[str, Any]) -> tuple[str, list[str] | None]:
    truth = record.get("ground_truth")
    options = (record.get("meta") or {}).get("options")
    if isinstance(truth, Mapping):
        options = options or truth.get("options")
        truth = truth.get("answer")
    if not isinstance(truth, str) or len(truth.strip()) != 1 or truth.strip().upper() not in LETTERS:
        raise CascadeError(
            "the mcq verifier needs the correct letter (A–P), as \"C\" or {\"answer\": \"C\"}",
            field="ground_truth",
        )
    if options is not None and (
        not isinstance(options, list) or not 2 <= len(options) <= len(LETTERS)
    ):
        raise CascadeError("options must be a list of 2 to 16 option texts", field="meta.options")
    letter = truth.strip().upper()
    if options and LETTERS.index(letter) >= len(options):
        raise CascadeError(
            f"answer {letter} is beyond the {len(options)} options", field="ground_truth"
        )
    return letter, options


@register("mcq")
class MultipleChoiceVerifier(Verifier):
    def check(self, answer: str, record: Mapping[str, Any]) -> VerifyResult:
        expected, options = _expected(record)
        letter, rule = extract_choice(answer, options)
        details = {"extracted": letter, "rule": rule, "expected": expected}
        if letter is None:
            return VerifyResult(0.0, False, details, error="no_choice_found")
        return VerifyResult(float(letter == expected), letter == expected, details)


def shuffle_choices(
    options: Sequence[str], correct_index: int, *, record_id: str, seed: int
) -> tuple[list[str], int]:
    """Reorder ``options``; return them with the new index of the correct one.

    The order depends only on ``record_id`` and ``seed`` (sha256, not Python's salted
    ``hash``), so every process and every run agrees.
    """
    if not 0 <= correct_index < len(options):
        raise CascadeError(
            f"correct_index {correct_index} is outside the {len(options)} options",
            field="correct_index",
        )
    digest = hashlib.sha256(f"{record_id}\x00{seed}".encode()).digest()
    order = list(range(len(options)))
    random.Random(int.from_bytes(digest[:8], "big")).shuffle(order)
    return [options[i] for i in order], order.index(correct_index)

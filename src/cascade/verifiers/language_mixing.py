"""Language mixing (code-switching): words in a writing script the prompt does not use.

The paper penalises a response whose language drifts from the prompt's (paper sections 4.3, 4.5, 4.6)
but does not say how it detects it. Here the signal is the writing script, read from
code-point ranges (Latin, Greek, Cyrillic, Armenian, Hebrew, Arabic, the main Indic
scripts, Thai, Georgian, Hangul, Hiragana/Katakana, Han): cheap, deterministic and
without a language model.

Rules:
- The prompt's scripts are the scripts of its words (outside math and code). Japanese
  text may mix Han and kana, Korean may use Han; a prompt without letters counts as Latin.
- Latin words are accepted in any response: technical terms, names and identifiers are
  routinely Latin ("Python", "API") in non-Latin-script answers.
- Not counted at all: math (``$...$``, ``$$...$$``, ``\\(...\\)``, ``\\[...\\]``), code
  (fenced blocks and inline backticks), digits, punctuation, symbols, emoji, and single
  Greek letters used as symbols (``θ``, ``π``) anywhere.

``detect_language_mixing(prompt, response)`` is the plain function; the ``language_mixing``
verifier wraps it for records (score 1 = clean, 0 = mixed) and sees the whole completion,
reasoning included, because the paper's penalty applies to the trace as well.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from cascade.errors import CascadeError
from cascade.verifiers.base import Verifier, VerifyResult, register

_SCRIPT_RANGES: dict[str, str] = {
    "latin": "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff",
    "greek": "\u0370-\u03ff\u1f00-\u1fff",
    "cyrillic": "\u0400-\u052f",
    "armenian": "\u0531-\u058f",
    "hebrew": "\u05d0-\u05ff",
    "arabic": "\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff",
    "devanagari": "\u0900-\u097f",
    "bengali": "\u0980-\u09ff",
    "gurmukhi": "\u0a00-\u0a7f",
    "gujarati": "\u0a80-\u0aff",
    "tamil": "\u0b80-\u0bff",
    "telugu": "\u0c00-\u0c7f",
    "kannada": "\u0c80-\u0cff",
    "malayalam": "\u0d00-\u0d7f",
    "thai": "\u0e00-\u0e7f",
    "georgian": "\u10a0-\u10ff",
    "hangul": "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af",
    "kana": "\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f",
    "han": "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df",
}
_WORD = re.compile("|".join(f"(?P<{name}>[{chars}]+)" for name, chars in _SCRIPT_RANGES.items()))

# Scripts that one language writes together: a prompt in either implies the others.
_COMPANIONS = {"kana": {"han"}, "han": {"kana"}, "hangul": {"han"}}

_MATH_OR_CODE = re.compile(
    r"```.*?(?:```|\Z)"  # fenced code (an unclosed fence runs to the end)
    r"|`[^`\n]*`"  # inline code
    r"|\$\$.*?\$\$"
    r"|\$[^$\n]+\$"
    r"|\\\(.*?\\\)"
    r"|\\\[.*?\\\]",
    re.DOTALL,
)


@dataclass
class MixingReport:
    mixed: bool
    prompt_scripts: list[str]
    foreign_scripts: list[str]
    foreign_words: list[str] = field(default_factory=list)  # the first few offenders


def _words(text: str) -> list[tuple[str, str]]:
    """(script, word) for every run of letters outside math and code."""
    text = _MATH_OR_CODE.sub(" ", text)
    words = []
    for match in _WORD.finditer(text):
        script = match.lastgroup or ""
        if script == "greek" and len(match.group()) == 1:
            continue  # a lone Greek letter is a symbol (θ, π), not Greek
        words.append((script, match.group()))
    return words


def language_mixing_report(prompt: str, response: str, *, max_words: int = 10) -> MixingReport:
    prompt_scripts = {script for script, _ in _words(prompt)} or {"latin"}
    allowed = set(prompt_scripts) | {"latin"}
    for script in prompt_scripts:
        allowed |= _COMPANIONS.get(script, set())
    foreign = [(script, word) for script, word in _words(response) if script not in allowed]
    return MixingReport(
        mixed=bool(foreign),
        prompt_scripts=sorted(prompt_scripts),
        foreign_scripts=sorted({script for script, _ in foreign}),
        foreign_words=[word for _, word in foreign[:max_words]],
    )


def detect_language_mixing(prompt: str, response: str) -> bool:
    """True when ``response`` has words in a script that ``prompt`` does not use."""
    return language_mixing_report(prompt, response).mixed


def prompt_text(record: Mapping[str, Any]) -> str:
    """The user text of a record: ``prompt`` (a string) or the user turns of ``messages``."""
    if isinstance(record.get("prompt"), str):
        return record["prompt"]
    messages = record.get("messages")
    if isinstance(messages, list):
        return "\n".join(
            str(m.get("content") or "") for m in messages if isinstance(m, Mapping) and m.get("role") == "user"
        )
    raise CascadeError("the language_mixing verifier needs 'prompt' or 'messages'", field="prompt")


@register("language_mixing")
class LanguageMixingVerifier(Verifier):
    """Score 1 when the completion stays in the prompt's scripts, 0 when it mixes.

    ``ground_truth`` is not used (any value, e.g. ``null``).
    """

    needs_reasoning = True

    def check(self, answer: str, record: Mapping[str, Any]) -> VerifyResult:
        report = language_mixing_report(prompt_text(record), answer)
        details = {
            "prompt_scripts": report.prompt_scripts,
            "foreign_scripts": report.foreign_scripts,
            "foreign_words": report.foreign_words,
        }
        return VerifyResult(float(not report.mixed), not report.mixed, details)

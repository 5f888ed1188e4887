"""Relevance and factuality check for the toy world's general-chat eval set.

The toy world has no human judge, so its chat domain is scored by what the reward model was
trained to prefer: an answer that talks about the thing that was asked about (it names every
keyword of the ground truth: the thing and its kind) and, when the ground truth lists the
thing's ``facts``, states nothing else: every sentence of the answer is one of those facts.
The second part is the toy's hallucination check; without it an answer that names the thing
passes whatever else it claims, which the SFT models already do nearly always
(docs/measurements.md), leaving RLHF nothing to improve on the eval set.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from cascade.verifiers.base import Verifier, VerifyResult, register

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _normalise(sentence: str) -> str:
    return " ".join(sentence.lower().split())


def sentences(text: str) -> list[str]:
    """The answer's sentences, split after '.', '!' or '?' followed by whitespace."""
    return [s for s in (_normalise(part) for part in _SENTENCE_END.split(text.strip())) if s]


@register("toy_chat")
class ToyChatVerifier(Verifier):
    def check(self, answer: str, record: Mapping[str, Any]) -> VerifyResult:
        gt = record.get("ground_truth")
        if not isinstance(gt, Mapping) or not gt.get("keywords"):
            return VerifyResult(0.0, False, error="bad_ground_truth: expected {'keywords': [...]}")
        text = answer.lower()
        found = {k: re.search(rf"\b{re.escape(k.lower())}\b", text) is not None for k in gt["keywords"]}
        details: dict[str, Any] = {"keywords": found}
        ok = all(found.values())
        facts = gt.get("facts")
        if facts:
            known = {_normalise(f) for f in facts}
            unsupported = [s for s in sentences(answer) if s not in known]
            details["unsupported"] = unsupported
            ok = ok and not unsupported
        return VerifyResult(float(ok), ok, details=details)

"""Relevance check for the toy world's general-chat eval set.

The toy world has no human judge, so its chat domain is scored by what the reward model was
trained to prefer: an answer that talks about the thing that was asked about. The answer
passes when it names every keyword of the ground truth (the thing and its kind).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from cascade.verifiers.base import Verifier, VerifyResult, register


@register("toy_chat")
class ToyChatVerifier(Verifier):
    def check(self, answer: str, record: Mapping[str, Any]) -> VerifyResult:
        gt = record.get("ground_truth")
        if not isinstance(gt, Mapping) or not gt.get("keywords"):
            return VerifyResult(0.0, False, error="bad_ground_truth: expected {'keywords': [...]}")
        text = answer.lower()
        found = {k: re.search(rf"\b{re.escape(k.lower())}\b", text) is not None for k in gt["keywords"]}
        ok = all(found.values())
        return VerifyResult(float(ok), ok, details={"keywords": found})

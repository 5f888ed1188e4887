"""Split assignment that cannot leak.

A problem's split is a pure function of its canonical key (the text that defines it), not of
the order it was generated in. Two generators that produce the same problem put it in the
same split, so held-out eval prompts never appear in SFT or RL data, and (as in the paper)
SFT and RL prompts are disjoint too.
"""

from __future__ import annotations

import hashlib
from typing import Literal

Split = Literal["sft", "rl", "eval"]

# Per mille of distinct problems in each split: eval first, then RL, the rest SFT.
EVAL_PER_MILLE = 200
RL_PER_MILLE = 300


def assign_split(domain: str, key: str) -> Split:
    bucket = int.from_bytes(hashlib.sha256(f"{domain}\x00{key}".encode()).digest()[:4], "big") % 1000
    if bucket < EVAL_PER_MILLE:
        return "eval"
    if bucket < EVAL_PER_MILLE + RL_PER_MILLE:
        return "rl"
    return "sft"


def stable_id(domain: str, key: str) -> str:
    return f"toy-{domain}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"

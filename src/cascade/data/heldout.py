"""How many preference pairs the reward-model stage keeps out of training.

Torch-free, so `cascade run --dry-run` counts the reward model's steps exactly as its trainer
splits the pairs.
"""

from __future__ import annotations


def heldout_count(num_pairs: int, fraction: float) -> int:
    """Pairs held out: ``round(num_pairs * fraction)``, but at least one when ``fraction > 0``
    and at most ``num_pairs - 1``, so both sides are non-empty whenever there are two pairs."""
    count = round(num_pairs * fraction)
    if fraction > 0 and num_pairs >= 2:
        count = min(max(count, 1), num_pairs - 1)
    return count

"""Benchmark metrics over k samples per prompt (torch-free).

Conventions follow the model card's protocol (paper section 2 and Appendix B): pass@1 averaged over k
samples ("avg@k"), the unbiased pass@k estimator, majority voting over extracted answers,
and the standard error of the per-seed accuracies.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Hashable, Mapping, Sequence


def avg_at_k(passed: Mapping[str, Sequence[bool | float]]) -> float:
    """Mean over prompts of the mean score over that prompt's samples.

    Every prompt weighs the same even if some have fewer finished samples (a resumed run).
    """
    if not passed:
        return float("nan")
    return sum(sum(map(float, v)) / len(v) for v in passed.values() if v) / sum(1 for v in passed.values() if v)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one prompt with ``c`` correct out of ``n`` samples (Chen et al. 2021).

    1 - C(n - c, k) / C(n, k), computed as a running product for numerical stability.
    """
    if not 0 <= c <= n or k < 1 or k > n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def mean_pass_at_k(passed: Mapping[str, Sequence[bool]], k: int) -> float:
    values = [pass_at_k(len(v), sum(map(bool, v)), k) for v in passed.values() if len(v) >= k]
    return sum(values) / len(values) if values else float("nan")


def majority_correct(answers: Sequence[Hashable | None], passed: Sequence[bool]) -> bool:
    """Whether the most common extracted answer is a correct one.

    Samples with no answer (None) do not vote. Ties go to the answer seen first, which is
    the sample with the lowest seed, so the result is deterministic.
    """
    votes = Counter(a for a in answers if a is not None)
    if not votes:
        return False
    best = max(votes.values())
    winner = next(a for a in answers if a is not None and votes[a] == best)
    return any(ok for a, ok in zip(answers, passed) if a == winner)


def per_seed_accuracy(passed_by_seed: Mapping[int, Sequence[bool | float]]) -> dict[int, float]:
    return {s: sum(map(float, v)) / len(v) for s, v in passed_by_seed.items() if v}


def stderr_across_seeds(passed_by_seed: Mapping[int, Sequence[bool | float]]) -> float:
    """Standard error of the mean of per-seed accuracies (sample std, ddof=1); 0 for one seed."""
    accs = list(per_seed_accuracy(passed_by_seed).values())
    if len(accs) < 2:
        return 0.0
    mean = sum(accs) / len(accs)
    var = sum((a - mean) ** 2 for a in accs) / (len(accs) - 1)
    return math.sqrt(var / len(accs))


@dataclass(frozen=True)
class Summary:
    n_prompts: int
    k: int
    avg_at_k: float
    pass_at_k: float
    majority_at_k: float | None
    stderr: float


def summarize(
    samples: Sequence[Mapping[str, object]],
    *,
    k: int,
) -> Summary:
    """Summarise scored samples: each has ``id``, ``seed``, ``passed`` and optionally ``answer``."""
    by_prompt: dict[str, list[bool]] = {}
    answers: dict[str, list[Hashable | None]] = {}
    by_seed: dict[int, list[bool]] = {}
    for s in sorted(samples, key=lambda s: (str(s["id"]), int(s["seed"]))):
        pid, ok = str(s["id"]), bool(s["passed"])
        by_prompt.setdefault(pid, []).append(ok)
        answers.setdefault(pid, []).append(s.get("answer"))  # type: ignore[arg-type]
        by_seed.setdefault(int(s["seed"]), []).append(ok)
    has_answers = any(a is not None for v in answers.values() for a in v)
    majority = None
    if has_answers:
        majority = sum(majority_correct(answers[p], by_prompt[p]) for p in by_prompt) / len(by_prompt)
    return Summary(
        n_prompts=len(by_prompt),
        k=k,
        avg_at_k=avg_at_k(by_prompt),
        pass_at_k=mean_pass_at_k(by_prompt, k),
        majority_at_k=majority,
        stderr=stderr_across_seeds(by_seed),
    )

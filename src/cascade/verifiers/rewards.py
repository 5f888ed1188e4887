"""The paper's stage rewards (notes section 5), as pure functions over a batch of rollouts.

Every stage reward has the same keyword-only signature, so a trainer can look one up in
``STAGE_REWARDS`` and call it without knowing the stage:

    reward(*, verifier=None, rm_scores=None, language_mixing=None, group_ids=None) -> list[float]

- ``verifier``: one verifier outcome per rollout, a ``VerifyResult`` or a float score.
  Binary stages read a VerifyResult's ``passed`` and take a float as the 1/0 score.
- ``rm_scores``: one reward-model score per rollout (the final answer only; see
  ``cascade.verifiers.reward_model``).
- ``language_mixing``: one flag per rollout (``detect_language_mixing`` over trace + answer).
- ``group_ids``: the prompt each rollout answers; rollouts with equal ids form a GRPO
  group (G rollouts of one prompt). None means the whole batch is one group.

A stage raises ValueError when an input it needs is missing or the lengths differ.

| stage        | reward |
|--------------|--------|
| rlhf         | RM score; language mixing: (lowest RM score in the batch) - 10 |
| if           | binary verifier (unified / instruct-mode IF-RL) |
| if_thinking  | 1 + sigmoid(z) when all constraints hold, else 0; z = RM score z-scored in its group |
| math         | 1/0; language mixing: -1 |
| code         | 1/0; language mixing: 0 |
| swe          | the swe verifier's score in [-1, 1] |

The z-score uses the population standard deviation of the group (GRPO's group
statistics); a group whose RM scores are all equal gets z = 0.
"""

from __future__ import annotations

import math
from typing import Callable, Hashable, Sequence, Union

from cascade.verifiers.base import VerifyResult

Outcome = Union[VerifyResult, float]
StageReward = Callable[..., list[float]]


def _need(name: str, values: Sequence | None, size: int | None = None) -> Sequence:
    if values is None:
        raise ValueError(f"this stage reward needs '{name}'")
    if size is not None and len(values) != size:
        raise ValueError(f"'{name}' has {len(values)} entries, expected {size} (one per rollout)")
    return values


def _binary(outcome: Outcome) -> float:
    if isinstance(outcome, VerifyResult):
        return 1.0 if outcome.passed else 0.0
    return float(outcome)


def _score(outcome: Outcome) -> float:
    return outcome.score if isinstance(outcome, VerifyResult) else float(outcome)


def _mixing(language_mixing: Sequence[bool] | None, size: int) -> Sequence[bool]:
    return [False] * size if language_mixing is None else _need("language_mixing", language_mixing, size)


def rlhf_reward(
    *,
    verifier: Sequence[Outcome] | None = None,
    rm_scores: Sequence[float] | None = None,
    language_mixing: Sequence[bool] | None = None,
    group_ids: Sequence[Hashable] | None = None,
) -> list[float]:
    scores = [float(s) for s in _need("rm_scores", rm_scores)]
    mixed = _mixing(language_mixing, len(scores))
    floor = min(scores, default=0.0) - 10.0
    return [floor if m else s for s, m in zip(scores, mixed)]


def if_reward(
    *,
    verifier: Sequence[Outcome] | None = None,
    rm_scores: Sequence[float] | None = None,
    language_mixing: Sequence[bool] | None = None,
    group_ids: Sequence[Hashable] | None = None,
) -> list[float]:
    return [_binary(o) for o in _need("verifier", verifier)]


def group_z_scores(values: Sequence[float], group_ids: Sequence[Hashable] | None) -> list[float]:
    """Each value z-scored within its group (population std; std 0 gives 0)."""
    ids = list(group_ids) if group_ids is not None else [0] * len(values)
    _need("group_ids", ids, len(values))
    members: dict[Hashable, list[float]] = {}
    for gid, value in zip(ids, values):
        members.setdefault(gid, []).append(float(value))
    stats = {}
    for gid, group in members.items():
        mean = sum(group) / len(group)
        std = math.sqrt(sum((v - mean) ** 2 for v in group) / len(group))
        stats[gid] = (mean, std)
    return [0.0 if stats[g][1] == 0 else (v - stats[g][0]) / stats[g][1] for g, v in zip(ids, values)]


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def if_thinking_reward(
    *,
    verifier: Sequence[Outcome] | None = None,
    rm_scores: Sequence[float] | None = None,
    language_mixing: Sequence[bool] | None = None,
    group_ids: Sequence[Hashable] | None = None,
) -> list[float]:
    passed = [_binary(o) for o in _need("verifier", verifier)]
    z = group_z_scores(_need("rm_scores", rm_scores, len(passed)), group_ids)
    return [1.0 + _sigmoid(zi) if p == 1.0 else 0.0 for p, zi in zip(passed, z)]


def math_reward(
    *,
    verifier: Sequence[Outcome] | None = None,
    rm_scores: Sequence[float] | None = None,
    language_mixing: Sequence[bool] | None = None,
    group_ids: Sequence[Hashable] | None = None,
) -> list[float]:
    passed = [_binary(o) for o in _need("verifier", verifier)]
    return [-1.0 if m else p for p, m in zip(passed, _mixing(language_mixing, len(passed)))]


def code_reward(
    *,
    verifier: Sequence[Outcome] | None = None,
    rm_scores: Sequence[float] | None = None,
    language_mixing: Sequence[bool] | None = None,
    group_ids: Sequence[Hashable] | None = None,
) -> list[float]:
    passed = [_binary(o) for o in _need("verifier", verifier)]
    return [0.0 if m else p for p, m in zip(passed, _mixing(language_mixing, len(passed)))]


def swe_reward(
    *,
    verifier: Sequence[Outcome] | None = None,
    rm_scores: Sequence[float] | None = None,
    language_mixing: Sequence[bool] | None = None,
    group_ids: Sequence[Hashable] | None = None,
) -> list[float]:
    return [_score(o) for o in _need("verifier", verifier)]


# The reward a truncated rollout gets when a stage does not filter overlong responses: the
# stage's failure score. 0 for the paper's 0/1 rewards (and its RLHF, which never truncates
# on purpose); -1 for SWE, where a cut-off reply holds no parseable patch (Eq. 2: -1), and
# where 0 would pay better than a wrong edit and teach the policy to run out of tokens.
TRUNCATED_REWARD: dict[str, float] = {"swe": -1.0}


def truncated_reward(stage: str | None) -> float:
    return TRUNCATED_REWARD.get(stage or "", 0.0)


STAGE_REWARDS: dict[str, StageReward] = {
    "rlhf": rlhf_reward,
    "if": if_reward,
    "if_thinking": if_thinking_reward,
    "math": math_reward,
    "code": code_reward,
    "swe": swe_reward,
}

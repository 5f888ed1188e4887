"""The paper's stage rewards (sections 4.3-4.7), as pure functions over a batch of rollouts.

Every stage reward has the same keyword-only signature, so a trainer can look one up in
``STAGE_REWARDS`` and call it without knowing the stage:

    reward(*, verifier=None, rm_scores=None, language_mixing=None, group_ids=None) -> list[float]

- ``verifier``: one verifier outcome per rollout, a ``VerifyResult`` or a float score.
  Binary stages read a VerifyResult's ``passed`` and take a float as the 1/0 score.
- ``rm_scores``: one reward-model score per rollout (the final answer only; see
  ``cascade.engine.reward_scorer``).
- ``language_mixing``: one flag per rollout (``detect_language_mixing`` over trace + answer).
- ``group_ids``: the prompt each rollout answers; rollouts with equal ids form a GRPO
  group (G rollouts of one prompt). None means the whole batch is one group.

A stage raises ValueError when an input it needs is missing or the lengths differ.

| stage        | reward |
|--------------|--------|
| rlhf         | RM score (of the unfinished text too); language mixing: (lowest RM score in the batch) - 10 |
| if           | binary verifier (unified / instruct-mode IF-RL) |
| if_thinking  | 1 + sigmoid(z) when all constraints hold, else 0; z = RM score z-scored in its group |
| math         | 1/0; language mixing: -1 |
| code         | 1/0; language mixing: 0 |
| swe          | the swe verifier's score in [-1, 1] |

A reply cut off at the response budget: ``TRUNCATED_REPLY`` below, one entry per stage.

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


# How each stage reward treats a reply cut off at the response budget, when the stage does not
# filter overlong replies (with ``overlong_filter`` on, a truncated reply is masked from the
# loss in every stage). One entry per stage, the only place this is decided: a number replaces
# the reply's reward; ``SCORED`` keeps the reward computed from the unfinished text.
SCORED = None
TRUNCATED_REPLY: dict[str, float | None] = {
    # Paper section 4.3: RLHF has no overlong filter; the reward model scores the unfinished
    # text (the whole text when </think> never came), an implicit length penalty. A fixed 0
    # could be a bonus on the RM's scale.
    "rlhf": SCORED,
    # The paper's "truncated -> 0" (section 4.5.2) for its 0/1 rewards: the failure score.
    "if": 0.0,
    "if_thinking": 0.0,
    "math": 0.0,
    "code": 0.0,
    # Eq. 2: a cut-off reply holds no parseable patch, -1; 0 would pay better than a wrong
    # edit and teach the policy to run out of tokens.
    "swe": -1.0,
}
# Stages scored by each record's own verifier (no stage reward named): the 0/1 failure score.
TRUNCATED_VERIFIER_REPLY = 0.0


def truncated_reward(stage: str | None) -> float | None:
    """The reward of a truncated reply in ``stage`` (None: the reward scored on its text)."""
    if stage in TRUNCATED_REPLY:
        return TRUNCATED_REPLY[stage]
    return TRUNCATED_VERIFIER_REPLY


STAGE_REWARDS: dict[str, StageReward] = {
    "rlhf": rlhf_reward,
    "if": if_reward,
    "if_thinking": if_thinking_reward,
    "math": math_reward,
    "code": code_reward,
    "swe": swe_reward,
}

"""The paper's stage rewards (sections 4.3-4.7), as pure functions over a batch of rollouts.

Every stage reward takes one ``RewardInputs`` (what was gathered for the batch) and returns
one reward per rollout, so a trainer can call any of them without knowing the stage. Which
inputs a stage reads, and every other fact about it, is its entry in
``cascade.verifiers.stage_rewards.STAGE_REWARDS``.

| stage        | reward |
|--------------|--------|
| rlhf         | RM score (of the unfinished text too); language mixing: (lowest RM score in the batch) - 10 |
| if           | binary verifier (unified / instruct-mode IF-RL) |
| if_thinking  | 1 + sigmoid(z) when all constraints hold, else 0; z = RM score z-scored in its group |
| math         | 1/0; language mixing: -1 |
| code         | 1/0; language mixing: 0 |
| swe          | the swe verifier's score in [-1, 1] |

A stage raises ValueError when an input it needs is missing or the lengths differ.

The z-score uses the population standard deviation of the group (GRPO's group
statistics); a group whose RM scores are all equal gets z = 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Hashable, Sequence, Union

from cascade.verifiers.base import VerifyResult

# One verifier verdict: a VerifyResult, or a bare score (binary stages read a float as 1/0).
VerifierScore = Union[VerifyResult, float]


@dataclass(frozen=True)
class RewardInputs:
    """What a stage reward reads for a batch of rollouts; each field has one entry per rollout.

    - ``verifier``: the verifier's verdict on each rollout.
    - ``rm_scores``: one reward-model score per rollout (the final answer only; see
      ``cascade.engine.reward_scorer``).
    - ``language_mixing``: one flag per rollout (``detect_language_mixing`` over trace + answer).
    - ``group_ids``: the prompt each rollout answers; rollouts with equal ids form a GRPO
      group (G rollouts of one prompt). None means the whole batch is one group.
    """

    verifier: Sequence[VerifierScore] | None = None
    rm_scores: Sequence[float] | None = None
    language_mixing: Sequence[bool] | None = None
    group_ids: Sequence[Hashable] | None = None


StageRewardFn = Callable[[RewardInputs], list[float]]


def _need(name: str, values: Sequence | None, size: int | None = None) -> Sequence:
    if values is None:
        raise ValueError(f"this stage reward needs '{name}'")
    if size is not None and len(values) != size:
        raise ValueError(f"'{name}' has {len(values)} entries, expected {size} (one per rollout)")
    return values


def _binary(outcome: VerifierScore) -> float:
    if isinstance(outcome, VerifyResult):
        return 1.0 if outcome.passed else 0.0
    return float(outcome)


def _score(outcome: VerifierScore) -> float:
    return outcome.score if isinstance(outcome, VerifyResult) else float(outcome)


def _mixing(language_mixing: Sequence[bool] | None, size: int) -> Sequence[bool]:
    return [False] * size if language_mixing is None else _need("language_mixing", language_mixing, size)


def rlhf_reward(inputs: RewardInputs) -> list[float]:
    """The reward-model score; a mixed-language reply gets the batch's lowest score - 10."""
    scores = [float(s) for s in _need("rm_scores", inputs.rm_scores)]
    mixed = _mixing(inputs.language_mixing, len(scores))
    floor = min(scores, default=0.0) - 10.0
    return [floor if m else s for s, m in zip(scores, mixed)]


def if_reward(inputs: RewardInputs) -> list[float]:
    """1 when every instruction holds, else 0."""
    return [_binary(o) for o in _need("verifier", inputs.verifier)]


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


def if_thinking_reward(inputs: RewardInputs) -> list[float]:
    """1 + sigmoid(group z-score of the RM score) when every instruction holds, else 0."""
    passed = [_binary(o) for o in _need("verifier", inputs.verifier)]
    z = group_z_scores(_need("rm_scores", inputs.rm_scores, len(passed)), inputs.group_ids)
    return [1.0 + _sigmoid(zi) if p == 1.0 else 0.0 for p, zi in zip(passed, z)]


def math_reward(inputs: RewardInputs) -> list[float]:
    """1/0 by the verifier; a mixed-language reply gets -1."""
    passed = [_binary(o) for o in _need("verifier", inputs.verifier)]
    return [-1.0 if m else p for p, m in zip(passed, _mixing(inputs.language_mixing, len(passed)))]


def code_reward(inputs: RewardInputs) -> list[float]:
    """1/0 by the verifier; a mixed-language reply gets 0."""
    passed = [_binary(o) for o in _need("verifier", inputs.verifier)]
    return [0.0 if m else p for p, m in zip(passed, _mixing(inputs.language_mixing, len(passed)))]


def swe_reward(inputs: RewardInputs) -> list[float]:
    """The swe verifier's score in [-1, 1]."""
    return [_score(o) for o in _need("verifier", inputs.verifier)]

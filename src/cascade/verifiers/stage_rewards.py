"""The table of stage rewards: every fact about a recipe's ``reward:`` names, in one place.

Each entry says, for one stage reward (paper sections 4.3-4.7): the function that turns the
gathered inputs into rewards (``cascade.verifiers.rewards``), which inputs it needs (the
record's verifier, a reward model, a judge model for part of the replies), how it penalises a
reply that mixes languages, over how many rollouts it is computed, what a reply cut off at
the response budget gets, and which eval domain measures the stage.

Readers: the recipe validation (``cascade.config.recipe``: a reward model or judge is set),
the local trainer (``cascade.trainers.rollout.stage_reward_fn`` gathers the inputs,
``cascade.trainers.grpo`` scores a truncated reply and keeps a batch-wide reward in one
scoring call), the runner (the stage's own eval domain) and the verl adapter
(``cascade.cluster.verl_reward``: per-rollout or batch step, ``verl_config``: its gaps).
Adding a stage reward is one entry here plus its function in ``rewards.py``.

Torch-free, and it imports nothing above the verifiers package, so the config layer can
read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cascade.errors import CascadeError
from cascade.verifiers.rewards import (
    StageRewardFn,
    code_reward,
    if_reward,
    if_thinking_reward,
    math_reward,
    rlhf_reward,
    swe_reward,
)

# A truncated reply keeps the reward computed from its unfinished text.
SCORED = None
# Over how many rollouts a reward is computed: each alone, its prompt's group, or the batch.
Scope = Literal["rollout", "group", "batch"]


@dataclass(frozen=True)
class StageReward:
    """One stage reward's facts (see the module docstring)."""

    reward: StageRewardFn
    domain: str  # the eval domain that measures the stage (the report's claim (a))
    reads_verifier: bool  # runs each record's own verifier
    reward_model: bool  # needs a reward model's scores
    judge: bool  # scores part of its replies with a judge model (or its lexical stand-in)
    language_mixing: str | None  # what a mixed-language reply gets; None: not checked
    scope: Scope
    # A reply cut off at the response budget when the stage does not mask overlong replies
    # (with ``overlong_filter`` on, a truncated reply is masked from the loss in every stage):
    # a number replaces its reward; SCORED keeps the reward of the unfinished text.
    truncated: float | None


STAGE_REWARDS: dict[str, StageReward] = {
    # Section 4.3: no overlong filter; the RM scores the unfinished text (the whole text when
    # </think> never came), an implicit length penalty. A fixed 0 could be a bonus on the
    # RM's scale. The mixing floor is the batch minimum, so the batch is scored at once.
    "rlhf": StageReward(rlhf_reward, domain="chat", reads_verifier=False, reward_model=True, judge=False,
                        language_mixing="lowest RM score in the batch - 10", scope="batch", truncated=SCORED),
    # The paper's "truncated -> 0" (section 4.5.2) for its 0/1 rewards: the failure score.
    "if": StageReward(if_reward, domain="if", reads_verifier=True, reward_model=False, judge=False,
                      language_mixing=None, scope="rollout", truncated=0.0),
    # The RM score is z-scored within its prompt's group.
    "if_thinking": StageReward(if_thinking_reward, domain="if", reads_verifier=True, reward_model=True, judge=False,
                               language_mixing=None, scope="group", truncated=0.0),
    "math": StageReward(math_reward, domain="math", reads_verifier=True, reward_model=False, judge=False,
                        language_mixing="-1", scope="rollout", truncated=0.0),
    "code": StageReward(code_reward, domain="code", reads_verifier=True, reward_model=False, judge=False,
                        language_mixing="0", scope="rollout", truncated=0.0),
    # Eq. 2: a cut-off reply holds no parseable patch, -1; 0 would pay better than a wrong
    # edit and teach the policy to run out of tokens.
    "swe": StageReward(swe_reward, domain="swe", reads_verifier=True, reward_model=False, judge=True,
                       language_mixing=None, scope="rollout", truncated=-1.0),
}

# Stages scored by each record's own verifier (no stage reward named): the 0/1 failure score.
TRUNCATED_VERIFIER_REPLY = 0.0


def stage_reward(name: str) -> StageReward:
    """The table entry of stage reward ``name``; an unknown name is a one-line error
    listing the known ones."""
    if name not in STAGE_REWARDS:
        raise CascadeError(f"unknown stage reward {name!r}; known: {', '.join(sorted(STAGE_REWARDS))}",
                           field="reward")
    return STAGE_REWARDS[name]


def truncated_reward(stage: str | None) -> float | None:
    """The reward of a truncated reply in ``stage`` (None: the reward scored on its text)."""
    if stage in STAGE_REWARDS:
        return STAGE_REWARDS[stage].truncated
    return TRUNCATED_VERIFIER_REPLY


def rewards_needing(fact: Literal["reward_model", "judge", "reads_verifier"]) -> tuple[str, ...]:
    """The stage rewards whose entry sets ``fact``, in table order."""
    return tuple(name for name, entry in STAGE_REWARDS.items() if getattr(entry, fact))

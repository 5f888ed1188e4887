"""cascade's reward manager for verl 0.9.1: the batch-level stage rewards (``rlhf``, ``if_thinking``).

verl's reward loop scores each rollout on its own (``run_single``, which calls our hook
``cascade.cluster.verl_reward.compute_score``), then gathers the whole batch and turns the
per-rollout scores into the ``rm_scores`` tensor with the manager class's
``assemble_rm_scores(data, scores)``. That gathering step is the first place that sees the batch,
so the batch step of the paper's rewards happens there:

- ``rlhf``: RM score; a rollout with language mixing gets the batch's minimum RM score - 10;
- ``if_thinking``: 1 + sigmoid(RM score z-scored within its GRPO group) when every constraint
  holds, else 0; the group is verl's ``uid`` (one per prompt; its ``n`` rollouts share it).

Both come from ``cascade.verifiers.rewards`` (the local trainer's functions), so the two paths
cannot drift apart. Per-sample rewards pass through unchanged. verl uses this class when the
stage's overrides name it (``reward.reward_manager.source=importlib``); it imports verl, so it
is loaded on the cluster only. Batch assembly runs when the reward model shares the actor's
GPUs (``reward.reward_model.enable_resource_pool=false``, what the overrides set): with a separate
RM pool verl scores during generation and never assembles a batch.
"""

from __future__ import annotations

from typing import Any

from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager

from cascade.cluster.verl_reward import is_batch_reward
from cascade.verifiers.rewards import RewardInputs
from cascade.verifiers.stage_rewards import STAGE_REWARDS


class CascadeRewardManager(NaiveRewardManager):
    """verl's naive manager, plus the batch step of cascade's batch-level stage rewards."""

    async def run_single(self, data: Any) -> dict:
        out = await super().run_single(data)
        reward = str(data[-1:][0].non_tensor_batch.get("extra_info", {}).get("reward") or "")
        if is_batch_reward(reward):
            info = out["reward_extra_info"]
            # Carried to assemble_rm_scores as a tuple: the batch step needs all three parts.
            out["reward_score"] = (reward, float(info["rm_score"]), bool(info["language_mixing"]), float(info["acc"]))
        return out

    @classmethod
    def assemble_rm_scores(cls, data: Any, scores: list) -> Any:
        return super().assemble_rm_scores(data, batch_rewards(data, scores))


def _group_ids(data: Any) -> list[Any]:
    if "uid" in data.non_tensor_batch:
        return list(data.non_tensor_batch["uid"])
    # No uid (a batch built outside verl's trainer): rows of one prompt share the exported index.
    return [info.get("index") for info in data.non_tensor_batch["extra_info"]]


def batch_rewards(data: Any, scores: list) -> list[float]:
    """Final rewards: per-sample scores as they are; batch-level parts combined over the batch."""
    parts = [(i, s) for i, s in enumerate(scores) if isinstance(s, tuple)]
    out = [float(s) if not isinstance(s, tuple) else 0.0 for s in scores]
    if not parts:
        return out
    groups = _group_ids(data)
    for reward in {s[0] for _i, s in parts}:
        rows = [(i, s) for i, s in parts if s[0] == reward]
        values = STAGE_REWARDS[reward].reward(RewardInputs(
            rm_scores=[s[1] for _i, s in rows],
            language_mixing=[s[2] for _i, s in rows],
            verifier=[s[3] for _i, s in rows],
            group_ids=[groups[i] for i, _s in rows],
        ))
        for (i, _s), value in zip(rows, values):
            out[i] = float(value)
    return out

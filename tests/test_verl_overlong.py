"""Overlong masking (``overlong_filter: true``) on verl 0.9.1 (cascade.cluster.verl_overlong).

Without verl: which phases get the estimator and our replay buffer, with what settings. With verl:
the phase's overrides composed by verl's Hydra config; the replay buffer built by verl's own
trainer code (``PPOTrainer._build_replay_buffer``) with the arguments verl gives its built-in
one; verl's ``compute_advantage`` with the composed algorithm config gives the local trainer's
advantages (``apply_overlong`` + ``group_advantages``) and zeroes the truncated rows of
``response_mask``; the V1 trainer's ``_compute_advantage`` writes that mask back for the actor.
"""

from __future__ import annotations

import types

import numpy as np
import pytest

from cascade.cluster import hydra_args, stage_phases, stage_to_verl_overrides, verl_gaps
from cascade.config import load_recipe

JUDGE = "stages.swe-rl.judge.base_url=http://judge.cluster:8001/v1"


def _overrides(recipe, stage_name, substage, nnodes=2):
    return stage_to_verl_overrides(recipe.stage(stage_name), recipe, n_gpus_per_node=8, nnodes=nnodes,
                                   model_path="/m", data_files=["/d.parquet"], substage=substage)


@pytest.mark.parametrize("recipe_name", ["nemotron-cascade-8b", "nemotron-cascade-8b-thinking"])
def test_overlong_phases_get_the_estimator_and_their_budget(recipe_name):
    recipe = load_recipe(recipe_name, [JUDGE])
    seen = []
    for stage in recipe.stages:
        if stage.kind != "grpo":
            continue
        for phase in stage_phases(stage):
            o = _overrides(recipe, stage.name, phase.substage)
            knobs = stage.substage_knobs(phase.substage)
            if not knobs.overlong_filter:
                assert o["algorithm.adv_estimator"] == "grpo" and "overlong" not in o.get(
                    "trainer.v1.sampler.sampler_kwargs", {})
                # only an epoch-filtered stage has a custom replay buffer there (tests/test_verl_epoch_filter.py)
                assert ("trainer.v1.sampler.custom_sampler.path" in o) == stage.epoch_filter
                continue
            seen.append(phase.name)
            assert o["algorithm.adv_estimator"] == "cascade_grpo"
            # an epoch-filtered stage's buffer is the subclass that also reports outcomes
            module, name = (("verl_epoch_filter", "EpochFilterReplayBuffer") if stage.epoch_filter
                            else ("verl_overlong", "CascadeReplayBuffer"))
            assert o["trainer.v1.sampler.custom_sampler.path"] == f"pkg://cascade.cluster.{module}"
            assert o["trainer.v1.sampler.custom_sampler.name"] == name
            kwargs = o["trainer.v1.sampler.sampler_kwargs"]
            assert kwargs["overlong"] == {"max_response_length": knobs.max_response_len, "eps": stage.adv_eps}
            # verl filters groups only where it has the reward when it samples (not behind a colocated RM)
            dapo = stage.dynamic_filter and stage.reward not in ("rlhf", "if_thinking")
            builtin = {"train_batch_size": stage.batch_size, "gen_batch_size": 1 if dapo else stage.batch_size,
                       "max_inflight_gen_batches": 1, "sync_refill_failed_groups": False}
            if dapo:
                builtin["filter_groups_metric"] = "reward"
            assert kwargs["builtin"] == builtin
            assert o["actor_rollout_ref.rollout.calculate_log_probs"] is True
            assert any("get no advantage" in g for g in verl_gaps(stage, phase.substage))
    # the paper's overlong-filtered phases: math compress, SWE ctx16k (and the thinking model's IF-RL)
    assert {"math-rl.compress", "swe-rl.ctx16k"} <= set(seen)


# ---------------------------------------------------------------- through verl's own code


@pytest.fixture(scope="module")
def verl():
    """verl's V1 trainer code: needs verl with its own `verl-core` extra (TransferQueue) and the
    serving packages its rollout imports (fastapi, uvicorn, cachetools): cascade's `verl-core` extra."""
    pytest.importorskip("hydra")
    verl = pytest.importorskip("verl", reason="verl is not installed (pip install -e '.[verl-core]')")
    pytest.importorskip("verl.trainer.ppo.v1", reason="verl's V1 trainer does not import here (it needs "
                        "TransferQueue, fastapi, uvicorn and cachetools: pip install -e '.[verl-core]')")
    return verl


def _compose(overrides):
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        return compose(config_name="ppo_trainer", overrides=hydra_args(overrides))


def _replay_buffer(cfg):
    """The replay buffer exactly as verl's trainer builds it (its own method, on a stand-in self)."""
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    trainer = types.SimpleNamespace(config=cfg, trainer_mode=cfg.trainer.v1.trainer_mode,
                                    _add_prompts_to_generate=lambda n: n)
    trainer._resolve_filter_groups_metric = types.MethodType(PPOTrainer._resolve_filter_groups_metric, trainer)
    return PPOTrainer._build_replay_buffer(trainer)


@pytest.mark.parametrize("recipe_name", ["nemotron-cascade-8b", "nemotron-cascade-8b-thinking"])
def test_every_grpo_job_builds_its_replay_buffer_in_verls_trainer(verl, recipe_name):
    """verl's trainer builds each job's replay buffer at start-up, where it also checks that
    group filtering can read the reward when it samples: every phase of both paper recipes
    passes, and an overlong-filtered phase gets ours, with the arguments verl gives its own."""
    from cascade.cluster import verl_overlong

    recipe = load_recipe(recipe_name, [JUDGE])
    overlong = 0
    for stage in recipe.stages:
        if stage.kind != "grpo":
            continue
        for phase in stage_phases(stage):
            overrides = _overrides(recipe, stage.name, phase.substage)
            ours = _replay_buffer(_compose(overrides))
            if not stage.substage_knobs(phase.substage).overlong_filter:
                assert type(ours).__name__ == ("EpochFilterReplayBuffer" if stage.epoch_filter else "ReplayBuffer")
                continue
            overlong += 1
            assert isinstance(ours, verl_overlong.CascadeReplayBuffer)
            builtin = {k: v for k, v in overrides.items() if not k.startswith("trainer.v1.sampler.custom_sampler")}
            theirs = _replay_buffer(_compose(builtin))
            assert type(theirs).__name__ == "ReplayBuffer"
            for name in ("trainer_mode", "filter_groups_metric", "train_batch_size", "gen_batch_size",
                         "max_inflight_gen_batches", "sync_refill_failed_groups", "max_off_policy_threshold"):
                assert getattr(ours, name) == getattr(theirs, name), (phase.name, name)
            knobs = stage.substage_knobs(phase.substage)
            assert verl_overlong.SETTINGS == {"max_response_length": knobs.max_response_len, "eps": stage.adv_eps}
    assert overlong >= 2


def _batch(rewards, lengths, uids, budget):
    """A verl batch: per-token rewards at each response's last token, right-padded masks."""
    import torch
    from verl import DataProto

    width = max(lengths)
    mask = torch.zeros((len(rewards), width), dtype=torch.long)
    scores = torch.zeros((len(rewards), width))
    for i, (r, n) in enumerate(zip(rewards, lengths)):
        mask[i, :n] = 1
        scores[i, n - 1] = r
    data = DataProto.from_dict(tensors={"token_level_rewards": scores, "response_mask": mask},
                               non_tensors={"uid": np.array(uids, dtype=object)})
    return data


# Two groups of 4 interleaved (verl balances batches); budget 6 tokens: rows 1, 4 and 6 are cut.
REWARDS = [1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0]
LENGTHS = [3, 6, 4, 2, 6, 5, 6, 5]
UIDS = ["a", "b", "a", "b", "a", "b", "a", "b"]
BUDGET = 6


def _local_advantages(eps):
    """The local trainer's path: apply_overlong (filter on), then group_advantages over each group."""
    from cascade.algo.advantages import group_advantages
    from cascade.algo.filters import apply_overlong

    reasons = ["length" if n >= BUDGET else "stop" for n in LENGTHS]
    rewards, valid = apply_overlong(REWARDS, reasons, overlong_filter=True)
    out = np.zeros(len(REWARDS))
    for uid in ("a", "b"):
        rows = [i for i, u in enumerate(UIDS) if u == uid]
        out[rows] = group_advantages([rewards[i] for i in rows], len(rows), eps=eps, valid=[valid[i] for i in rows]).advantages
    return out, valid


def test_verls_compute_advantage_masks_truncated_responses_as_locally(verl):
    import torch
    from verl.trainer.ppo.ray_trainer import compute_advantage

    recipe = load_recipe("nemotron-cascade-8b")
    overrides = _overrides(recipe, "math-rl", "compress")
    overrides["trainer.v1.sampler.sampler_kwargs"]["overlong"]["max_response_length"] = BUDGET
    cfg = _compose(overrides)
    _replay_buffer(cfg)  # registers the estimator with the phase's budget, as in verl's trainer
    data = compute_advantage(_batch(REWARDS, LENGTHS, UIDS, BUDGET), adv_estimator=cfg.algorithm.adv_estimator,
                             num_repeat=8, norm_adv_by_std_in_grpo=True, config=cfg.algorithm)
    expected, valid = _local_advantages(recipe.stage("math-rl").adv_eps)
    assert valid == [True, False, True, True, False, True, False, True]
    mask = data.batch["response_mask"]
    assert mask.sum(dim=1).tolist() == [n if ok else 0 for n, ok in zip(LENGTHS, valid)]  # cut rows leave the loss
    per_row = data.batch["advantages"].sum(dim=1) / torch.clamp(mask.sum(dim=1), min=1)
    assert per_row.tolist() == pytest.approx(expected.tolist(), abs=1e-6)
    assert (data.batch["advantages"][~mask.bool()] == 0).all()
    # group a: valid rewards 1, 0 -> +-1 (population std 0.5); group b: valid 1, 0, 1 -> z-scores
    assert expected[[0, 2]].tolist() == pytest.approx([1.0, -1.0], abs=1e-5)
    # verl's own grpo on the same batch trains on the cut rows: the difference the estimator removes
    plain = compute_advantage(_batch(REWARDS, LENGTHS, UIDS, BUDGET), adv_estimator="grpo", num_repeat=8,
                              norm_adv_by_std_in_grpo=True, config=cfg.algorithm)
    assert plain.batch["response_mask"].sum().item() == sum(LENGTHS)
    assert plain.batch["advantages"][1].abs().sum().item() > 0


def test_v1_trainer_writes_the_zeroed_mask_back_for_the_actor(verl, monkeypatch):
    """verl's V1 ``_compute_advantage`` against an in-memory stand-in for its TransferQueue: the
    mask it stores for the actor's loss has the truncated rows zeroed."""
    import torch
    from tensordict import NonTensorStack, TensorDict
    from transfer_queue import KVBatchMeta
    from verl.trainer.ppo.v1 import trainer_base

    recipe = load_recipe("nemotron-cascade-8b")
    overrides = _overrides(recipe, "math-rl", "compress")
    overrides["trainer.v1.sampler.sampler_kwargs"]["overlong"]["max_response_length"] = BUDGET
    cfg = _compose(overrides)
    _replay_buffer(cfg)

    def nested(rows):
        return torch.nested.as_nested_tensor(rows, layout=torch.jagged)

    store = {
        "response_mask": nested([torch.ones(n, dtype=torch.long) for n in LENGTHS]),
        "rm_scores": nested([torch.tensor([0.0] * (n - 1) + [r]) for r, n in zip(REWARDS, LENGTHS)]),
        "old_log_probs": nested([torch.full((n,), -1.0) for n in LENGTHS]),
        "rollout_log_probs": nested([torch.full((n,), -1.0) for n in LENGTHS]),
    }
    written = {}

    def kv_batch_get(keys, partition_id, select_fields):
        fields = {k: store[k] for k in select_fields if k in store}
        td = TensorDict(fields, batch_size=[len(keys)])
        td["uid"] = NonTensorStack(*UIDS)  # how TransferQueue hands back the prompts' uids
        return td

    def kv_batch_put(keys, partition_id, fields):
        written.update({k: fields[k] for k in fields.keys()})
        return KVBatchMeta(partition_id=partition_id, keys=keys, tags=[{}] * len(keys))

    monkeypatch.setattr(trainer_base.tq, "kv_batch_get", kv_batch_get)
    monkeypatch.setattr(trainer_base.tq, "kv_batch_put", kv_batch_put)
    trainer = types.SimpleNamespace(config=cfg)
    batch = KVBatchMeta(partition_id="train", keys=[f"{u}_{i}_0" for i, u in enumerate(UIDS)], tags=[{}] * len(UIDS))
    trainer_base.PPOTrainer._compute_advantage(trainer, batch, metrics={})
    assert "response_mask" in written  # rollout correction's write-back carries our mask to the actor
    _expected, valid = _local_advantages(recipe.stage("math-rl").adv_eps)
    kept = [int(row.sum()) for row in written["response_mask"].unbind()]
    assert kept == [n if ok else 0 for n, ok in zip(LENGTHS, valid)]


def test_no_group_filtering_behind_a_colocated_reward_model():
    """The thinking recipe's IF-RL filters groups locally; verl 0.9.1 cannot (its trainer refuses
    filter_groups with a colocated RM at start-up), so the job runs without and says so."""
    recipe = load_recipe("nemotron-cascade-8b-thinking")
    for name in ("if-rl-ifeval", "if-rl-ifbench"):
        stage = recipe.stage(name)
        assert stage.dynamic_filter and stage.reward == "if_thinking"
        o = _overrides(recipe, name, None)
        assert o["algorithm.filter_groups.enable"] is False and "algorithm.filter_groups.metric" not in o
        assert any("colocated reward model" in g for g in verl_gaps(stage))
    unified = load_recipe("nemotron-cascade-8b")  # a per-sample reward: verl filters as locally
    assert _overrides(unified, "if-rl-ifeval", None)["algorithm.filter_groups.enable"] is True

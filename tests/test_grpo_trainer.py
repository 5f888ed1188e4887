"""The GRPO trainer on the session's tiny model: one step, checkpoints, the on-policy check,
the reference-model rule, dynamic filtering, mode metrics, the curriculum and the stream."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cascade.engine.checkpoint import latest_checkpoint, read_trainer_state
from cascade.engine.local import LocalEngine, read_safetensors_dir
from cascade.trainers import grpo
from cascade.config.recipe import GRPOStage
from cascade.trainers.grpo import train_grpo
from cascade.trainers.rollout import PromptStream
from cascade.verifiers.base import VerifyResult
from pydantic import ValidationError
from stage_helpers import grpo_engine, grpo_stage, read_metrics

torch.set_num_threads(1)

RECORDS = [{"id": f"p{i}", "prompt": f"Say something about {i}.", "verifier": "toy"} for i in range(6)]


def letter_e_reward(records, completions):
    """Up to three 'e's score 1/3 each: a random model's rollouts almost always differ."""
    return [VerifyResult(min(text.count("e"), 3) / 3, text.count("e") >= 3) for text in completions]


def small_settings(**overrides) -> GRPOStage:
    values = dict(lr=1e-3, group_size=4, batch_size=2, max_steps=1, max_response_len=6, seed=0)
    values.update(overrides)
    return grpo_stage(**values)


def make_engine(model_dir: Path, settings: GRPOStage) -> LocalEngine:
    return grpo_engine(model_dir, settings, len(RECORDS))


def test_one_step_changes_the_weights_and_the_checkpoint_reloads(tiny_model_dir, tmp_path):
    settings = small_settings(max_response_len=12)
    engine = make_engine(tiny_model_dir, settings)
    before = {k: v.clone() for k, v in engine.model.state_dict().items()}
    out = train_grpo(engine, RECORDS, settings, tmp_path, reward_fn=letter_e_reward, progress=False)
    assert out["step"] == 1
    (row,) = read_metrics(tmp_path)
    assert row["zero_variance_share"] < 1.0, "no group had signal; pick another seed"
    after = engine.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    ckpt = latest_checkpoint(tmp_path)
    assert ckpt is not None and ckpt.name == "step_00000001"
    assert read_trainer_state(ckpt)["step"] == 1
    on_disk = read_safetensors_dir(ckpt)
    assert all(torch.equal(on_disk[k], after[k]) for k in on_disk)
    reloaded = LocalEngine(str(out["final"]), seed=0)
    assert all(torch.equal(v, after[k]) for k, v in reloaded.model.state_dict().items())
    for key in (
        "reward_mean", "pass_rate", "response_len_mean", "response_len_max", "truncated_share",
        "zero_variance_share", "entropy", "grad_norm", "tokens_per_s", "time_generate_s",
        "time_reward_s", "time_train_s", "reward/toy/think", "pass_rate/toy/think",
    ):
        assert key in row, key
    # at temperature 1 the trainer re-scores the sampled tokens within float noise
    assert row["sampler_logprob_gap_mean"] < 1e-4
    assert row["grad_norm"] > 0


def test_misaligned_batch_fails_the_on_policy_check(tiny_model_dir, tmp_path, monkeypatch):
    settings = small_settings()
    engine = make_engine(tiny_model_dir, settings)
    real_generate = engine.generate

    def shifted(prompts, sampling):
        gens = real_generate(prompts, sampling)
        for g in gens:  # pretend the sampler scored different tokens
            g.logprobs = [lp - 1.0 for lp in g.logprobs]
        return gens

    monkeypatch.setattr(engine, "generate", shifted)
    with pytest.raises(RuntimeError, match="on-policy check failed"):
        train_grpo(engine, RECORDS, settings, tmp_path, reward_fn=letter_e_reward, progress=False)


def test_no_reference_model_without_kl(tiny_model_dir, tmp_path, monkeypatch):
    loads = []

    def counting_load(path):
        loads.append(path)
        return LocalEngine(path, seed=0)

    settings = small_settings()
    engine = make_engine(tiny_model_dir, settings)
    monkeypatch.setattr(engine, "frozen_copy", counting_load)
    train_grpo(engine, RECORDS, settings, tmp_path / "a", reward_fn=letter_e_reward, progress=False)
    assert loads == []
    settings = small_settings(kl_coef=0.1)
    engine = make_engine(tiny_model_dir, settings)
    monkeypatch.setattr(engine, "frozen_copy", counting_load)
    train_grpo(engine, RECORDS, settings, tmp_path / "b", reward_fn=letter_e_reward, progress=False)
    assert loads == [str(tiny_model_dir)]
    (row,) = read_metrics(tmp_path / "b")
    assert abs(row["kl"]) < 1e-5  # the first update starts at the reference


def test_dynamic_filter_trains_only_groups_with_signal(tiny_model_dir, tmp_path):
    def reward(records, completions):
        # prompts p0..p4 always pass (no signal); only p5 scores by its 'e's, so whatever
        # order the stream draws in, the first round of two prompts holds a no-signal group
        return [
            VerifyResult(1.0, True) if r["id"] != "p5" else scored
            for r, scored in zip(records, letter_e_reward(records, completions))
        ]

    # The overlong filter masks truncated rollouts instead of scoring them 0, so an
    # always-passing group has no variance however its rollouts end.
    settings = small_settings(dynamic_filter=True, max_filter_tries=4, max_response_len=12, think_fraction=0.5,
                              overlong_filter=True)
    train_grpo(make_engine(tiny_model_dir, settings), RECORDS, settings, tmp_path, reward_fn=reward, progress=False)
    (row,) = read_metrics(tmp_path)
    assert row["filter_tries"] >= 2  # the first round drew some no-signal prompts
    assert row["zero_variance_share"] > 0
    assert "reward/toy/think" in row and "reward/toy/no_think" in row


def test_curriculum_switches_sub_stage_and_overlong_rule(tiny_model_dir, tmp_path):
    curriculum = [
        {"name": "short", "max_response_len": 2, "overlong_filter": True, "until_step": 1},
        {"name": "long", "max_response_len": 5, "overlong_filter": False},
    ]
    settings = small_settings(max_steps=2, curriculum=curriculum, think_fraction=0.0)
    train_grpo(make_engine(tiny_model_dir, settings), RECORDS, settings, tmp_path,
               reward_fn=letter_e_reward, progress=False)
    first, second = read_metrics(tmp_path)
    assert (first["substage"], second["substage"]) == ("short", "long")
    assert first["response_len_max"] <= 2 and second["response_len_max"] <= 5
    # sub-stage 1 skips truncated rollouts (each exactly 2 tokens long) from the loss;
    # sub-stage 2 scores them 0 but trains on every token
    n_truncated = round(first["truncated_share"] * 8)
    assert first["loss_tokens"] == first["generated_tokens"] - 2 * n_truncated
    assert second["loss_tokens"] == second["generated_tokens"]


def test_prompt_stream_epochs_and_state_round_trip():
    stream = PromptStream(RECORDS, seed=1, epoch_filter=True, readd_prob_all_correct=0.0, readd_prob_all_wrong=0.0)
    first_epoch = stream.take(6)
    assert sorted(r["id"] for r in first_epoch) == [r["id"] for r in RECORDS]
    for r in first_epoch[:4]:
        stream.record_verdict(r, "all_correct")
    state = json.loads(json.dumps(stream.state_dict()))
    assert stream.completed_epochs == 1
    second = stream.take(2)  # epoch 1 holds only the two prompts without an all-correct outcome
    assert {r["id"] for r in second} == {r["id"] for r in first_epoch[4:]}
    clone = PromptStream(RECORDS, seed=1, epoch_filter=True, readd_prob_all_correct=0.0, readd_prob_all_wrong=0.0)
    clone.load_state_dict(state)
    assert [r["id"] for r in clone.take(2)] == [r["id"] for r in second]


def test_settings_errors_name_the_field():
    with pytest.raises(ValidationError, match="group_size"):
        grpo_stage(group_size=1)
    with pytest.raises(ValidationError, match="grop_size"):
        grpo_stage(grop_size=8)
    with pytest.raises(ValidationError, match="loss_agg"):
        grpo_stage(loss_agg="sum")


def test_ppo_epochs_reuse_the_rollouts_with_a_clipped_ratio(tiny_model_dir, tmp_path):
    settings = small_settings(ppo_epochs=2, max_response_len=12, clip_low=0.0, clip_high=0.0)
    engine = make_engine(tiny_model_dir, settings)
    train_grpo(engine, RECORDS, settings, tmp_path, reward_fn=letter_e_reward, progress=False)
    (row,) = read_metrics(tmp_path)
    assert engine.step == 2  # two optimizer updates on one rollout batch
    # with a zero-width clip every token whose ratio moved in its advantage's direction is
    # clipped in the second pass, and the first update (lr 1e-3) moved every ratio
    assert 0.0 < row["clip_fraction"] <= 1.0


def test_reward_shaping_feeds_the_advantages_not_the_logged_rewards(tiny_model_dir, tmp_path, monkeypatch):
    from cascade.algo.advantages import REWARD_SHAPINGS

    seen = []
    real = REWARD_SHAPINGS["group_tanh"]

    def spy(rewards, group_size, **kwargs):
        out = real(rewards, group_size, **kwargs)
        seen.append((list(rewards), out.tolist()))
        return out

    monkeypatch.setitem(REWARD_SHAPINGS, "group_tanh", spy)
    settings = small_settings()
    train_grpo(make_engine(tiny_model_dir, settings), RECORDS, settings, tmp_path / "plain",
               reward_fn=letter_e_reward, progress=False)
    assert seen == []  # off by default, as in the paper's final recipe
    settings = small_settings(reward_shaping="group_tanh")
    train_grpo(make_engine(tiny_model_dir, settings), RECORDS, settings, tmp_path / "shaped",
               reward_fn=letter_e_reward, progress=False)
    (raw, shaped), = seen
    assert all(-1.0 < v < 1.0 for v in shaped) and shaped != raw
    (row,) = read_metrics(tmp_path / "shaped")
    assert row["reward_mean"] == pytest.approx(sum(raw) / len(raw))
    with pytest.raises(ValidationError, match="group_tanh"):
        small_settings(reward_shaping="tanh")


def test_rlhf_scores_a_truncated_reply_with_the_reward_model(tiny_model_dir, tmp_path, monkeypatch):
    """Paper section 4.3: no overlong filter in RLHF; an unfinished reply gets the reward
    model's score of its text (here the tiny model itself serves as a causal-LM reward model)."""
    from cascade.engine.reward_scorer import RewardModelScorer

    seen = {}
    real_generate, real_overlong = grpo.generate_and_score, grpo.apply_overlong

    def spy_generate(engine, prompts, records, **kwargs):
        seen["records"], seen["rollout"] = records, real_generate(engine, prompts, records, **kwargs)
        return seen["rollout"]

    def spy_overlong(*args, **kwargs):
        seen["rewards"] = real_overlong(*args, **kwargs)[0]
        return real_overlong(*args, **kwargs)

    monkeypatch.setattr(grpo, "generate_and_score", spy_generate)
    monkeypatch.setattr(grpo, "apply_overlong", spy_overlong)
    records = [{"id": f"p{i}", "prompt": f"Say something about {i}.", "verifier": "toy", "ground_truth": None}
               for i in range(2)]
    settings = small_settings(reward="rlhf", reward_model=str(tiny_model_dir), max_response_len=4,
                              think_fraction=0.0)
    train_grpo(make_engine(tiny_model_dir, settings), records, settings, tmp_path, progress=False)
    rollout = seen["rollout"]
    truncated = [i for i, g in enumerate(rollout.generations) if g.finish_reason == "length"]
    assert truncated and len(truncated) < len(rollout.generations), "pick another seed"
    scorer = RewardModelScorer(tiny_model_dir)
    prompts = [[{"role": "user", "content": seen["records"][i]["prompt"]}] for i in truncated]
    expected = scorer.score(prompts, [rollout.generations[i].text for i in truncated])
    assert [seen["rewards"][i] for i in truncated] == pytest.approx(expected)
    assert all(value != 0.0 for value in expected)

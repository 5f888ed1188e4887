"""The GRPO trainer passes the stage's settings through to the pure functions.

The pure functions (loss aggregation, epoch filter, stage rewards) have their own
hand-computed tests; these check that ``train_grpo`` calls them with the stage's values,
each through a real step on the session's tiny model and a batch whose expected outcome can
be worked out by hand. Each was written against a mutation that the rest of the suite let
through (docs/testing.md): the trainer ignoring ``loss_agg``, the epoch filter's two re-add
probabilities swapped on the way to the prompt stream, and the RLHF reward scored per
generation chunk (so that "batch minimum - 10" became a per-chunk minimum).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from stage_helpers import grpo_engine, grpo_stage, read_metrics

from cascade.engine.local import LocalEngine
from cascade.config.recipe import GRPOStage
from cascade.trainers.grpo import train_grpo
from cascade.verifiers.base import VerifyResult

torch.set_num_threads(1)

RECORDS = [{"id": f"p{i}", "prompt": f"Tell me about {i}.", "verifier": "toy"} for i in range(4)]


def stage(**overrides) -> GRPOStage:
    """The stage config the tests train with (the recipe's typed stage); the one place that builds it."""
    values = dict(lr=1e-3, group_size=2, batch_size=2, max_steps=1, max_response_len=8, seed=0)
    values.update(overrides)
    return grpo_stage(**values)


def make_engine(model_dir: Path, settings: GRPOStage) -> LocalEngine:
    return grpo_engine(model_dir, settings, len(RECORDS))


def spy_micro_batches(engine: LocalEngine) -> list[dict]:
    """Record every micro-batch the trainer hands to the engine, with the engine's report."""
    seen: list[dict] = []
    real = engine.forward_backward

    def recording(batch, loss_fn):
        entropies = []

        def loss_spy(token_logprobs, micro, entropy=None):
            entropies.append(None if entropy is None else entropy.detach().clone())
            return loss_fn(token_logprobs, micro, entropy=entropy)

        loss_spy.needs_entropy = loss_fn.needs_entropy
        report = real(batch, loss_spy)
        seen.append({"mask": batch["loss_mask"].clone(), "advantages": batch["advantages"].clone(),
                     "entropy": entropies[0], "report": report})
        return report

    engine.forward_backward = recording
    return seen


@pytest.mark.parametrize(("loss_agg", "max_response_len", "grad_accum"),
                         [("seq_mean", 12, 1), ("token_mean", 12, 2), ("seq_mean", 1, 1)])
def test_the_stage_loss_agg_sets_the_loss_of_a_step(tiny_model_dir, tmp_path, loss_agg, max_response_len, grad_accum):
    # On the one on-policy update the ratio is exactly 1, so loss token t of response i
    # contributes -A_i - c * H_it (c the entropy bonus, H the token's entropy): token_mean
    # averages that over all loss tokens, seq_mean over each response's tokens and then
    # over the responses. The reward grows with the response, so longer responses get
    # positive advantages and the two differ; one-token responses still count as responses.
    def longer_is_better(records, completions):
        return [VerifyResult(float(len(text)), False) for text in completions]

    c = 0.05
    settings = stage(loss_agg=loss_agg, batch_size=4, max_response_len=max_response_len, entropy_coef=c,
                     grad_accum=grad_accum)
    engine = make_engine(tiny_model_dir, settings)
    seen = spy_micro_batches(engine)
    train_grpo(engine, RECORDS, settings, tmp_path, reward_fn=longer_is_better, progress=False)
    (row,) = read_metrics(tmp_path)
    token_sum = seq_sum = 0.0
    tokens = seqs = 0
    for m in seen:
        per_token = (-m["advantages"][:, None] - c * m["entropy"]) * m["mask"]
        lengths = m["mask"].sum(dim=1)
        token_sum += float(per_token.sum())
        seq_sum += float((per_token.sum(dim=1)[lengths > 0] / lengths[lengths > 0]).sum())
        tokens, seqs = tokens + int(lengths.sum()), seqs + int((lengths > 0).sum())
    token_mean, seq_mean = token_sum / tokens, seq_sum / seqs
    assert abs(token_mean - seq_mean) > 1e-3 or max_response_len == 1
    assert row["loss"] == pytest.approx(seq_mean if loss_agg == "seq_mean" else token_mean, abs=1e-5)
    assert len(seen) == grad_accum  # the logged loss sums every micro-batch's share
    # the trainer re-scores the sampled tokens within float noise; the max is over tokens
    assert row["sampler_logprob_gap_mean"] <= row["sampler_logprob_gap_max"] < 1e-3


def test_asymmetric_readd_probabilities_reach_the_prompt_stream(tiny_model_dir, tmp_path):
    # p0 and p1 are always answered right, p2 and p3 always wrong. With every all-correct
    # prompt re-added and no all-wrong one, epochs after the first hold exactly p0 and p1;
    # the probabilities swapped would hold p2 and p3, and the defaults (0.01 / 0.10) drop
    # nearly everything, so the pool falls back to all four.
    drawn: list[list[str]] = []

    def fixed(records, completions):
        drawn.append(sorted({r["id"] for r in records}))
        return [VerifyResult(1.0, True) if r["id"] in ("p0", "p1") else VerifyResult(0.0, False) for r in records]

    settings = stage(max_steps=4, epoch_filter=True, readd_prob_all_correct=1.0, readd_prob_all_wrong=0.0,
                     max_response_len=4, generation_chunks=1)
    train_grpo(make_engine(tiny_model_dir, settings), RECORDS, settings, tmp_path, reward_fn=fixed, progress=False)
    rows = read_metrics(tmp_path)
    assert [r["epoch"] for r in rows] == [0, 0, 1, 2]  # steps 3 and 4 each open a new epoch
    assert sorted(drawn[0] + drawn[1]) == ["p0", "p1", "p2", "p3"]  # epoch 0: every prompt once
    assert drawn[2] == drawn[3] == ["p0", "p1"]


class FixedRewardModel:
    """Stands in for the reward model: a hand-set score per prompt."""

    SCORES = {"p0": 5.0, "p1": 3.0, "p2": 1.0, "p3": 4.0}

    def __init__(self, path, device="cpu"):
        self.path = path

    def score(self, conversations, completions):
        by_prompt = {r["prompt"]: pid for pid, r in ((r["id"], r) for r in RECORDS)}
        return [self.SCORES[by_prompt[c[-1]["content"]]] for c in conversations]


def test_rlhf_language_mixing_floor_is_the_whole_batch_minimum(tiny_model_dir, tmp_path, monkeypatch):
    # Four prompts x 2 rollouts, generated in two chunks of two prompts. Every rollout of p0
    # and p3 mixes languages, so it scores the batch's lowest RM score (p2's 1.0) - 10 = -9.
    # Whichever chunk lacks p2 has a minimum of at least 3, so a per-chunk floor would give
    # -7 or -6 there. Expected mean: (2 * 3.0 + 2 * 1.0 + 4 * -9.0) / 8 = -3.5.
    import cascade.verifiers.language_mixing as language_mixing
    import cascade.engine.reward_scorer as reward_model

    mixed_prompts = {RECORDS[0]["prompt"], RECORDS[3]["prompt"]}
    monkeypatch.setattr(reward_model, "RewardModelScorer", FixedRewardModel)
    monkeypatch.setattr(language_mixing, "detect_language_mixing", lambda prompt, text: prompt in mixed_prompts)
    # the overlong filter keeps a cut-off rollout's reward (it only masks it from the loss)
    settings = stage(reward="rlhf", reward_model="fixed-rm", batch_size=4, generation_chunks=2,
                     overlong_filter=True)
    engine = make_engine(tiny_model_dir, settings)
    calls: list[int] = []
    real_generate = engine.generate

    def counting(prompts, sampling):
        calls.append(len(prompts))
        return real_generate(prompts, sampling)

    engine.generate = counting
    train_grpo(engine, RECORDS, settings, tmp_path, progress=False)
    (row,) = read_metrics(tmp_path)
    assert row["reward_mean"] == pytest.approx(-3.5)
    assert row["reward/toy/think"] == pytest.approx(-3.5)
    assert calls == [8]  # RLHF generates and scores the round in one piece


def capture_prompts(engine: LocalEngine) -> list[str]:
    """Record every prompt the trainer asks the engine to complete."""
    prompts: list[str] = []
    real = engine.generate

    def recording(batch, sampling):
        prompts.extend(batch)
        return real(batch, sampling)

    engine.generate = recording
    return prompts


def no_signal(records, completions):
    return [VerifyResult(1.0, True) for _ in completions]


LONG = {"id": "long", "prompt": "Tell me about " + "many things, " * 60 + "please.", "verifier": "toy"}


def prompt_lengths(engine: LocalEngine, records) -> dict[str, int]:
    from cascade.chat.template import render

    return {r["id"]: len(engine.tokenizer(render([{"role": "user", "content": r["prompt"]}], enable_thinking=True,
                                                 add_generation_prompt=True), add_special_tokens=False)["input_ids"])
            for r in records}


def test_prompts_over_the_budget_are_skipped_and_counted(tiny_model_dir, tmp_path):
    records = RECORDS[:3] + [LONG]
    engine = make_engine(tiny_model_dir, stage())
    lengths = prompt_lengths(engine, records)
    budget = max(v for k, v in lengths.items() if k != "long")  # the longest short prompt fits exactly
    assert lengths["long"] > budget
    settings = stage(batch_size=4, max_prompt_len=budget)
    engine = make_engine(tiny_model_dir, settings)
    seen: list[str] = []

    def reward(recs, completions):
        seen.extend(r["id"] for r in recs)
        return no_signal(recs, completions)

    train_grpo(engine, records, settings, tmp_path, reward_fn=reward, progress=False)
    (row,) = read_metrics(tmp_path)
    assert row["prompts_too_long"] == 1
    assert sorted(set(seen)) == ["p0", "p1", "p2"] and len(seen) == 3 * settings.group_size


def test_skipped_prompts_add_up_over_the_rounds_of_a_step(tiny_model_dir, tmp_path):
    # two prompts, two per round: each of the 3 dynamic-filter rounds draws the long one again
    records = [RECORDS[0], LONG]
    engine = make_engine(tiny_model_dir, stage())
    budget = prompt_lengths(engine, records)["p0"]
    # (the overlong filter keeps a cut-off rollout's reward, so no group ever has signal)
    settings = stage(batch_size=2, max_prompt_len=budget, dynamic_filter=True, max_filter_tries=3, max_response_len=2,
                     overlong_filter=True)
    train_grpo(make_engine(tiny_model_dir, settings), records, settings, tmp_path, reward_fn=no_signal,
               progress=False)
    (row,) = read_metrics(tmp_path)
    assert (row["filter_tries"], row["prompts_too_long"]) == (3, 3)


def test_a_step_samples_the_same_tokens_when_run_again(tiny_model_dir, tmp_path):
    # every generation call gets a seed derived from (seed, step, draw, chunk)
    texts: list[list[str]] = []
    for run in ("a", "b"):
        seen: list[str] = []

        def reward(recs, completions):
            seen.extend(completions)
            return no_signal(recs, completions)

        settings = stage(max_response_len=6)
        torch.manual_seed(len(texts))  # a different global RNG state for each run
        train_grpo(make_engine(tiny_model_dir, settings), RECORDS, settings, tmp_path / run, reward_fn=reward,
                   progress=False)
        texts.append(seen)
    assert texts[0] == texts[1] and len(set(texts[0])) > 1


@pytest.mark.parametrize("think_fraction", [1.0, 0.0])
def test_each_prompt_is_rendered_in_its_mode(tiny_model_dir, tmp_path, think_fraction):
    from cascade.chat.template import render

    settings = stage(think_fraction=think_fraction, max_response_len=2)
    engine = make_engine(tiny_model_dir, settings)
    prompts = capture_prompts(engine)
    train_grpo(engine, RECORDS, settings, tmp_path, reward_fn=no_signal, progress=False)
    expected = {render([{"role": "user", "content": r["prompt"]}], enable_thinking=think_fraction == 1.0,
                       add_generation_prompt=True) for r in RECORDS}
    assert len(prompts) == settings.batch_size * settings.group_size and set(prompts) <= expected
    mode = "think" if think_fraction == 1.0 else "no_think"
    (row,) = read_metrics(tmp_path)
    assert f"reward/toy/{mode}" in row and row["substage"] == "main"


def test_a_prompt_record_without_text_is_named_by_its_line(tiny_model_dir, tmp_path):
    from cascade.errors import CascadeError

    records = [{"id": "a", "prompt": "Hi.", "verifier": "toy"}, {"id": "b", "verifier": "toy"}]
    settings = stage(batch_size=2)
    with pytest.raises(CascadeError, match="needs 'messages' or 'prompt'") as err:
        train_grpo(make_engine(tiny_model_dir, settings), records, settings, tmp_path, reward_fn=no_signal,
                   progress=False)
    assert err.value.line == 2


def test_every_dynamic_filter_round_draws_its_own_modes(tiny_model_dir, tmp_path, monkeypatch):
    from cascade.trainers import grpo

    draws: list[tuple[int, int]] = []
    real = grpo.assign_modes

    def spy(n, fraction, *, seed, step, draw=None):
        draws.append((step, draw))
        return real(n, fraction, seed=seed, step=step, draw=draw)

    monkeypatch.setattr(grpo, "assign_modes", spy)
    # no group ever has signal (the overlong filter keeps a cut-off rollout's reward), so every
    # round of the try budget is drawn
    settings = stage(dynamic_filter=True, max_filter_tries=3, max_response_len=2, think_fraction=0.5,
                     overlong_filter=True)
    train_grpo(make_engine(tiny_model_dir, settings), RECORDS, settings, tmp_path, reward_fn=no_signal,
               progress=False)
    assert draws == [(0, 0), (0, 1), (0, 2)]
    (row,) = read_metrics(tmp_path)
    assert row["filter_tries"] == 3


def test_sub_stage_knobs_inherit_what_they_do_not_set():
    from cascade.trainers.grpo import StepKnobs, knobs_for

    settings = stage(max_steps=2, max_response_len=8, max_prompt_len=64, temperature=0.7, overlong_filter=False,
                     curriculum=[{"name": "a", "until_step": 1},
                                 {"name": "b", "max_response_len": 3, "max_prompt_len": 32, "temperature": 1.2,
                                  "overlong_filter": True}])
    assert knobs_for(settings, 0) == StepKnobs("a", 8, 64, 0.7, False)
    assert knobs_for(settings, 1) == StepKnobs("b", 3, 32, 1.2, True)
    plain = stage(max_response_len=5, max_prompt_len=16, temperature=0.9)
    assert knobs_for(plain, 0) == StepKnobs("main", 5, 16, 0.9, False)


def test_the_stage_sampling_knobs_reach_the_engine(tiny_model_dir, tmp_path):
    settings = stage(temperature=0.7, top_p=0.9, top_k=5, max_response_len=3, generation_chunks=2, batch_size=3)
    engine = make_engine(tiny_model_dir, settings)
    calls = []
    real = engine.generate

    def recording(prompts, sampling):
        calls.append((len(prompts), sampling))
        return real(prompts, sampling)

    engine.generate = recording
    train_grpo(engine, RECORDS, settings, tmp_path, reward_fn=no_signal, progress=False)
    assert [(s.max_new_tokens, s.temperature, s.top_p, s.top_k) for _, s in calls] == [(3, 0.7, 0.9, 5)] * 2
    assert len({s.seed for _, s in calls}) == 2  # each generation chunk has its own seed
    # 3 prompts x 2 rollouts in two chunks cut between groups: 2 groups, then 1
    assert [n for n, _ in calls] == [4, 2]


def test_the_loss_gets_the_stage_clip_and_bonus_settings(tiny_model_dir, tmp_path, monkeypatch):
    from cascade.trainers import grpo

    built: list[dict] = []
    real = grpo.GRPOLoss

    def recording(**kwargs):
        built.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(grpo, "GRPOLoss", recording)
    settings = stage(ppo_epochs=2, clip_low=0.1, clip_high=0.3, entropy_coef=0.02, loss_agg="seq_mean")
    train_grpo(make_engine(tiny_model_dir, settings), RECORDS, settings, tmp_path, reward_fn=no_signal,
               progress=False)
    knobs = [{k: b[k] for k in ("loss_agg", "clip_low", "clip_high", "kl_coef", "entropy_coef", "capture_logprobs")}
             for b in built]
    first = {"loss_agg": "seq_mean", "clip_low": 0.1, "clip_high": 0.3, "kl_coef": 0.0, "entropy_coef": 0.02,
             "capture_logprobs": True}
    assert knobs == [first, {**first, "capture_logprobs": False}]  # the second PPO epoch reads what the first kept
    assert built[0]["total_tokens"] == built[1]["total_tokens"] > 0
    built.clear()
    settings = stage(max_response_len=2)  # one PPO epoch: nothing to keep for a second pass
    train_grpo(make_engine(tiny_model_dir, settings), RECORDS, settings, tmp_path / "one", reward_fn=no_signal,
               progress=False)
    assert [b["capture_logprobs"] for b in built] == [False]


def test_later_ppo_epochs_at_another_temperature(tiny_model_dir, tmp_path):
    # below temperature 1 no sampler log-probs are kept, so a later epoch has none to drop
    settings = stage(ppo_epochs=2, temperature=0.7, max_response_len=3)
    engine = make_engine(tiny_model_dir, settings)
    train_grpo(engine, RECORDS, settings, tmp_path, reward_fn=no_signal, progress=False)
    (row,) = read_metrics(tmp_path)
    assert engine.step == 2 and "sampler_logprob_gap_mean" not in row

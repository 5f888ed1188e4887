"""Reward-model trainer: Bradley-Terry loss, held-out split, HF sequence-classification output."""

from __future__ import annotations

import json
import math

import pytest
import torch
from pydantic import ValidationError
from stage_helpers import rm_stage
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from cascade.data.heldout import heldout_count
from cascade.data.records import PreferencePair
from cascade.engine.local import LocalEngine
from cascade.trainers.rm import (
    BradleyTerryLoss,
    encode_pair,
    pair_batch,
    reward_model_text,
    split_heldout,
    train_rm,
)

torch.set_num_threads(1)

PAIRS = [
    {"prompt": "Name a fruit.", "chosen": "Apple.", "rejected": "Carrot is a vegetable I like."},
    {"prompt": "What is 2+2?", "chosen": "4", "rejected": "5"},
    {"prompt": "Say hello.", "chosen": "Hello!", "rejected": "No."},
    {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."},
                  {"role": "user", "content": "Capital of Italy?"}], "chosen": "Rome.", "rejected": "Paris."},
    {"prompt": "Colour of the sky?", "chosen": "Blue.", "rejected": "Green, always."},
    {"prompt": "Opposite of up?", "chosen": "Down.", "rejected": "Sideways."},
]


def test_bradley_terry_loss_by_hand():
    scores = torch.tensor([2.0, 0.0, 1.0, 1.0])  # chosen [2, 0], rejected [1, 1]
    loss, metrics = BradleyTerryLoss(total_pairs=2)(scores, {})
    # (log(1 + e^-1) + log(1 + e^1)) / 2 = (0.31326169 + 1.31326169) / 2
    assert float(loss) == pytest.approx(0.81326169, abs=1e-7)
    assert int(metrics["correct"]) == 1 and float(metrics["margin_sum"]) == pytest.approx(0.0)
    loss4, _ = BradleyTerryLoss(total_pairs=4)(scores, {})  # normalised by the whole update
    assert float(loss4) == pytest.approx(0.81326169 / 2, abs=1e-7)


def test_split_heldout_is_seeded_and_disjoint():
    train, heldout = split_heldout(20, 0.25, seed=4)
    assert len(heldout) == 5 and len(train) == 15 and not set(train) & set(heldout)
    assert sorted(train + heldout) == list(range(20))
    assert split_heldout(20, 0.25, seed=4) == (train, heldout)
    assert split_heldout(3, 0.01, seed=0)[1] != []  # a fraction > 0 holds out at least one pair
    assert split_heldout(3, 0.0, seed=0) == ([0, 1, 2], [])
    assert len(split_heldout(615, 0.1, seed=0)[1]) == heldout_count(615, 0.1) == 62  # round(61.5)
    assert heldout_count(2, 0.99) == 1  # never the whole set


def test_reward_model_text_is_the_instruct_rendering():
    text = reward_model_text([{"role": "user", "content": "Q?"}], "A.")
    assert text.endswith("<|im_start|>user\nQ? /no_think<|im_end|>\n<|im_start|>assistant\nA.<|im_end|>\n")


def test_pair_batch_puts_chosen_rows_first(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    pairs = [encode_pair(PreferencePair.model_validate(p), tokenizer) for p in PAIRS[:2]]
    batch = pair_batch(pairs, tokenizer.pad_token_id)
    assert batch["input_ids"].shape[0] == 4
    assert batch["input_ids"][0, : len(pairs[0].chosen)].tolist() == pairs[0].chosen
    assert batch["input_ids"][3, : len(pairs[1].rejected)].tolist() == pairs[1].rejected
    assert batch["attention_mask"][3].sum() == len(pairs[1].rejected)


def test_train_rm_writes_a_loadable_sequence_classifier(tiny_model_dir, tmp_path, capfd, caplog, recwarn):
    engine = LocalEngine(str(tiny_model_dir), device="cpu", head="score")
    # The new `score` head is expected: no load report about it, and no warning.
    assert "score.weight" not in "".join(capfd.readouterr()) + caplog.text
    assert not [w for w in recwarn if "did not load fully" in str(w.message)]
    before = {k: v.clone() for k, v in engine.model.state_dict().items()}
    cfg = rm_stage(lr=1e-3, batch_size=2, grad_accum=2, heldout_fraction=0.34, max_seq_len=512)
    summary = train_rm(engine, PAIRS, cfg, tmp_path, progress=False)

    assert summary["heldout_pairs"] == 2 and summary["pairs"] == 4 and summary["step"] == 2
    assert summary["heldout_accuracy"] in (0.0, 0.5, 1.0)
    after = engine.model.state_dict()
    assert not torch.equal(after["score.weight"], before["score.weight"])
    assert any(not torch.equal(after[k], before[k]) for k in before if k.startswith("model.layers"))
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert rows[-1]["heldout_accuracy"] == summary["heldout_accuracy"]
    assert all(0 <= r["accuracy"] <= 1 and math.isfinite(r["loss"]) for r in rows)

    # The stage output is a plain HF sequence classifier, read at the last non-pad token.
    model = AutoModelForSequenceClassification.from_pretrained(summary["final"])
    tokenizer = AutoTokenizer.from_pretrained(summary["final"])
    assert type(model).__name__ == "Qwen3ForSequenceClassification"
    assert model.config.num_labels == 1 and model.config.pad_token_id == tokenizer.pad_token_id
    for name, value in after.items():
        assert torch.equal(value, model.state_dict()[name]), name

    # Held-out accuracy, recomputed independently from the saved model, one pair at a time.
    _, heldout_idx = split_heldout(len(PAIRS), cfg.heldout_fraction, cfg.seed)
    correct = 0
    for i in heldout_idx:
        pair = PreferencePair.model_validate(PAIRS[i])
        messages = [{"role": "user", "content": pair.prompt}] if pair.prompt else [m.model_dump(exclude_none=True) for m in pair.messages]
        scores = []
        for reply in (pair.chosen, pair.rejected):
            ids = tokenizer(reward_model_text(messages, reply), return_tensors="pt", add_special_tokens=False)
            with torch.no_grad():
                scores.append(float(model(**ids).logits[0, 0]))
        correct += scores[0] > scores[1]
    assert summary["heldout_accuracy"] == correct / len(heldout_idx)

    # A padded batch scores each row like the row alone (the head reads the last real token).
    batch = pair_batch([encode_pair(PreferencePair.model_validate(p), tokenizer) for p in PAIRS[:2]], tokenizer.pad_token_id)
    with torch.no_grad():
        padded = model(**batch).logits[:, 0]
        alone = model(input_ids=batch["input_ids"][1:2, : int(batch["attention_mask"][1].sum())]).logits[0, 0]
    assert float(padded[1]) == pytest.approx(float(alone), abs=1e-5)

    reloaded = LocalEngine(summary["final"], device="cpu", head="score")
    assert reloaded.score(batch) == pytest.approx(padded.tolist(), abs=1e-5)

    # The RLHF reward scorer reads this output the same way the trainer saw it.
    from cascade.engine.reward_scorer import RewardModelScorer

    scorer = RewardModelScorer(summary["final"])
    assert scorer.score([PAIRS[0]["prompt"], PAIRS[1]["prompt"]], [PAIRS[0]["chosen"], PAIRS[1]["chosen"]]) == (
        pytest.approx(padded[:2].tolist(), abs=1e-5)
    )


def test_rm_needs_a_score_head_and_sane_settings(tiny_model_dir, tmp_path):
    with pytest.raises(RuntimeError, match="head='score'"):
        train_rm(LocalEngine(str(tiny_model_dir), device="cpu"), PAIRS, rm_stage(), tmp_path, progress=False)
    with pytest.raises(ValidationError, match="heldout_fraction"):
        rm_stage(heldout_fraction=1.0)

"""The SFT trainer's wiring: the logged loss of a step is the mean NLL of the trained tokens
(worked out here from the untouched model); a stage none of whose records fits, or resumed on
other data, fails before training with the field or checkpoint named; a resumed stage logs
each step once."""

from __future__ import annotations

import json

import pytest
import torch
from stage_helpers import TwoSecondClock
from stage_helpers import sft_stage as typed_sft_stage

from cascade.engine.local import LocalEngine
from cascade.errors import CascadeError
from cascade.config.recipe import SFTStage
from cascade.trainers.sft import encode_records, train_sft

torch.set_num_threads(1)


def record(question: str, answer: str) -> dict:
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
            "mode": "no_think"}


RECORDS = [record("Say hi.", "Hi!"), record("Name a colour.", "Blue."), record("Opposite of hot?", "Cold.")]


def sft_stage(**overrides) -> SFTStage:
    """The stage config the tests train with (the recipe's typed stage); the one place that builds it."""
    values = dict(lr=1e-3, batch_size=3, max_steps=1, max_seq_len=128, warmup_steps=1, seed=0)
    values.update(overrides)
    return typed_sft_stage(**values)


def test_the_logged_loss_is_the_mean_nll_of_the_trained_tokens(tiny_model_dir, tmp_path):
    engine = LocalEngine(str(tiny_model_dir), device="cpu")
    examples, _ = encode_records(RECORDS, engine.tokenizer, 128)
    nll, tokens = 0.0, 0
    with torch.no_grad():
        for ex in examples:
            ids = torch.tensor([ex.input_ids])
            logp = torch.log_softmax(engine.model(input_ids=ids).logits.float(), dim=-1)
            for t in range(1, len(ex.input_ids)):
                if ex.loss_mask[t]:
                    nll -= float(logp[0, t - 1, ex.input_ids[t]])
                    tokens += 1
    # One batch of all 3 records (the recipe needs grad_accum to divide batch_size), in two
    # micro-batches of 2 and 1.
    summary = train_sft(engine, RECORDS, sft_stage(batch_size=4, grad_accum=2), tmp_path, progress=False)
    assert summary["metrics"]["target_tokens"] == tokens
    assert summary["metrics"]["loss"] == pytest.approx(nll / tokens, rel=1e-4)
    assert summary["metrics"]["tokens"] == sum(len(ex.input_ids) for ex in examples)


def test_no_record_fitting_is_an_error_naming_max_seq_len(tiny_model_dir, tmp_path):
    engine = LocalEngine(str(tiny_model_dir), device="cpu")
    with pytest.raises(CascadeError) as err:
        train_sft(engine, RECORDS, sft_stage(max_seq_len=4), tmp_path, progress=False)
    assert err.value.field == "max_seq_len"
    assert err.value.message == "none of the 3 SFT records fits max_seq_len=4 with a trained turn"


def test_resuming_on_other_data_names_the_checkpoint(tiny_model_dir, tmp_path):
    train_sft(LocalEngine(str(tiny_model_dir), device="cpu"), RECORDS, sft_stage(max_steps=2, batch_size=1,
                                                                                  save_every=1),
              tmp_path, progress=False)
    with pytest.raises(CascadeError) as err:
        train_sft(LocalEngine(str(tiny_model_dir), device="cpu"), RECORDS[:2], sft_stage(max_steps=3, batch_size=1),
                  tmp_path, progress=False)
    assert err.value.file == str(tmp_path / "checkpoints" / "step_00000002")
    assert err.value.message == ("checkpoint was made with 3 examples, the data now has 2; resume needs the same "
                                 "data (or start a fresh run directory)")


class Crash(Exception):
    pass


def test_a_resumed_stage_logs_each_step_once(tiny_model_dir, tmp_path):
    # step 3 is logged but its checkpoint never written (save_every 2): the resume from
    # step 2 must drop that line before logging step 3 again
    settings = sft_stage(batch_size=1, max_steps=4, epochs=None, save_every=2)
    engine = LocalEngine(str(tiny_model_dir), device="cpu")
    real_step = engine.optim_step

    def crash_in_step_four():
        if engine.step == 3:
            raise Crash()
        return real_step()

    engine.optim_step = crash_in_step_four
    with pytest.raises(Crash):
        train_sft(engine, RECORDS, settings, tmp_path, progress=False)
    logged = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert logged == [1, 2, 3]
    summary = train_sft(LocalEngine(str(tiny_model_dir), device="cpu"), RECORDS, settings, tmp_path, progress=False)
    assert summary["resumed_from"] == 2
    logged = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert logged == [1, 2, 3, 4]


def test_running_a_finished_stage_again_trains_nothing(tiny_model_dir, tmp_path):
    settings = sft_stage(max_steps=1)
    train_sft(LocalEngine(str(tiny_model_dir), device="cpu"), RECORDS, settings, tmp_path, progress=False)
    again = train_sft(LocalEngine(str(tiny_model_dir), device="cpu"), RECORDS, settings, tmp_path, progress=False)
    assert (again["step"], again["resumed_from"], again["metrics"]) == (1, 1, {})


def test_each_step_logs_its_epoch_lr_grad_norm_and_throughput(tiny_model_dir, tmp_path, monkeypatch):
    from cascade.engine.checkpoint import read_trainer_state
    from cascade.trainers import sft

    monkeypatch.setattr(sft, "time", TwoSecondClock())
    settings = sft_stage(batch_size=2, max_steps=None, epochs=2, warmup_steps=0, save_every=1, scheduler="constant")
    train_sft(LocalEngine(str(tiny_model_dir), device="cpu"), RECORDS, settings, tmp_path, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["epoch"]) for r in rows] == [(1, 0), (2, 0), (3, 1), (4, 1)]  # 3 records, 2 a batch
    assert all(r["lr"] == pytest.approx(1e-3) and r["grad_norm"] > 0 for r in rows)
    assert all(r["tokens_per_s"] == pytest.approx(r["tokens"] / 2.0) for r in rows)  # two clock readings a step
    state = read_trainer_state(tmp_path / "checkpoints" / "step_00000003")
    assert (state["epoch"], state["batch_in_epoch"], state["examples"], state["planned_steps"]) == (1, 1, 3, 4)
    assert state["metrics"] == rows[2]


def test_every_record_too_long_is_counted(tiny_model_dir):
    engine = LocalEngine(str(tiny_model_dir), device="cpu")
    long = record("Say it at length.", "word " * 200)
    examples, dropped = encode_records([long, RECORDS[0], long], engine.tokenizer, 64)
    assert (len(examples), dropped) == (1, 2)

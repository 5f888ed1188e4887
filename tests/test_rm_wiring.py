"""The reward-model trainer's wiring: a step's logged loss, accuracy and margin are the
Bradley-Terry figures of the untouched model's scores (worked out here), the held-out
accuracy is measured on the held-out pairs with the final model, and bad data fails with
the field or checkpoint named."""

from __future__ import annotations

import pytest
import torch
from stage_helpers import TwoSecondClock
from stage_helpers import rm_stage as typed_rm_stage
import torch.nn.functional as F

from cascade.engine.local import LocalEngine
from cascade.errors import CascadeError
from cascade.config.recipe import RMStage
from cascade.trainers.rm import encode_pair, split_heldout, train_rm

torch.set_num_threads(1)

PAIRS = [
    {"prompt": "Name a fruit.", "chosen": "Apple.", "rejected": "Carrot is a vegetable I like."},
    {"prompt": "What is 2+2?", "chosen": "4", "rejected": "5"},
    {"prompt": "Say hello.", "chosen": "Hello!", "rejected": "No."},
    {"prompt": "Colour of the sky?", "chosen": "Blue.", "rejected": "Green, always."},
]


def rm_stage(**overrides) -> RMStage:
    """The stage config the tests train with (the recipe's typed stage); the one place that builds it."""
    values = dict(lr=1e-3, batch_size=4, grad_accum=2, max_steps=1, heldout_fraction=0.0, max_seq_len=512, seed=0)
    values.update(overrides)
    return typed_rm_stage(**values)


def scores(engine: LocalEngine, pairs) -> tuple[torch.Tensor, torch.Tensor]:
    """(chosen, rejected) scores, one pair at a time (no padding involved)."""
    chosen, rejected = [], []
    with torch.no_grad():
        for pair in pairs:
            enc = encode_pair(pair, engine.tokenizer)
            for ids, out in ((enc.chosen, chosen), (enc.rejected, rejected)):
                out.append(float(engine.model(input_ids=torch.tensor([ids])).logits[0, 0]))
    return torch.tensor(chosen), torch.tensor(rejected)


def test_a_step_logs_the_bradley_terry_figures_of_its_batch(tiny_model_dir, tmp_path):
    engine = LocalEngine(str(tiny_model_dir), device="cpu", head="score")
    chosen, rejected = scores(engine, PAIRS)
    margin = chosen - rejected
    summary = train_rm(engine, PAIRS, rm_stage(), tmp_path, progress=False)
    metrics = summary["metrics"]
    assert metrics["loss"] == pytest.approx(float(-F.logsigmoid(margin).mean()), rel=1e-4)
    assert metrics["accuracy"] == pytest.approx(float((margin > 0).float().mean()))
    assert metrics["margin"] == pytest.approx(float(margin.mean()), rel=1e-4, abs=1e-6)
    encoded = [encode_pair(p, engine.tokenizer) for p in PAIRS]
    assert metrics["tokens"] == sum(len(e.chosen) + len(e.rejected) for e in encoded)  # both micro-batches


def test_heldout_accuracy_is_the_final_models_on_the_heldout_pairs(tiny_model_dir, tmp_path):
    settings = rm_stage(heldout_fraction=0.5, batch_size=2, max_steps=2)
    engine = LocalEngine(str(tiny_model_dir), device="cpu", head="score")
    summary = train_rm(engine, PAIRS, settings, tmp_path, progress=False)
    _, heldout = split_heldout(len(PAIRS), 0.5, settings.seed)
    chosen, rejected = scores(engine, [PAIRS[i] for i in heldout])
    assert summary["heldout_pairs"] == 2 and summary["pairs"] == 2
    assert summary["heldout_accuracy"] == pytest.approx(float((chosen > rejected).float().mean()))
    assert summary["metrics"]["heldout_accuracy"] == summary["heldout_accuracy"]


def test_bad_data_names_the_field_or_the_checkpoint(tiny_model_dir, tmp_path):
    engine = LocalEngine(str(tiny_model_dir), device="cpu", head="score")
    with pytest.raises(CascadeError) as err:
        train_rm(engine, PAIRS, rm_stage(max_seq_len=4), tmp_path / "a", progress=False)
    assert (err.value.message, err.value.field) == ("no preference pair left to train on (4 given, 4 too long)",
                                                    "max_seq_len")
    with pytest.raises(CascadeError) as err:
        train_rm(engine, [PAIRS[0], {"prompt": "x", "chosen": "y"}], rm_stage(), tmp_path / "b", progress=False)
    assert err.value.message.startswith("preference pair 1: ")
    train_rm(engine, PAIRS, rm_stage(batch_size=2, max_steps=1, save_every=1), tmp_path / "c", progress=False)
    with pytest.raises(CascadeError) as err:
        train_rm(LocalEngine(str(tiny_model_dir), device="cpu", head="score"), PAIRS[:3], rm_stage(max_steps=2),
                 tmp_path / "c", progress=False)
    assert err.value.file == str(tmp_path / "c" / "checkpoints" / "step_00000001")
    assert err.value.message == "checkpoint was made with 4 training pairs, the data now has 3"


def test_pair_accuracy_in_chunks(tiny_model_dir):
    from cascade.trainers.rm import pair_accuracy

    engine = LocalEngine(str(tiny_model_dir), device="cpu", head="score")
    chosen, rejected = scores(engine, PAIRS[:3])
    encoded = [encode_pair(p, engine.tokenizer) for p in PAIRS[:3]]
    expected = float((chosen > rejected).float().mean())
    assert pair_accuracy(engine, encoded, batch_size=2) == pytest.approx(expected)  # chunks of 2 and 1
    assert pair_accuracy(engine, [], batch_size=1) is None


def test_a_step_logs_lr_grad_norm_and_throughput(tiny_model_dir, tmp_path, monkeypatch):
    from cascade.trainers import rm

    monkeypatch.setattr(rm, "time", TwoSecondClock())
    engine = LocalEngine(str(tiny_model_dir), device="cpu", head="score")
    metrics = train_rm(engine, PAIRS, rm_stage(warmup_steps=0), tmp_path, progress=False)["metrics"]
    assert metrics["lr"] == pytest.approx(1e-3) and metrics["grad_norm"] > 0
    assert metrics["tokens_per_s"] == pytest.approx(metrics["tokens"] / 2.0)  # one step, two clock readings


class Crash(Exception):
    pass


def test_a_resumed_rm_stage_repeats_nothing_and_logs_each_step_once(tiny_model_dir, tmp_path):
    import json

    straight = train_rm(LocalEngine(str(tiny_model_dir), device="cpu", head="score"), PAIRS,
                        rm_stage(batch_size=1, grad_accum=1, max_steps=4, epochs=None, save_every=2),
                        tmp_path / "straight", progress=False)
    settings = rm_stage(batch_size=1, grad_accum=1, max_steps=4, epochs=None, save_every=2)
    engine = LocalEngine(str(tiny_model_dir), device="cpu", head="score")
    real_step = engine.optim_step

    def crash_in_step_four():
        if engine.step == 3:  # step 3 is logged, its checkpoint never written
            raise Crash()
        return real_step()

    engine.optim_step = crash_in_step_four
    with pytest.raises(Crash):
        train_rm(engine, PAIRS, settings, tmp_path / "resumed", progress=False)
    summary = train_rm(LocalEngine(str(tiny_model_dir), device="cpu", head="score"), PAIRS, settings,
                       tmp_path / "resumed", progress=False)
    assert (summary["step"], summary["resumed_from"]) == (4, 2)
    rows = [json.loads(line) for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["epoch"]) for r in rows] == [(1, 0), (2, 0), (3, 0), (4, 0)]
    assert summary["metrics"]["loss"] == pytest.approx(straight["metrics"]["loss"], rel=1e-5)
    again = train_rm(LocalEngine(str(tiny_model_dir), device="cpu", head="score"), PAIRS, settings,
                     tmp_path / "resumed", progress=False)
    assert (again["step"], again["resumed_from"], again["metrics"]) == (4, 4, {})


def test_rm_input_errors_keep_their_location(tiny_model_dir, tmp_path):
    with pytest.raises(RuntimeError, match="^train_rm needs an engine built with head='score'$"):
        train_rm(LocalEngine(str(tiny_model_dir), device="cpu"), PAIRS, rm_stage(), tmp_path, progress=False)
    engine = LocalEngine(str(tiny_model_dir), device="cpu", head="score")
    with pytest.raises(CascadeError) as err:
        train_rm(engine, [PAIRS[0], {"prompt": "x", "chosen": "y"}], rm_stage(), tmp_path / "a", progress=False)
    assert err.value.field is not None and err.value.message.startswith("preference pair 1: ")
    # a pair exactly max_seq_len long is kept; one token less drops it
    longest = max(max(len(e.chosen), len(e.rejected)) for e in (encode_pair(p, engine.tokenizer) for p in PAIRS))
    kept = train_rm(engine, PAIRS, rm_stage(max_seq_len=longest), tmp_path / "b", progress=False)
    assert (kept["pairs"], kept["dropped"]) == (4, 0)
    fewer = train_rm(engine, PAIRS, rm_stage(max_seq_len=longest - 1), tmp_path / "c", progress=False)
    assert fewer["dropped"] >= 1 and fewer["pairs"] + fewer["dropped"] == 4

"""SFT trainer: data mixing, loss masks, batching, one step, resume, metrics."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from cascade.data.records import SFTConversation
from cascade.engine.local import LocalEngine
from cascade.errors import CascadeError
from cascade.trainers.batching import plan_epoch
from cascade.config.recipe import SFTStage
from pydantic import ValidationError
from stage_helpers import sft_stage
from cascade.trainers.sft import encode_record, encode_records, mix_sources, token_mask_from_spans, train_sft

torch.set_num_threads(1)


def record(question: str, answer: str, mode: str = "no_think") -> dict:
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}], "mode": mode}


RECORDS = [
    record("What is 2+2?", "<think>\n2 plus 2\n</think>\n\n4", "think"),
    record("Name a colour.", "Blue."),
    record("Say hi.", "Hi!"),
    record("Capital of France?", "<think>\nFrance's capital\n</think>\n\nParis", "think"),
    record("Count to three.", "1, 2, 3."),
    record("Opposite of hot?", "Cold."),
    record("Spell cat.", "C-A-T."),
    record("What is 3*3?", "<think>\nthree threes\n</think>\n\n9", "think"),
]


def test_mix_sources_upsamples_deterministically():
    a, b, c = ["a0", "a1"], ["b0", "b1", "b2", "b3"], ["c0", "c1", "c2", "c3"]
    mixed = mix_sources([(a, 2.0), (b, 1.5), (c, 0.5)], seed=3)
    assert mixed[:4] == ["a0", "a1", "a0", "a1"]  # 2.0: every record twice
    b_part, c_part = mixed[4:10], mixed[10:]
    assert b_part[:4] == b and len(set(b_part[4:])) == 2 and set(b_part[4:]) <= set(b)  # 1.5: once + half again
    assert len(c_part) == 2 and len(set(c_part)) == 2 and set(c_part) <= set(c)  # 0.5: a half
    assert mix_sources([(a, 2.0), (b, 1.5), (c, 0.5)], seed=3) == mixed
    assert mix_sources([(a, 1.0)], seed=0) == a
    with pytest.raises(CascadeError):
        mix_sources([(a, -1.0)], seed=0)


def test_token_mask_from_spans_by_overlap():
    offsets = [(0, 3), (3, 5), (5, 9), (9, 12), (12, 12)]
    assert token_mask_from_spans(offsets, [(4, 9)]) == [0, 1, 1, 0, 0]
    assert token_mask_from_spans(offsets, [(0, 3), (9, 12)]) == [1, 0, 0, 1, 0]


def test_final_turn_training_masks_only_the_final_assistant_turn(tiny_model_dir):
    engine = LocalEngine(str(tiny_model_dir), device="cpu")
    conversation = {
        "messages": [
            {"role": "user", "content": "First question?"},
            {"role": "assistant", "content": "<think>\nold reasoning\n</think>\n\nOld answer."},
            {"role": "user", "content": "Second question?"},
            {"role": "assistant", "content": "<think>\nnew reasoning\n</think>\n\nNew answer."},
        ],
        "mode": "think",
        "train_turns": "final",
    }
    example = encode_record(SFTConversation.model_validate(conversation), engine.tokenizer)
    trained = [t for t, m in zip(example.input_ids, example.loss_mask) if m]
    untrained = [t for t, m in zip(example.input_ids, example.loss_mask) if not m]
    assert engine.tokenizer.decode(trained) == "<think>\nnew reasoning\n</think>\n\nNew answer.<|im_end|>"
    context = engine.tokenizer.decode(untrained)
    assert "Old answer." in context and "old reasoning" not in context  # history folded, not trained
    assert context.endswith("<|im_start|>assistant\n\n")  # the prompt before, the newline after the turn
    # Instruct mode: no think block in the target (one turn: the same under either choice).
    plain = encode_record(record("Say hi.", "Hi!"), engine.tokenizer)
    assert engine.tokenizer.decode([t for t, m in zip(plain.input_ids, plain.loss_mask) if m]) == "Hi!<|im_end|>"


def _masked_runs(example) -> list[list[int]]:
    """The token ids of each contiguous run of trained tokens, in order."""
    runs, current = [], []
    for token, trained in zip(example.input_ids, example.loss_mask):
        if trained:
            current.append(token)
        elif current:
            runs, current = runs + [current], []
    return runs + [current] if current else runs


MULTI_STEP = {
    "mode": "think",
    "tools": [{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}],
    "messages": [
        {"role": "user", "content": "Hello?"},
        {"role": "assistant", "content": "<think>\ngreet\n</think>\n\nHi there."},
        {"role": "user", "content": "What time is it?"},
        {"role": "assistant", "content": "<think>\nneed tool\n</think>\n\n",
         "tool_calls": [{"name": "get_time", "arguments": {}}]},
        {"role": "tool", "content": "12:00"},
        {"role": "assistant", "content": "<think>\nthe tool said noon\n</think>\n\nIt is noon."},
    ],
}


def test_every_turn_training_masks_each_assistant_turn_and_nothing_else(tiny_model_dir):
    engine = LocalEngine(str(tiny_model_dir), device="cpu")
    example = encode_record(SFTConversation.model_validate({**MULTI_STEP, "train_turns": "all"}), engine.tokenizer)
    runs = [engine.tokenizer.decode(run) for run in _masked_runs(example)]
    assert runs == [
        "Hi there.<|im_end|>",  # before the last user turn: folded to its summary, as rendered
        '<think>\nneed tool\n</think>\n\n<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call><|im_end|>',
        "<think>\nthe tool said noon\n</think>\n\nIt is noon.<|im_end|>",
    ]
    untrained = engine.tokenizer.decode([t for t, m in zip(example.input_ids, example.loss_mask) if not m])
    for context in ("<tools>", "Hello? /no_think", "What time is it? /think", "<tool_response>\n12:00"):
        assert context in untrained
    # The paper's default (records.DEFAULT_TRAIN_TURNS) is every turn; "final" keeps the last only.
    default = encode_record(SFTConversation.model_validate(MULTI_STEP), engine.tokenizer)
    assert default.loss_mask == example.loss_mask
    final = encode_record(SFTConversation.model_validate({**MULTI_STEP, "train_turns": "final"}), engine.tokenizer)
    assert [engine.tokenizer.decode(run) for run in _masked_runs(final)] == runs[-1:]


def test_a_recipe_source_sets_the_trained_turns_of_its_records(tmp_path):
    from cascade.config.recipe import DataSource
    from cascade.pipeline.sources import load_sources

    path = tmp_path / "sft.jsonl"
    path.write_text(json.dumps(MULTI_STEP) + "\n" + json.dumps({**MULTI_STEP, "train_turns": "all"}) + "\n")
    records, _ = load_sources([DataSource(path=str(path), train_turns="final")], tmp_path, "sft")
    assert [r.train_turns for r in records] == ["final", "final"]
    records, _ = load_sources([DataSource(path=str(path))], tmp_path, "sft")
    assert [r.train_turns for r in records] == [None, "all"]


def test_too_long_records_are_dropped(tiny_model_dir):
    engine = LocalEngine(str(tiny_model_dir), device="cpu")
    lengths = [len(encode_record(r, engine.tokenizer).input_ids) for r in RECORDS[:3]]
    kept, dropped = encode_records(RECORDS[:3], engine.tokenizer, max_seq_len=sorted(lengths)[1])
    assert len(kept) == 2 and dropped == 1
    assert max(len(e.input_ids) for e in kept) <= sorted(lengths)[1]


def test_plan_epoch_is_a_seeded_partition_with_length_sorted_micro_batches():
    lengths = [5, 9, 1, 7, 3, 8, 2]
    plans = plan_epoch(lengths, batch_size=3, grad_accum=2, seed=1, epoch=0)
    assert plans == plan_epoch(lengths, batch_size=3, grad_accum=2, seed=1, epoch=0)
    assert plans != plan_epoch(lengths, batch_size=3, grad_accum=2, seed=1, epoch=1)
    flat = [i for plan in plans for micro in plan for i in micro]
    assert sorted(flat) == list(range(7))  # every example once
    assert [sum(len(m) for m in plan) for plan in plans] == [3, 3, 1]
    assert [len(plan) for plan in plans] == [2, 2, 1]  # the last, single-example batch has one micro-batch
    for plan in plans:
        ordered = [lengths[i] for micro in plan for i in micro]
        assert ordered == sorted(ordered, reverse=True)


def settings(**overrides) -> SFTStage:
    values = dict(lr=1e-3, batch_size=2, grad_accum=2, max_seq_len=256, scheduler="cosine", warmup_steps=1, seed=0)
    values.update(overrides)
    return sft_stage(**values)


def final_weights(run_dir) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "final" / "model.safetensors"))


def test_one_step_trains_saves_and_reloads(tiny_model_dir, tmp_path):
    engine = LocalEngine(str(tiny_model_dir), device="cpu")
    before = {k: v.clone() for k, v in engine.model.state_dict().items()}
    summary = train_sft(engine, RECORDS, settings(max_steps=1), tmp_path, progress=False)
    assert summary["step"] == 1 and summary["dropped"] == 0 and summary["examples"] == 8
    after = engine.model.state_dict()
    assert any(not torch.equal(after[k], before[k]) for k in before)
    reloaded = LocalEngine(summary["final"], device="cpu")
    for name, value in after.items():
        assert torch.equal(value, reloaded.model.state_dict()[name]), name
    assert not (tmp_path / "final" / "optimizer.pt").exists()  # a plain HF checkpoint
    assert (tmp_path / "checkpoints" / "step_00000001" / "optimizer.pt").is_file()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1]
    assert rows[0]["loss"] > 0 and rows[0]["tokens_per_s"] > 0 and rows[0]["target_tokens"] > 0
    assert rows[0]["lr"] == pytest.approx(1e-3)  # warmup of 1 step reaches the peak at once


class Crash(Exception):
    pass


def test_resume_after_a_crash_reproduces_the_uninterrupted_run(tiny_model_dir, tmp_path):
    cfg = settings(save_every=2, keep_checkpoints=1)  # 8 records / batch 2 = 4 updates
    straight = LocalEngine(str(tiny_model_dir), device="cpu")
    train_sft(straight, RECORDS, cfg, tmp_path / "straight", progress=False)

    crashing = LocalEngine(str(tiny_model_dir), device="cpu")
    real_step = crashing.optim_step

    def step_then_crash():
        if crashing.step == 2:  # the checkpoint of update 2 is on disk; die during update 3
            raise Crash()
        return real_step()

    crashing.optim_step = step_then_crash
    with pytest.raises(Crash):
        train_sft(crashing, RECORDS, cfg, tmp_path / "resumed", progress=False)
    assert not (tmp_path / "resumed" / "final").exists()

    fresh = LocalEngine(str(tiny_model_dir), device="cpu")
    summary = train_sft(fresh, RECORDS, cfg, tmp_path / "resumed", progress=False)
    assert summary["resumed_from"] == 2 and summary["step"] == 4
    expected, got = final_weights(tmp_path / "straight"), final_weights(tmp_path / "resumed")
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name  # exact on CPU with fixed seeds
    rows = [json.loads(line) for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    straight_rows = [json.loads(line) for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]  # no duplicate lines after the resume
    assert [r["loss"] for r in rows] == [r["loss"] for r in straight_rows]


def test_bad_settings_are_errors_naming_the_key():
    with pytest.raises(ValidationError, match="packing is not supported"):
        sft_stage(packing=True)
    with pytest.raises(ValidationError, match="max_seq_length"):
        sft_stage(max_seq_length=10)
    with pytest.raises(ValidationError, match="grad_accum"):
        sft_stage(batch_size=2, grad_accum=4)


def test_planned_steps_by_hand():
    assert sft_stage(batch_size=4, epochs=2).planned_steps(10) == 6  # ceil(10/4) = 3 per epoch
    # max_steps wins over epochs (the Hugging Face convention): cut short or cycled
    assert sft_stage(batch_size=4, epochs=2, max_steps=5).planned_steps(10) == 5
    assert sft_stage(batch_size=4, epochs=1, max_steps=7).planned_steps(10) == 7
    assert sft_stage(batch_size=4, epochs=None, max_steps=7).planned_steps(10) == 7  # cycles the data
    with pytest.raises(ValidationError, match="max_steps"):
        sft_stage(epochs=None, max_steps=None)


def test_a_bad_record_is_named_by_its_index(tiny_model_dir):
    engine = LocalEngine(str(tiny_model_dir), device="cpu")
    bad = {"messages": [{"role": "user", "content": "Hi"}, {"role": "user", "content": "Hello?"}], "mode": "think"}
    with pytest.raises(CascadeError, match="SFT record 1"):
        encode_records([RECORDS[0], bad], engine.tokenizer, max_seq_len=512)
    with pytest.raises(CascadeError, match="SFT record 0") as info:
        encode_records([{**RECORDS[0], "mode": "fast"}], engine.tokenizer, max_seq_len=512)
    assert info.value.field == "mode"


def test_tool_calling_record_trains_the_call_and_lists_the_tools(tiny_model_dir):
    engine = LocalEngine(str(tiny_model_dir), device="cpu")
    conversation = SFTConversation.model_validate({
        "mode": "think",
        "tools": [{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}],
        "messages": [
            {"role": "user", "content": "Time?"},
            {"role": "assistant", "content": "<think>\nneed tool\n</think>\n\n",
             "tool_calls": [{"type": "function", "function": {"name": "get_time", "arguments": {}}}]},
        ],
    })
    example = encode_record(conversation, engine.tokenizer)
    trained = engine.tokenizer.decode([t for t, m in zip(example.input_ids, example.loss_mask) if m])
    assert trained == '<think>\nneed tool\n</think>\n\n<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call><|im_end|>'
    assert "<tools>" in engine.tokenizer.decode(example.input_ids)

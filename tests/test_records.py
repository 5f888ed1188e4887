"""The data contract: record kinds, readers, writers and their error messages."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from cascade.data import (
    Prediction,
    PreferencePair,
    PromptRecord,
    SFTConversation,
    append_jsonl,
    count_rows,
    is_hub_id,
    iter_records,
    load_dataset_source,
    read_records,
    record_messages,
    record_model,
    write_jsonl,
    write_parquet,
)
from cascade.errors import CascadeError

SFT = {
    "id": "s1",
    "messages": [
        {"role": "system", "content": "You are a helpful and harmless assistant."},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "<think>2+2=4</think>\n4"},
    ],
    "mode": "think",
    "source": "toy",
}
PREFERENCE = {"prompt": "Say hi.", "chosen": "Hi!", "rejected": "No.", "id": 7}
PROMPT = {
    "id": 1000,
    "prompt": "Write two paragraphs.",
    "verifier": "instruction_following",
    "ground_truth": {"instruction_id_list": ["paragraphs:paragraphs"], "kwargs": [{"num_paragraphs": 2}]},
    "dataset": "ifeval",  # an outside tool's field: kept
}
PREDICTION = {
    "id": "m1",
    "messages": [{"role": "user", "content": "1+1?"}],
    "verifier": "math",
    "ground_truth": "2",
    "meta": {"source": "toy"},
    "completion": "<think>easy</think>\n\\boxed{2}",
}


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _error(fn, *args) -> str:
    with pytest.raises(CascadeError) as info:
        fn(*args)
    text = info.value.format()
    assert "\n" not in text
    return text


# ---------------------------------------------------------------- each kind loads


def test_each_kind_loads_with_types_and_extra_fields_kept(tmp_path):
    for kind, row, model in [
        ("sft", SFT, SFTConversation),
        ("preference", PREFERENCE, PreferencePair),
        ("prompt", PROMPT, PromptRecord),
        ("prediction", PREDICTION, Prediction),
    ]:
        path = _write_lines(tmp_path / f"{kind}.jsonl", [json.dumps(row), "", json.dumps(row)])
        records = read_records(path, kind)
        assert len(records) == 2  # the empty line is skipped
        assert all(type(r) is model for r in records)

    sft = read_records(tmp_path / "sft.jsonl", "sft")[0]
    assert sft.mode == "think" and sft.messages[2].role == "assistant"
    pref = read_records(tmp_path / "preference.jsonl", "preference")[0]
    assert pref.id == "7"  # integer ids become strings
    prompt = read_records(tmp_path / "prompt.jsonl", "prompt")[0]
    assert prompt.id == "1000"
    assert prompt.ground_truth["kwargs"] == [{"num_paragraphs": 2}]
    assert prompt.meta == {}
    assert prompt.model_dump()["dataset"] == "ifeval"
    pred = read_records(tmp_path / "prediction.jsonl", "prediction")[0]
    assert pred.completion.endswith("\\boxed{2}") and pred.meta == {"source": "toy"}


def test_json_array_files_read_with_element_lines(tmp_path):
    path = tmp_path / "rows.json"
    path.write_text('[\n  {"id": 1, "prompt": "a", "verifier": "math", "ground_truth": "1"},\n'
                    '  {"id": 2, "prompt": "b", "verifier": "math"}\n]\n', encoding="utf-8")
    assert _error(read_records, path, "prompt") == f"{path}:3: field 'ground_truth': required key missing"


def test_null_ground_truth_is_allowed_but_missing_is_not():
    assert PromptRecord.model_validate({"id": "r", "prompt": "hi", "verifier": "rlhf", "ground_truth": None})
    with pytest.raises(ValueError):
        PromptRecord.model_validate({"id": "r", "prompt": "hi", "verifier": "rlhf"})


def test_openai_tool_calls_are_flattened_and_null_content_accepted():
    record = SFTConversation.model_validate({
        "mode": "think",
        "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": None,
             "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]},
            {"role": "tool", "content": "{\"temp\": 3}"},
            {"role": "assistant", "content": "3 degrees."},
        ],
    })
    call = record.messages[1].tool_calls[0]
    assert (call.name, call.arguments, record.messages[1].content) == ("get_weather", {"city": "Oslo"}, "")


def test_record_messages_turns_prompt_into_one_user_turn():
    assert record_messages(PromptRecord.model_validate(PROMPT)) == [
        {"role": "user", "content": "Write two paragraphs."}
    ]
    assert record_messages({"prompt": "x"}) == [{"role": "user", "content": "x"}]
    assert record_messages(Prediction.model_validate(PREDICTION)) == [{"role": "user", "content": "1+1?"}]


# ---------------------------------------------------------------- errors name file:line and field


def test_malformed_json_on_line_3(tmp_path):
    good = json.dumps(PROMPT)
    path = _write_lines(tmp_path / "bad.jsonl", [good, good, '{"id": "x", "prompt": '])
    assert _error(read_records, path, "prompt").startswith(f"{path}:3: malformed JSON: ")


def test_missing_ground_truth_on_line_2(tmp_path):
    row = {k: v for k, v in PROMPT.items() if k != "ground_truth"}
    path = _write_lines(tmp_path / "bad.jsonl", [json.dumps(PROMPT), json.dumps(row)])
    assert _error(read_records, path, "prompt") == f"{path}:2: field 'ground_truth': required key missing"


def test_wrong_type_in_message_content(tmp_path):
    row = {**SFT, "messages": [{"role": "user", "content": ["not", "a", "string"]}, SFT["messages"][2]]}
    path = _write_lines(tmp_path / "bad.jsonl", [json.dumps(row)])
    assert _error(read_records, path, "sft").startswith(
        f"{path}:1: field 'messages[0].content': input should be a valid string"
    )


def test_bad_role_names_the_allowed_roles(tmp_path):
    row = {**SFT, "messages": [SFT["messages"][1], {"role": "bot", "content": "hi"}]}
    path = _write_lines(tmp_path / "bad.jsonl", [json.dumps(row)])
    message = _error(read_records, path, "sft")
    assert message.startswith(f"{path}:1: field 'messages[1].role': ")
    assert "'assistant'" in message and "'bot'" in message


def test_prompt_and_messages_are_exclusive(tmp_path):
    row = {**PROMPT, "messages": [{"role": "user", "content": "x"}]}
    path = _write_lines(tmp_path / "bad.jsonl", [json.dumps(row)])
    assert "exactly one of 'prompt' or 'messages' (both given)" in _error(read_records, path, "prompt")


def test_non_object_line_and_unknown_suffix(tmp_path):
    path = _write_lines(tmp_path / "bad.jsonl", ["[1, 2]"])
    assert _error(read_records, path, "prompt") == f"{path}:1: expected a JSON object, got list"
    other = tmp_path / "rows.csv"
    other.write_text("a,b\n")
    assert "unknown data file type '.csv'" in _error(read_records, other, "prompt")
    assert _error(read_records, tmp_path / "absent.jsonl", "prompt") == f"{tmp_path / 'absent.jsonl'}: no such data file"


def test_streaming_reader_yields_good_rows_before_the_bad_one(tmp_path):
    path = _write_lines(tmp_path / "mixed.jsonl", [json.dumps(PROMPT), "not json"])
    stream = iter_records(path, "prompt")
    assert next(stream).id == "1000"
    with pytest.raises(CascadeError, match=":2: malformed JSON"):
        next(stream)


# ---------------------------------------------------------------- writers


def test_jsonl_round_trip_keeps_what_was_given(tmp_path):
    records = [PromptRecord.model_validate(PROMPT), PromptRecord.model_validate({**PROMPT, "id": 2, "ground_truth": None})]
    path = tmp_path / "out" / "prompts.jsonl"
    assert write_jsonl(path, records) == 2
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert rows[0] == {**PROMPT, "id": "1000"}  # no defaults (meta) frozen into the file
    assert rows[1]["ground_truth"] is None
    assert read_records(path, "prompt") == records


def test_append_jsonl_adds_after_existing_rows(tmp_path):
    path = tmp_path / "preds.jsonl"
    path.write_text(json.dumps(PREDICTION), encoding="utf-8")  # no trailing newline
    assert append_jsonl(path, [{**PREDICTION, "id": "m2"}]) == 1
    assert [r.id for r in read_records(path, "prediction")] == ["m1", "m2"]
    assert append_jsonl(tmp_path / "new.jsonl", [PREDICTION]) == 1
    assert count_rows(tmp_path / "new.jsonl") == 1


def test_atomic_write_leaves_no_partial_file_when_the_writer_raises(tmp_path):
    path = tmp_path / "data.jsonl"
    write_jsonl(path, [PROMPT])
    before = path.read_bytes()

    def rows_then_crash():
        yield PROMPT
        yield PROMPT
        raise RuntimeError("generator died mid-way")

    with pytest.raises(RuntimeError):
        write_jsonl(path, rows_then_crash())
    assert path.read_bytes() == before
    with pytest.raises(RuntimeError):
        append_jsonl(path, rows_then_crash())
    assert path.read_bytes() == before
    with pytest.raises(RuntimeError):
        write_jsonl(tmp_path / "fresh.jsonl", rows_then_crash())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.jsonl"]  # no temp files left


def test_parquet_round_trip(tmp_path):
    pytest.importorskip("pyarrow")
    records = [
        Prediction.model_validate(PREDICTION),
        # A dict ground truth next to a string one, different meta keys, an empty meta:
        # columns Arrow cannot hold losslessly go through JSON text.
        Prediction.model_validate({**PROMPT, "completion": "x", "meta": {"k": [1, 2.5]}}),
        Prediction.model_validate({**PREDICTION, "id": "m3", "meta": {}}),
    ]
    path = tmp_path / "preds.parquet"
    assert write_parquet(path, records) == 3
    back = read_records(path, "prediction")
    assert [r.model_dump(exclude={"dataset"}) for r in back] == [r.model_dump(exclude={"dataset"}) for r in records]
    assert back[1].model_dump()["dataset"] == "ifeval"
    assert back[0].model_dump()["dataset"] is None  # a column exists in every Parquet row
    assert count_rows(path) == 3


def test_parquet_errors_name_the_row_index(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.table({"id": ["a", "b"], "prompt": ["p", "q"], "verifier": ["math", None], "ground_truth": ["1", "2"]})
    path = tmp_path / "outside.parquet"
    pq.write_table(table, path)
    message = _error(read_records, path, "prompt")
    assert message.startswith(f"{path} row 1: field 'verifier': input should be a valid string")


def test_missing_pyarrow_gives_install_hint(tmp_path, monkeypatch):
    path = tmp_path / "x.parquet"
    path.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    assert "pip install pyarrow" in _error(read_records, path, "prompt")


# ---------------------------------------------------------------- sources: local path or hub id


def test_is_hub_id(tmp_path):
    assert is_hub_id("nvidia/Nemotron-Cascade-RL-Math")
    assert is_hub_id("gsm8k")
    assert not is_hub_id("data/train.jsonl")
    assert not is_hub_id("./rows")
    assert not is_hub_id(str(tmp_path))  # exists locally
    assert not is_hub_id("a/b/c")


def test_load_dataset_source_local_with_limit(tmp_path):
    path = _write_lines(tmp_path / "p.jsonl", [json.dumps({**PROMPT, "id": i}) for i in range(5)])
    assert [r.id for r in load_dataset_source(str(path), "prompt", limit=2)] == ["0", "1"]
    assert load_dataset_source(str(path), limit=1)[0]["id"] == 0  # no kind: raw dicts
    with pytest.raises(CascadeError, match="apply to hub datasets"):
        load_dataset_source(str(path), split="test")


class _FakeDataset(list):
    def select(self, indices):
        return _FakeDataset(self[i] for i in indices)


def test_load_dataset_source_hub_passes_split_and_config(monkeypatch):
    calls = []

    def load_dataset(source, name, split):
        calls.append((source, name, split))
        return _FakeDataset([{**PROMPT, "id": i} for i in range(4)] + [{"id": "bad"}])

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    rows = load_dataset_source("org/set", "prompt", name="cfg", split="test", limit=3)
    assert [r.id for r in rows] == ["0", "1", "2"] and calls == [("org/set", "cfg", "test")]
    message = _error(load_dataset_source, "org/set", "prompt")
    assert message.startswith("hub:org/set[train] row 4: field ")


def test_load_dataset_source_hub_failure_is_one_clear_line(monkeypatch):
    def load_dataset(source, name, split):
        raise ConnectionError("Couldn't reach 'org/set' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    message = _error(load_dataset_source, "org/set")
    assert message.startswith("hub:org/set[train]: could not load this hub dataset (Couldn't reach")
    assert "pass a local .jsonl or .parquet path" in message


def test_shared_benchmark_files_read_as_raw_rows(shared_data):
    rows = load_dataset_source(str(shared_data / "aime25" / "test.jsonl"), limit=2)
    assert len(rows) == 2 and "expected_answer" in rows[0]
    assert count_rows(shared_data / "aime25" / "test.jsonl") == 30


def test_the_examples_in_docs_records_md_are_valid():
    docs = (Path(__file__).resolve().parents[1] / "docs" / "records.md").read_text(encoding="utf-8")
    checked = []
    for kind in ("sft", "preference", "prompt", "prediction"):
        section = docs.split(f"## `{kind}`", 1)[1]
        example = section.split("```json\n", 1)[1].split("```", 1)[0]
        checked.append(type(record_model(kind).model_validate(json.loads(example))).__name__)
    assert checked == ["SFTConversation", "PreferencePair", "PromptRecord", "Prediction"]


def test_atomic_write_gives_new_files_normal_permissions(tmp_path):
    path = tmp_path / "shared.jsonl"
    write_jsonl(path, [PROMPT])
    assert path.stat().st_mode & 0o777 == 0o644
    path.chmod(0o664)
    append_jsonl(path, [PROMPT])
    assert path.stat().st_mode & 0o777 == 0o664

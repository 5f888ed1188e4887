"""The adapter registry: every format detected from its own rows, ambiguous and unknown
rows refused with a request for ``format:``, and adapt_rows over a real file whose bad
row is reported with file, line and every bad field."""

from __future__ import annotations

import json

import pytest

from cascade.data.adapters import ADAPTERS, AdapterRowError, adapt_rows, detect_format, matching_formats
from cascade.data.io import RowPlace, iter_rows
from cascade.errors import CascadeError

# One hand-written row per format, built from the field lists in docs/adapters.md.
ROWS = {
    "records": {"id": "a", "prompt": "1+1?", "verifier": "math", "ground_truth": "2"},
    "nemotron_sft": {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
                     "thinking": False, "category": "general", "source": "s"},
    "nemotron_math": {"problem": "1+1?", "answer": "2", "source": "NuminaMath-CoT"},
    "nemotron_if": {"prompt": [{"role": "user", "content": "No commas."}],
                    "instruction_id_list": ["punctuation:no_comma"], "kwargs": [None], "index": 0},
    "nemotron_swe": {"prompt": "fix", "golden_patch": "--- a/x\n+++ b/x\n", "instance_id": "x-1",
                     "relevant_file_contents": [{"file_path": "x", "content": ""}], "source": "s"},
    "nemo_gym": {"responses_create_params": {"input": [{"role": "user", "content": "q"}]},
                 "expected_answer": "3", "agent_ref": {"name": "math_agent"}},
    "trl": {"prompt": [{"role": "user", "content": "q"}], "chosen": [{"role": "assistant", "content": "a"}],
            "rejected": [{"role": "assistant", "content": "b"}]},
    "allenai_if": {"key": "k", "messages": [{"role": "user", "content": "q"}], "dataset": "ifeval",
                   "ground_truth": json.dumps([{"instruction_id": ["punctuation:no_comma"], "kwargs": [None]}]),
                   "constraint_type": "single", "constraint": "No commas."},
    "lcb": {"question_content": "q", "public_test_cases": json.dumps([{"input": "1", "output": "1", "testtype": "stdin"}]),
            "private_test_cases": "", "metadata": "{}", "question_id": "1", "starter_code": ""},
    "taco": {"question": "q", "input_output": json.dumps({"inputs": ["1"], "outputs": ["1"]}), "starter_code": ""},
    "deepcoder": {"problem": "q", "tests": json.dumps([{"input": "1", "output": "1"}])},
    "verl": {"data_source": "openai/gsm8k", "prompt": [{"role": "user", "content": "q"}], "ability": "math",
             "reward_model": {"style": "rule", "ground_truth": "1"}, "extra_info": {"index": 0}},
}
KIND = {"nemotron_sft": "sft", "trl": "preference"}


def test_every_format_has_a_fixture_and_is_detected_from_it():
    assert set(ROWS) == set(ADAPTERS)
    for name, row in ROWS.items():
        assert matching_formats(row) == [name], name
        assert detect_format(row) == name


@pytest.mark.parametrize("name", sorted(ROWS))
def test_every_fixture_converts_to_a_valid_record(name):
    kind = KIND.get(name, "prompt")
    record = ADAPTERS[name].convert(ROWS[name], RowPlace("f.jsonl", line=1), kind)
    assert isinstance(record, dict) and record


def test_every_adapter_declares_kinds_it_can_build():
    for adapter in ADAPTERS.values():
        assert adapter.kinds and set(adapter.kinds) <= {"sft", "preference", "prompt"}
        assert adapter.name and adapter.summary


def test_plain_trl_preference_reads_as_records_the_same_shape():
    row = {"prompt": "q", "chosen": "a", "rejected": "b"}
    assert detect_format(row) == "records"


def test_ambiguous_and_unknown_rows_detect_nothing():
    both = {**ROWS["nemotron_math"], **ROWS["nemotron_swe"]}
    assert set(matching_formats(both)) == {"nemotron_math", "nemotron_swe"}
    assert detect_format(both) is None
    assert detect_format({"foo": 1}) is None


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_adapt_rows_detects_from_the_first_row(tmp_path):
    path = write_jsonl(tmp_path / "math.jsonl", [ROWS["nemotron_math"], {"problem": "2+2?", "answer": 4}])
    records = list(adapt_rows(iter_rows(path), None, "prompt"))
    assert [r["ground_truth"] for r in records] == ["2", "4"]
    assert [r["id"] for r in records] == ["math-1", "math-2"]


def test_adapt_rows_ambiguous_first_row_asks_for_format(tmp_path):
    path = write_jsonl(tmp_path / "mixed.jsonl", [{**ROWS["nemotron_math"], **ROWS["nemotron_swe"]}])
    with pytest.raises(CascadeError) as info:
        list(adapt_rows(iter_rows(path), None, "prompt"))
    message = str(info.value)
    assert message.startswith(f"{path}:1: cannot tell the data format")
    assert "nemotron_math, nemotron_swe" in message and "set `format:`" in message
    # an explicit format settles it
    (record,) = adapt_rows(iter_rows(path), "nemotron_swe", "prompt")
    assert record["verifier"] == "swe"


def test_adapt_rows_unknown_first_row_and_unknown_format(tmp_path):
    path = write_jsonl(tmp_path / "odd.jsonl", [{"foo": 1, "bar": 2}])
    with pytest.raises(CascadeError, match=r"fields \(bar, foo\) match no known format"):
        list(adapt_rows(iter_rows(path), None, "prompt"))
    with pytest.raises(CascadeError, match="unknown data format 'nemotron'") as info:
        list(adapt_rows(iter_rows(path), "nemotron", "prompt"))
    assert info.value.field == "format"


def test_bad_row_names_file_line_and_every_bad_field(tmp_path):
    bad = {"prompt": [{"role": "robot", "content": "q"}], "instruction_id_list": ["a:b", 7],
           "kwargs": [None, "{oops"], "index": 1}
    path = write_jsonl(tmp_path / "if.jsonl", [ROWS["nemotron_if"], ROWS["nemotron_if"], bad])
    with pytest.raises(AdapterRowError) as info:
        list(adapt_rows(iter_rows(path), "nemotron_if", "prompt"))
    error = info.value
    assert (error.file, error.line) == (str(path), 3)
    assert [f for f, _ in error.problems] == ["prompt[0].role", "instruction_id_list", "kwargs[1]"]
    text = str(error)
    assert text.startswith(f"{path}:3: field 'prompt[0].role': ")
    assert "field 'instruction_id_list'" in text and "field 'kwargs[1]'" in text
    assert "(format 'nemotron_if') [3 bad fields]" in text


def test_records_format_is_identity_and_lists_every_schema_error():
    row = ROWS["records"]
    assert ADAPTERS["records"].convert(row, RowPlace("r.jsonl", line=1), "prompt") == row
    with pytest.raises(AdapterRowError) as info:
        ADAPTERS["records"].convert({"prompt": "q", "verifier": 3}, RowPlace("r.jsonl", line=4), "prompt")
    assert {f for f, _ in info.value.problems} == {"id", "verifier", "ground_truth"}
    assert info.value.line == 4


def test_parquet_rows_name_their_row_index(tmp_path):
    pytest.importorskip("pyarrow")
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "math.parquet"
    pq.write_table(pa.table({"problem": ["ok", None], "answer": ["1", None]}), path)
    with pytest.raises(AdapterRowError) as info:
        list(adapt_rows(iter_rows(path), None, "prompt"))
    assert info.value.file == f"{path} row 1" and info.value.line is None
    assert [f for f, _ in info.value.problems] == ["problem", "answer"]


def test_rows_of_a_one_line_json_array_get_distinct_ids(tmp_path):
    # A released set can be one JSON array on a single line: every item is on line 1, so an
    # id taken from the line alone would repeat.
    path = tmp_path / "math.json"
    rows = [{"problem": f"{n}+1?", "answer": str(n + 1), "source": "s"} for n in range(3)]
    path.write_text(json.dumps(rows))
    records = list(adapt_rows(iter_rows(path), "nemotron_math", "prompt"))
    assert [r["id"] for r in records] == ["math-item0", "math-item1", "math-item2"]

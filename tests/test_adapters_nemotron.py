"""Adapters for the released Nemotron-Cascade sets: SFT, RL-Math, RL-IF, RL-SWE, Cascade 2 RL.

Fixture rows are written here by hand from the documented field lists (docs/adapters.md);
no dataset rows are copied.
"""

from __future__ import annotations

import pytest

from cascade.data.adapters import ADAPTERS, AdapterRowError
from cascade.data.io import RowPlace
from cascade.data.records import record_model

PLACE = RowPlace("train.jsonl", line=7)


def convert(fmt, row, kind="prompt"):
    record = ADAPTERS[fmt].convert(row, PLACE, kind)
    record_model(kind).model_validate(record)  # always a valid record
    return record


def problems(fmt, row, kind="prompt"):
    with pytest.raises(AdapterRowError) as info:
        ADAPTERS[fmt].convert(row, PLACE, kind)
    return info.value


# ---------------------------------------------------------------- SFT (Stage-1/2, SFT-SWE, Cascade 2)

SFT_ROW = {
    "messages": [{"role": "user", "content": "What is 2+3? /think"},
                 {"role": "assistant", "content": "<think>2+3=5</think>\nThe answer is 5."}],
    "thinking": True, "category": "math", "source": "OpenMathReasoning", "generator": "DeepSeek-R1",
}


def test_sft_row_keeps_turns_and_reads_the_thinking_flag():
    record = convert("nemotron_sft", SFT_ROW, "sft")
    assert record["mode"] == "think"
    assert record["messages"] == SFT_ROW["messages"]
    assert record["source"] == "OpenMathReasoning"
    assert record["meta"] == {"category": "math", "generator": "DeepSeek-R1"}
    assert record["id"] == "train-7"


@pytest.mark.parametrize("flag, mode", [(False, "no_think"), ("true", "think"), ("False", "no_think")])
def test_sft_thinking_flag_as_bool_or_text(flag, mode):
    assert convert("nemotron_sft", {**SFT_ROW, "thinking": flag}, "sft")["mode"] == mode


@pytest.mark.parametrize("answer, mode", [("<think>steps</think>\n5", "think"), ("<think>\n</think>\n5", "no_think"),
                                          ("5", "no_think")])
def test_sft_without_flag_reads_the_think_block(answer, mode):
    row = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": answer}],
           "category": "SWE Repair"}
    assert convert("nemotron_sft", row, "sft")["mode"] == mode


def test_sft_bad_row_lists_every_field():
    row = {"messages": [{"role": "bot", "content": "hi"}, {"role": "user", "content": 3}],
           "thinking": "maybe", "generator": "x"}
    error = problems("nemotron_sft", row, "sft")
    fields = [f for f, _ in error.problems]
    assert "thinking" in fields and "messages[1].role" in fields
    assert error.file == "train.jsonl" and error.line == 7


def test_sft_adapter_refuses_other_kinds():
    with pytest.raises(Exception, match="gives sft records, not 'prompt'"):
        ADAPTERS["nemotron_sft"].convert(SFT_ROW, PLACE, "prompt")


# ---------------------------------------------------------------- RL-Math

def test_math_row_becomes_a_boxed_prompt_with_the_answer_as_truth():
    record = convert("nemotron_math", {"problem": "Compute 6*7.", "answer": "42", "source": "DeepScaleR"})
    assert record["verifier"] == "math" and record["ground_truth"] == "42"
    assert record["messages"][0]["content"].startswith("Compute 6*7.\n")
    assert "\\boxed{}" in record["messages"][0]["content"]
    assert record["meta"] == {"source": "DeepScaleR"}


def test_math_numeric_answer_and_existing_box_instruction():
    record = convert("nemotron_math", {"problem": "Put the result in \\boxed{}: 1/2+1/2", "answer": 1.0})
    assert record["ground_truth"] == "1.0"
    assert record["messages"][0]["content"] == "Put the result in \\boxed{}: 1/2+1/2"


def test_math_bad_row_names_both_fields():
    error = problems("nemotron_math", {"problem": ["not", "text"], "answer": None, "source": "x"})
    assert [f for f, _ in error.problems] == ["problem", "answer"]
    assert "train.jsonl:7: field 'problem'" in str(error) and "field 'answer'" in str(error)


# ---------------------------------------------------------------- RL-Instruction-Following

IF_ROW = {
    "prompt": [{"content": "Write a poem titled <<joy>> in under 50 words.", "role": "user"}],
    "instruction_id_list": ["detectable_format:title", "length_constraints:number_words", "punctuation:no_comma"],
    # Parquet struct union: keys that do not apply are null.
    "kwargs": [{"num_words": None, "relation": None}, {"num_words": 50, "relation": "less than"}, None],
    "index": 12,
}


def test_if_row_drops_null_kwargs_keys_and_keeps_null_entries():
    record = convert("nemotron_if", IF_ROW)
    assert record["verifier"] == "instruction_following"
    assert record["ground_truth"] == {
        "instruction_id_list": IF_ROW["instruction_id_list"],
        "kwargs": [{}, {"num_words": 50, "relation": "less than"}, None],
    }
    assert record["messages"] == IF_ROW["prompt"]
    assert record["id"] == "12"
    assert record["meta"]["prompt"].startswith("Write a poem")


def test_if_prompt_as_plain_text_and_kwargs_as_json_text():
    row = {**IF_ROW, "prompt": "Answer in lowercase.", "instruction_id_list": ["change_case:english_lowercase"],
           "kwargs": ["null"]}
    record = convert("nemotron_if", row)
    assert record["prompt"] == "Answer in lowercase." and record["ground_truth"]["kwargs"] == [None]


def test_if_bad_row_lists_every_bad_field():
    row = {"prompt": [{"role": "user", "content": 5}], "instruction_id_list": ["a:b", "c:d"],
           "kwargs": [{"x": 1}, "{not json"]}
    error = problems("nemotron_if", row)
    fields = [f for f, _ in error.problems]
    assert "kwargs[1]" in fields and "prompt[0].content" in fields


def test_if_kwargs_count_mismatch():
    error = problems("nemotron_if", {**IF_ROW, "kwargs": [None]})
    assert error.problems[0][0] == "kwargs" and "1 entries for 3 instructions" in error.problems[0][1]


# ---------------------------------------------------------------- RL-SWE

GOLD = "--- a/pkg/calc.py\n+++ b/pkg/calc.py\n@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n+    return a + b\n"
SWE_ROW = {
    "source": "nebius/SWE-rebench", "instance_id": "pkg__calc-1",
    "prompt": "We are currently solving the following issue within our repository. ...",
    "golden_patch": GOLD,
    "relevant_file_contents": [{"file_path": "pkg/calc.py", "content": "def add(a, b):\n    return a - b\n"}],
    "original_prompt": "add() subtracts",
}


def test_swe_row_becomes_files_plus_gold_patch():
    record = convert("nemotron_swe", SWE_ROW)
    assert record["id"] == "pkg__calc-1" and record["verifier"] == "swe"
    assert record["ground_truth"] == {"files": {"pkg/calc.py": "def add(a, b):\n    return a - b\n"}, "gold_patch": GOLD}
    assert record["meta"] == {"instance_id": "pkg__calc-1", "source": "nebius/SWE-rebench", "issue": "add() subtracts"}


def test_swe_bad_row_lists_every_bad_field():
    row = {**SWE_ROW, "golden_patch": "", "relevant_file_contents": [{"file_path": "a.py", "content": None}]}
    del row["instance_id"]
    fields = [f for f, _ in problems("nemotron_swe", row).problems]
    assert fields == ["golden_patch", "instance_id", "relevant_file_contents[0].content"]


# ---------------------------------------------------------------- Cascade 2 RL data (NeMo-Gym rows)

def gym_row(**fields):
    return {"responses_create_params": {"input": [{"role": "developer", "content": "Be brief."},
                                                  {"role": "user", "content": [{"type": "input_text", "text": "Q?"}]}]},
            "agent_ref": {"type": "responses_api_agents", "name": "x_simple_agent"}, "dataset": "d", **fields}


def test_gym_if_row_with_null_and_text_kwargs():
    row = gym_row(instruction_id_list=["keywords:start_end", "punctuation:no_comma", "detectable_format:title"],
                  kwargs=[None, "{}", {"x": None}], prompt="Q?", id="if-1")
    record = convert("nemo_gym", row)
    assert record["verifier"] == "instruction_following" and record["id"] == "if-1"
    assert record["ground_truth"]["kwargs"] == [None, {}, {}]
    assert record["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q?"}]
    assert record["meta"] == {"dataset": "d", "agent": "x_simple_agent", "prompt": "Q?"}


def test_gym_mcqa_and_math_rows():
    mcq = convert("nemo_gym", gym_row(expected_answer="B", options=[{"A": "red"}, {"B": "blue"}, {"C": "green"}]))
    assert mcq["verifier"] == "mcq" and mcq["ground_truth"] == {"answer": "B", "options": ["red", "blue", "green"]}
    math = convert("nemo_gym", gym_row(expected_answer="17", question="x"))
    assert math["verifier"] == "math" and math["ground_truth"] == "17"


@pytest.mark.parametrize("extra, says", [({"schema_str": "{}"}, "structured-output"),
                                         ({"environment_name": "workbench", "ground_truth": []}, "workbench"),
                                         ({"FAIL_TO_PASS": "[]"}, "SWE-RL")])
def test_gym_rows_without_a_cascade_verifier_say_which_kind(extra, says):
    assert says in str(problems("nemo_gym", gym_row(**extra)))


def test_gym_bad_row_lists_every_bad_field():
    row = gym_row(expected_answer="Z", options=[{"A": "x"}, {"B": 2}])
    row["responses_create_params"] = {"input": [{"role": "user", "content": [{"type": "image"}]}]}
    fields = [f for f, _ in problems("nemo_gym", row).problems]
    assert fields == ["responses_create_params.input[0].content", "options[1].B"]

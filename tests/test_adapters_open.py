"""Adapters for common open formats: TRL columns, allenai IF-RLVR (both ground-truth
layouts) and verl's RL parquet layout (including cascade's own verl export read back)."""

from __future__ import annotations

import json

import pytest

from cascade.data.adapters import ADAPTERS, AdapterRowError
from cascade.data.io import RowPlace
from cascade.data.records import record_model

PLACE = RowPlace("hub:org/set", row=3)


def convert(fmt, row, kind="prompt"):
    record = ADAPTERS[fmt].convert(row, PLACE, kind)
    record_model(kind).model_validate(record)
    return record


def problems(fmt, row, kind="prompt"):
    with pytest.raises(AdapterRowError) as info:
        ADAPTERS[fmt].convert(row, PLACE, kind)
    return info.value


# ---------------------------------------------------------------- TRL

def test_trl_conversational_language_modeling_to_sft():
    row = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "<think>greet</think>Hello"}]}
    record = convert("trl", row, "sft")
    assert record["mode"] == "think" and record["messages"] == row["messages"]


@pytest.mark.parametrize("prompt, completion", [
    ("Capital of France?", "Paris."),
    ([{"role": "user", "content": "Capital of France?"}], [{"role": "assistant", "content": "Paris."}]),
])
def test_trl_prompt_completion_standard_and_conversational(prompt, completion):
    record = convert("trl", {"prompt": prompt, "completion": completion}, "sft")
    assert record["messages"] == [{"role": "user", "content": "Capital of France?"},
                                  {"role": "assistant", "content": "Paris."}]
    assert record["mode"] == "no_think"


def test_trl_preference_explicit_prompt_conversational():
    row = {"prompt": [{"role": "user", "content": "Sky colour?"}],
           "chosen": [{"role": "assistant", "content": "Blue."}], "rejected": [{"role": "assistant", "content": "Green."}]}
    record = convert("trl", row, "preference")
    assert record["messages"] == row["prompt"] and (record["chosen"], record["rejected"]) == ("Blue.", "Green.")


def test_trl_preference_implicit_prompt():
    shared = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Sky colour?"}]
    row = {"chosen": shared + [{"role": "assistant", "content": "Blue."}],
           "rejected": shared + [{"role": "assistant", "content": "Green."}]}
    record = convert("trl", row, "preference")
    assert record["messages"] == shared and record["chosen"] == "Blue." and record["rejected"] == "Green."


def test_trl_prompt_only_is_a_reward_model_prompt():
    record = convert("trl", {"prompt": [{"role": "user", "content": "Tell me a joke."}]})
    assert record["verifier"] == "reward_model" and record["ground_truth"] is None
    assert record["id"] == "set-3"


def test_trl_unsupported_layouts_say_why():
    assert "no roles" in str(problems("trl", {"text": "raw text"}, "sft"))
    assert "unpaired" in str(problems("trl", {"prompt": "p", "completion": "c", "label": True}, "sft"))


def test_trl_bad_preference_lists_every_field():
    row = {"prompt": [{"role": "user", "content": "q"}], "chosen": [{"role": "user", "content": "a"}],
           "rejected": [{"role": "assistant", "content": None}]}
    fields = [f for f, _ in problems("trl", row, "preference").problems]
    assert fields == ["chosen[0]", "rejected[0].content"]


# ---------------------------------------------------------------- allenai IF-RLVR

MULTI = {
    "key": "ifeval_multi_1",
    "messages": [{"role": "user", "content": "Write about rivers. Use at least 3 sentences. Include forest, river."}],
    "ground_truth": json.dumps([{"instruction_id": ["length_constraints:number_sentences", "keywords:existence"],
                                 "kwargs": [{"num_sentences": 3, "relation": "at least", "keywords": None},
                                            {"keywords": ["forest", "river"], "num_sentences": None}]}]),
    "dataset": "ifeval_multi", "constraint_type": "multi", "constraint": "Use at least 3 sentences. ...",
}


def test_allenai_groups_layout_flattens_and_drops_null_keys():
    record = convert("allenai_if", MULTI)
    assert record["id"] == "ifeval_multi_1" and record["verifier"] == "instruction_following"
    assert record["ground_truth"] == {
        "instruction_id_list": ["length_constraints:number_sentences", "keywords:existence"],
        "kwargs": [{"num_sentences": 3, "relation": "at least"}, {"keywords": ["forest", "river"]}],
    }
    assert record["meta"]["constraint_type"] == "multi"


def test_allenai_groups_as_python_literal_text_and_several_groups():
    text = str([{"instruction_id": ["punctuation:no_comma"], "kwargs": [None]},
                {"instruction_id": ["detectable_format:title"], "kwargs": [{}]}])
    record = convert("allenai_if", {**MULTI, "ground_truth": text})
    assert record["ground_truth"] == {"instruction_id_list": ["punctuation:no_comma", "detectable_format:title"],
                                      "kwargs": [None, {}]}


def func_name_truth(func_name, **args):
    keys = ("N", "quantifier", "end_phrase", "keyword_list", "word", "forbidden_words", "letter", "i", "first_word",
            "postscript_marker", "options", "section_splitter", "original_prompt")
    return json.dumps({"func_name": func_name, **{k: args.get(k) for k in keys}})


@pytest.mark.parametrize("func, args, instruction, kwargs", [
    ("verify_bullet_points", {"N": 4}, "detectable_format:number_bullet_lists", {"num_bullets": 4}),
    ("validate_word_constraint", {"N": 100, "quantifier": "at most"}, "length_constraints:number_words",
     {"relation": "less than", "num_words": 101}),
    ("validate_sections", {"N": 2, "section_splitter": "SECTION"}, "detectable_format:multiple_sections",
     {"num_sections": 2, "section_spliter": "SECTION"}),
    ("validate_no_commas", {}, "punctuation:no_comma", {}),
])
def test_allenai_func_name_layout_translates_to_ifeval(func, args, instruction, kwargs):
    row = {"messages": MULTI["messages"], "ground_truth": func_name_truth(func, **args), "dataset": "ifeval"}
    record = convert("allenai_if", row)
    assert record["ground_truth"] == {"instruction_id_list": [instruction], "kwargs": [kwargs]}


@pytest.mark.parametrize("func, args, says", [
    ("verify_keyword_frequency", {"word": "x", "N": 2}, "no IFEval instruction with the same meaning"),
    ("validate_word_constraint", {"N": 10, "quantifier": "around"}, "only 'at least' and 'at most'"),
    ("verify_everything", {}, "is unknown"),
])
def test_allenai_func_name_without_equivalent_is_an_error(func, args, says):
    row = {"messages": MULTI["messages"], "ground_truth": func_name_truth(func, **args), "dataset": "ifeval"}
    assert says in str(problems("allenai_if", row))


def test_allenai_bad_row_lists_every_bad_field():
    row = {**MULTI, "messages": [{"role": "user"}],
           "ground_truth": json.dumps([{"instruction_id": ["a:b"], "kwargs": [1]}, {"kwargs": []}])}
    fields = [f for f, _ in problems("allenai_if", row).problems]
    assert fields == ["messages[0].content", "ground_truth[0].kwargs[0]", "ground_truth[1]"]


# ---------------------------------------------------------------- verl

def verl_row(data_source, ability, truth, **extra):
    return {"data_source": data_source, "prompt": [{"role": "user", "content": "Q"}], "ability": ability,
            "reward_model": {"style": "rule", "ground_truth": truth}, "extra_info": {"split": "train", "index": 5, **extra}}


def test_verl_math_row():
    record = convert("verl", verl_row("openai/gsm8k", "math", "72"))
    assert (record["verifier"], record["ground_truth"], record["id"]) == ("math", "72", "openai/gsm8k-5")


def test_verl_code_row_with_taco_tests():
    truth = json.dumps({"inputs": ["1 2\n"], "outputs": ["3\n"]})
    record = convert("verl", verl_row("taco", "code", truth))
    assert record["ground_truth"] == {"style": "stdin", "tests": [{"input": "1 2\n", "output": "3\n"}]}


def test_verl_reads_back_cascade_export():
    from cascade.cluster.verl_data import verl_rows

    original = {"id": "m-1", "messages": [{"role": "user", "content": "1+1?"}], "verifier": "math",
                "ground_truth": "2", "meta": {"domain": "math"}}
    (row,) = verl_rows([original], data_source="cascade", think_fraction=1.0, seed=0)
    assert convert("verl", row) == original


def test_verl_unknown_source_and_missing_truth():
    error = problems("verl", verl_row("searchR1_nq", "qa", "x"))
    assert error.problems[0][0] == "data_source" and "searchR1_nq" in error.problems[0][1]
    row = verl_row("openai/gsm8k", "math", "1")
    row["reward_model"] = {"style": "rule"}
    assert problems("verl", row).problems[0][0] == "reward_model.ground_truth"


def test_trl_standard_implicit_prompt_splits_before_the_space():
    record = convert("trl", {"chosen": "The sky is blue.", "rejected": "The sky is green."}, "preference")
    assert (record["prompt"], record["chosen"], record["rejected"]) == ("The sky is", " blue.", " green.")
    assert "share no prompt text" in str(problems("trl", {"chosen": "Blue.", "rejected": "Green."}, "preference"))


def test_verl_if_row_in_the_ifeval_layout():
    """Third-party verl conversions of the Nemotron-Cascade IF-RL set keep the IFEval layout
    (with null struct keys) as the ground truth."""
    truth = {"key": 0, "prompt": "Title it.", "instruction_id_list": ["detectable_format:title"],
             "kwargs": [{"num_words": None, "relation": None}]}
    record = convert("verl", verl_row("nemotron_cascade_rl_if", "if", truth))
    assert record["verifier"] == "instruction_following"
    assert record["ground_truth"] == {"instruction_id_list": ["detectable_format:title"], "kwargs": [{}]}
    assert record["meta"]["prompt"] == "Title it."
    assert convert("verl", verl_row("x", "if", json.dumps(truth)))["ground_truth"] == record["ground_truth"]

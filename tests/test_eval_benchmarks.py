"""Benchmark loaders read the public files in shared/data and fail clearly on a wrong format."""

from __future__ import annotations

import json

import pytest

from cascade.errors import CascadeError
from cascade.eval.benchmarks import BENCHMARKS, get_benchmark, parse_benchmark_spec

# Row counts of the public data copies the tests read (MBPP: the test split 11-510; LCB: the
# local file holds the 279 v5-window problems only).
EXPECTED = {
    "aime24": 30, "aime25": 30, "math500": 500, "gsm8k": 1319, "mmlu_pro": 12030, "ifeval": 541,
    "ifbench": 300, "lcb_v5": 279, "humaneval": 164, "mbpp": 500, "arena_hard": 500, "swe_bench_verified": 500,
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_loader_reads_shared_data(shared_data, name):
    records = get_benchmark(name).load(shared_data)
    assert len(records) == EXPECTED[name]
    ids = [r["id"] for r in records]
    assert len(set(ids)) == len(ids)
    for r in records[:5]:
        assert r["messages"][0]["role"] == "user" and r["messages"][0]["content"]
        assert r["verifier"] == get_benchmark(name).verifier
        assert r["ground_truth"] not in (None, "")


def test_specific_ground_truths(shared_data):
    aime = get_benchmark("aime25").load(shared_data)
    assert aime[0]["ground_truth"] == "70"
    gsm = get_benchmark("gsm8k").load(shared_data)
    assert gsm[0]["ground_truth"] == "18"  # Janet's ducks: (16 - 3 - 4) * 2
    ife = get_benchmark("ifeval").load(shared_data)
    assert set(ife[0]["ground_truth"]) == {"instruction_id_list", "kwargs"}
    pro = get_benchmark("mmlu_pro").load(shared_data)
    for r in pro[:50]:
        letters = "ABCDEFGHIJ"[: len(r["meta"]["options"])]
        assert r["ground_truth"] in letters
        assert f"{letters[-1]}) " in r["messages"][0]["content"]
    lcb = get_benchmark("lcb_v5").load(shared_data)
    styles = {r["ground_truth"]["style"] for r in lcb}
    assert styles == {"stdin", "call"}
    assert sum(r["ground_truth"]["style"] == "call" for r in lcb) == 104  # the LeetCode rows


def test_bfcl_categories(shared_data):
    records = get_benchmark("bfcl_v3").load(shared_data)
    cats = {}
    for r in records:
        cats[r["meta"]["category"]] = cats.get(r["meta"]["category"], 0) + 1
    assert cats["simple"] == 400 and cats["parallel_multiple"] == 200 and cats["live_irrelevance"] == 882
    assert all(r["ground_truth"] == [] for r in records if r["meta"]["category"] == "irrelevance")
    simple0 = next(r for r in records if r["id"] == "simple_0")
    assert simple0["ground_truth"] == [{"calculate_triangle_area": {"base": [10], "height": [5], "unit": ["units", ""]}}]
    assert simple0["meta"]["tools"][0]["function"]["name"] == "calculate_triangle_area"


def test_bfcl_records_score_with_the_tool_call_verifier(shared_data):
    from cascade.verifiers import get_verifier

    records = {r["id"]: r for r in get_benchmark("bfcl_v3").load(shared_data)}
    v = get_verifier("tool_call")
    good = '<tool_call>\n{"name": "calculate_triangle_area", "arguments": {"base": 10, "height": 5}}\n</tool_call>'
    bad = '<tool_call>\n{"name": "calculate_triangle_area", "arguments": {"base": 10, "height": 6}}\n</tool_call>'
    assert v.verify(good, records["simple_0"]).score == 1.0
    assert v.verify(bad, records["simple_0"]).score == 0.0
    assert v.verify("I cannot help with that.", records["irrelevance_0"]).score == 1.0


def test_wrong_format_names_file_line_and_field(tmp_path):
    bad = tmp_path / "test.jsonl"
    bad.write_text('{"id": "a", "problem": "1+1", "expected_answer": "2"}\n{"id": "b", "problem": "2+2"}\n')
    with pytest.raises(CascadeError) as err:
        get_benchmark("aime25").load(path=bad)
    assert err.value.file == str(bad) and err.value.line == 2 and err.value.field == "expected_answer"

    bad.write_text('{"id": "a", "problem": "1+1", "expected_answer": "2"}\nnot json\n')
    with pytest.raises(CascadeError) as err:
        get_benchmark("aime25").load(path=bad)
    assert err.value.line == 2 and "invalid JSON" in err.value.message

    gsm = tmp_path / "gsm.jsonl"
    gsm.write_text(json.dumps({"question": "q", "answer": "no final line"}) + "\n")
    with pytest.raises(CascadeError) as err:
        get_benchmark("gsm8k").load(path=gsm)
    assert err.value.field == "answer"


def test_missing_data_says_where_to_get_it(tmp_path):
    with pytest.raises(CascadeError, match="hub id: math-ai/aime25"):
        get_benchmark("aime25").load(tmp_path)


def test_benchmark_spec_parsing():
    specs = parse_benchmark_spec("aime25:64, ifeval:8,gsm8k")
    assert [(b.name, k) for b, k in specs] == [("aime25", 64), ("ifeval", 8), ("gsm8k", 1)]
    assert get_benchmark("ifeval").mode == "no_think"  # unified models: IFEval in instruct mode
    with pytest.raises(CascadeError, match="unknown benchmark 'aime26'"):
        parse_benchmark_spec("aime26:4")
    with pytest.raises(CascadeError, match="positive integer"):
        parse_benchmark_spec("aime25:zero")
    assert len(BENCHMARKS) >= 20

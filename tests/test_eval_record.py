"""`cascade eval` on a tiny model: an overlong prompt is skipped and counted while the run goes
on, metrics.json holds the full run record, a subset re-run keeps the other results, results
that cannot stand beside the card say so, and `--list` prints the registry."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from cascade.cli import main
from cascade.eval.backends.base import GenOutput
from cascade.eval.benchmarks import get_benchmark
from cascade.eval.benchmarks.base import Benchmark
from cascade.eval.runner import EvalSettings, evaluate


def toy_records(prefix: str, n: int, verifier: str = "math") -> list[dict]:
    return [{"id": f"{prefix}{i}", "messages": [{"role": "user", "content": f"What is {i} + {i}?"}],
             "verifier": verifier, "ground_truth": str(2 * i), "meta": {}} for i in range(n)]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    (root / "toy" / "eval").mkdir(parents=True)
    math = toy_records("m", 3)
    # Far longer than the tiny model's 4096 positions.
    math[1]["messages"][0]["content"] = "Add these numbers. " + " ".join(str(i) for i in range(6000))
    (root / "toy" / "eval" / "math.jsonl").write_text("".join(json.dumps(r) + "\n" for r in math))
    chat = [{"id": f"c{i}", "messages": [{"role": "user", "content": f"Say hello {i}"}], "verifier": "toy_chat",
             "ground_truth": {"must_include": ["hello"]}, "meta": {}} for i in range(2)]
    (root / "toy" / "eval" / "chat.jsonl").write_text("".join(json.dumps(r) + "\n" for r in chat))
    return root


def cli(tiny_model_dir: Path, data: Path, out: Path, benchmarks: str) -> list[str]:
    return ["eval", "--model", str(tiny_model_dir), "--benchmarks", benchmarks, "--max-tokens", "8",
            "--temperature", "0", "--device", "cpu", "--data-dir", str(data), "--out", str(out), "--workers", "1",
            "--no-progress"]


def test_overlong_prompt_is_skipped_the_record_is_complete_and_a_subset_rerun_merges(tiny_model_dir, data_dir,
                                                                                     tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(cli(tiny_model_dir, data_dir, out, "toy_math:2,toy_chat")) == 0
    first = json.loads((out / "metrics.json").read_text())
    math = first["results"]["toy_math.think"]
    # The run finished; the overlong prompt was not generated, and is counted and reported.
    assert math["skipped_prompts"] == 1 and math["n_prompts"] == 2
    assert any("1 prompts skipped" in f for f in math["flags"])
    rows = [json.loads(line) for line in (out / "toy_math.think.jsonl").read_text().splitlines()]
    skipped = [r for r in rows if r["skipped"]]
    assert {r["id"] for r in skipped} == {"m1"} and len(skipped) == 2 and skipped[0]["finish_reason"] == "context"
    assert "1 prompts skipped" in capsys.readouterr().out

    run = first["runs"][0]
    assert run["model"] == str(tiny_model_dir) and run["backend"] == "local"
    assert run["command"].startswith("cascade eval --model ") and "--benchmarks toy_math:2,toy_chat" in run["command"]
    assert "--max-tokens 8" in run["command"] and "--no-progress" in run["command"]
    assert run["sampling"]["temperature"] == 0.0 and run["sampling"]["top_p"] == 0.95
    assert run["package"]["version"] and run["date"].startswith("20") and run["python"]
    bench = run["benchmarks"]["toy_math"]
    assert (bench["k"], bench["max_tokens"], bench["modes"]) == (2, 8, ["think"])
    data_file = data_dir / "toy" / "eval" / "math.jsonl"
    assert bench["data_files"] == {str(data_file): hashlib.sha256(data_file.read_bytes()).hexdigest()}
    assert math["run"] == 0 and math["protocol"]["k"] == 2

    # A subset re-run, with other settings, replaces only its own result.
    chat_before = first["results"]["toy_chat.think"]
    assert main(cli(tiny_model_dir, data_dir, out, "toy_chat:2")) == 0
    second = json.loads((out / "metrics.json").read_text())
    assert second["results"]["toy_math.think"] == math
    assert second["results"]["toy_chat.think"]["k"] == 2 and chat_before["k"] == 1
    assert second["results"]["toy_chat.think"]["run"] == 1 and len(second["runs"]) == 2
    assert list(second["runs"][1]["benchmarks"]) == ["toy_chat"]
    summary = (out / "summary.md").read_text()
    assert "| toy_math |" in summary and "| toy_chat |" in summary


class Scripted:
    name = "scripted"

    def __init__(self, text: str = "\\boxed{0}") -> None:
        self.text = text

    def generate(self, requests):
        return [GenOutput(text=self.text, tokens=3, finish_reason="stop") for _ in requests]

    def close(self):
        pass


def test_a_verifier_that_fails_on_most_rows_gives_no_number(tmp_path):
    records = toy_records("q", 4, verifier="arena_judges")  # a misspelt verifier: every row fails
    bench = Benchmark("broken", "arena_judges", lambda p: records, "", k=1, max_tokens=16)
    metrics = evaluate(Scripted(), [(bench, 1)], tmp_path, settings=EvalSettings(workers=1, max_tokens=16),
                       records_for=lambda b: records, progress=False)
    m = metrics["broken.think"]
    assert m["status"] == "not scored" and m["avg_at_k"] is None and not m["comparable_to_card"]
    assert any("verifier failed on 4 of 4 samples (e.g. unknown_verifier" in f for f in m["flags"])
    row = next(line for line in (tmp_path / "summary.md").read_text().splitlines() if line.startswith("| broken"))
    assert "not scored" in row and "0.0" not in row


def test_public_tests_only_and_partial_windows_are_never_beside_the_card(shared_data, tmp_path):
    specs = [(get_benchmark("lcb_v5"), 1), (get_benchmark("lcb_v6"), 1)]
    metrics = evaluate(Scripted("```python\nprint(1)\n```"), specs, tmp_path, data_dir=shared_data,
                       settings=EvalSettings(limit=2, workers=1, max_tokens=65536), progress=False)
    v5, v6 = metrics["lcb_v5.think"], metrics["lcb_v6.think"]
    assert any(f.startswith("public tests only") for f in v5["flags"])
    assert any("data covers 279 of the 454 prompts" in f for f in v6["flags"])
    assert v6["parts"] == {"v5": {"n_prompts": 2, "avg_at_k": v6["avg_at_k"]}}
    assert not v5["comparable_to_card"] and not v6["comparable_to_card"]
    summary = (tmp_path / "summary.md").read_text()
    for line in summary.splitlines():
        if line.startswith("| lcb_"):
            assert "not comparable" in line and "public tests only" in line
            assert "74.3" not in line and "71.1" not in line
        if line.startswith("| lcb_v6"):
            assert "partial data" in line
    assert "lcb_v5.think: public tests only" in summary


def test_card_protocol_on_full_data_is_comparable():
    from cascade.eval.runner import assess

    bench = Benchmark("aime25", "math", lambda p: [], "", k=2, max_tokens=16)
    rows = [{"id": "a", "seed": s, "skipped": False, "error": None} for s in range(2)]
    status, flags = assess(bench, {"skipped_prompts": 0}, rows, [{"id": "a"}], 1, 2,
                           {"temperature": 0.6, "top_p": 0.95, "max_tokens": 16}, "think")
    assert (status, flags) == ("scored", [])


def test_list_prints_each_benchmark_with_its_protocol(capsys):
    assert main(["eval", "--list"]) == 0
    text = capsys.readouterr().out
    assert "lcb_v6: k=8, budget 65536 tokens, mode think, verifier code, 454 prompts" in text
    assert "ifeval: k=8, budget 32768 tokens, mode no_think" in text
    assert "arena_hard: k=1" in text and "win rate" in text
    assert "<data-dir>/livecodebench/lcb_format_public_tests_derived.jsonl (code_generation_lite layout" in text

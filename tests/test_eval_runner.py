"""The eval runner: outputs, metrics, resume, and a kill that loses nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cascade.errors import CascadeError
from cascade.eval.backends.base import GenOutput
from cascade.eval.benchmarks.base import Benchmark
from cascade.eval.runner import EvalSettings, evaluate
from cascade.eval.samples_file import append_rows, exclusive, load_and_repair

RECORDS = [
    {"id": f"q{i}", "messages": [{"role": "user", "content": f"What is {i} + {i}?"}], "verifier": "math",
     "ground_truth": str(2 * i), "meta": {}}
    for i in range(1, 4)
]
BENCH = Benchmark("toy_sums", "math", lambda p: RECORDS, "unused", k=2, max_tokens=16)


class ScriptedBackend:
    """Right answer on even seeds, wrong on odd seeds: avg@k is exactly known."""

    name = "scripted"

    def __init__(self):
        self.calls = 0

    def generate(self, requests):
        self.calls += len(requests)
        outs = []
        for r in requests:
            n = int(r.messages[0]["content"].split()[2])
            value = 2 * n if r.seed % 2 == 0 else 2 * n + 1
            text = f"<think>\n{n}+{n}\n</think>\nThe answer is \\boxed{{{value}}}." if r.enable_thinking else f"\\boxed{{{value}}}"
            outs.append(GenOutput(text=text, tokens=7, finish_reason="stop"))
        return outs

    def close(self):
        pass


def test_outputs_metrics_and_summary(tmp_path):
    backend = ScriptedBackend()
    settings = EvalSettings(mode="both", batch_size=4, workers=1)
    metrics = evaluate(backend, [(BENCH, 4)], tmp_path, settings=settings, records_for=lambda b: RECORDS,
                       progress=False)
    # seeds 0..3: two right, two wrong on every prompt
    for mode in ("think", "no_think"):
        m = metrics[f"toy_sums.{mode}"]
        assert m["n_prompts"] == 3 and m["avg_at_k"] == pytest.approx(0.5)
        assert m["pass_at_k"] == pytest.approx(1.0)
        # per-seed accuracy 1,0,1,0: sample variance (4 * 0.25) / 3, stderr sqrt(1/3) / sqrt(4)
        assert m["stderr"] == pytest.approx((1 / 3) ** 0.5 / 2)
        assert m["majority_at_k"] is not None
    rows = [json.loads(line) for line in (tmp_path / "toy_sums.think.jsonl").read_text().splitlines()]
    assert len(rows) == 12
    first = rows[0]
    for field in ("id", "seed", "prompt", "completion", "reasoning", "answer", "score", "details", "tokens",
                  "finish_reason"):
        assert field in first
    assert first["reasoning"] is not None and "boxed" in first["answer"]
    assert json.loads((tmp_path / "metrics.json").read_text())["results"] == json.loads(json.dumps(metrics))
    assert "toy_sums" in (tmp_path / "summary.md").read_text()


def test_rerun_skips_finished_samples(tmp_path):
    settings = EvalSettings(batch_size=2, workers=1)
    first = ScriptedBackend()
    evaluate(first, [(BENCH, 2)], tmp_path, settings=settings, records_for=lambda b: RECORDS, progress=False)
    assert first.calls == 6
    again = ScriptedBackend()
    evaluate(again, [(BENCH, 3)], tmp_path, settings=settings, records_for=lambda b: RECORDS, progress=False)
    assert again.calls == 3  # only seed 2 was new
    lines = (tmp_path / "toy_sums.think.jsonl").read_text().splitlines()
    assert len(lines) == 9


def test_truncated_last_line_is_dropped(tmp_path):
    path = tmp_path / "s.jsonl"
    append_rows(path, [{"id": "a", "seed": 0}])
    with open(path, "a") as fh:
        fh.write('{"id": "b", "se')
    assert load_and_repair(path) == [{"id": "a", "seed": 0}]
    assert path.read_text() == '{"id": "a", "seed": 0}\n'


SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    from test_eval_runner import ScriptedBackend, BENCH, RECORDS
    from cascade.eval.runner import EvalSettings, evaluate

    class Slow(ScriptedBackend):
        def generate(self, requests):
            time.sleep(0.2)
            return super().generate(requests)

    evaluate(Slow(), [(BENCH, 8)], {out!r}, settings=EvalSettings(batch_size=1, workers=1),
             records_for=lambda b: RECORDS, progress=False)
""")


def test_kill_and_resume_gives_exactly_one_line_per_sample(tmp_path):
    out = tmp_path / "eval"
    script = tmp_path / "run_eval.py"
    script.write_text(SCRIPT.format(tests=str(Path(__file__).parent), out=str(out)))
    proc = subprocess.Popen([sys.executable, str(script)], start_new_session=True)
    samples = out / "toy_sums.think.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and (not samples.exists() or len(samples.read_text().splitlines()) < 3):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(samples.read_text().splitlines())
    assert 3 <= done_before < 24
    subprocess.run([sys.executable, str(script)], check=True, timeout=120)
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    keys = [(r["id"], r["seed"]) for r in rows]
    assert len(keys) == len(set(keys)) == 24
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["results"]["toy_sums.think"]["avg_at_k"] == pytest.approx(0.5)


def test_resume_refuses_samples_drawn_with_other_settings(tmp_path):
    evaluate(ScriptedBackend(), [(BENCH, 1)], tmp_path, settings=EvalSettings(workers=1),
             records_for=lambda b: RECORDS, progress=False)
    with pytest.raises(CascadeError, match="temperature=0.6.*temperature=0.0") as err:
        evaluate(ScriptedBackend(), [(BENCH, 1)], tmp_path, settings=EvalSettings(temperature=0.0, workers=1),
                 records_for=lambda b: RECORDS, progress=False)
    assert err.value.field == "temperature" and err.value.file.endswith("toy_sums.think.jsonl")


def test_corrupt_complete_line_names_file_and_line(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"id": "a", "seed": 0}\n{garbage}\n')
    with pytest.raises(CascadeError) as err:
        load_and_repair(path)
    assert err.value.line == 2 and err.value.file == str(path)


def test_second_writer_is_refused_while_the_first_holds_the_file(tmp_path):
    path = tmp_path / "toy_sums.think.jsonl"
    with exclusive(path):
        with pytest.raises(CascadeError, match="another `cascade eval`"):
            evaluate(ScriptedBackend(), [(BENCH, 1)], tmp_path, settings=EvalSettings(workers=1),
                     records_for=lambda b: RECORDS, progress=False)
    with exclusive(path):  # released: the same process can take it again
        pass

"""The loop every trainer shares (``cascade.trainers.loop.run_loop``), with a counting engine
and steps: where it writes, when it checkpoints, what a resumed run gets back, what it prints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import pytest

from cascade.engine.checkpoint import complete_checkpoints, read_trainer_state
from cascade.trainers.loop import run_loop


class RecordingEngine:
    """Saves a file naming how many updates it has taken; ``load`` reads it back."""

    def __init__(self) -> None:
        self.updates = 0
        self.loaded: list[str] = []

    def save(self, path: str, **kwargs: Any) -> None:
        Path(path, "weights.txt").write_text(str(self.updates))

    def load(self, path: str) -> None:
        self.loaded.append(path)
        self.updates = int(Path(path, "weights.txt").read_text())


class CountingSteps:
    """``total`` updates; its checkpoint state is a running sum the resumed run must get back."""

    name = "count"

    def __init__(self, engine: RecordingEngine, total: int | None, planned: int = 5) -> None:
        self.engine, self.total, self.planned = engine, total, planned
        self.running_sum = 0
        self.restored: list[Mapping[str, Any]] = []

    def finished(self, step: int) -> bool:
        return step >= self.planned

    def check_resume(self, state: Mapping[str, Any], checkpoint: Path) -> None:
        if "running_sum" not in state:
            raise ValueError(f"not my checkpoint: {checkpoint}")

    def restore(self, state: Mapping[str, Any]) -> None:
        self.restored.append(state)
        self.running_sum = state["running_sum"]

    def train_step(self, step: int) -> dict[str, Any]:
        self.engine.updates += 1
        self.running_sum += step + 1
        return {"step": step + 1, "running_sum": self.running_sum}

    def state(self, metrics: Mapping[str, Any]) -> dict[str, Any]:
        return {"running_sum": self.running_sum, "metrics": dict(metrics)}

    def status(self, metrics: Mapping[str, Any]) -> str:
        return f"sum {metrics['running_sum']}"


def logged(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_a_fresh_run_logs_checkpoints_prunes_and_writes_the_final_model(tmp_path):
    run_dir = tmp_path / "runs" / "stage"  # parents that do not exist yet
    engine = RecordingEngine()
    result = run_loop(engine, CountingSteps(engine, total=5), run_dir, save_every=2, keep_checkpoints=2,
                      progress=False)
    assert (result.step, result.resumed_from, result.metrics) == (5, None, {"step": 5, "running_sum": 15})
    assert result.final == str(run_dir / "final")
    assert (run_dir / "final" / "weights.txt").read_text() == "5"
    assert [row["step"] for row in logged(run_dir)] == [1, 2, 3, 4, 5]
    # every 2 updates and after the last, keeping the newest 2
    assert [step for step, _ in complete_checkpoints(run_dir)] == [4, 5]
    state = read_trainer_state(run_dir / "checkpoints" / "step_00000005")
    assert state == {"step": 5, "running_sum": 15, "metrics": {"step": 5, "running_sum": 15}}
    assert result.summary() == {"step": 5, "final": str(run_dir / "final"), "metrics": result.metrics,
                                "resumed_from": None}


def test_a_resumed_run_gets_its_state_back_and_logs_each_step_once(tmp_path):
    engine = RecordingEngine()
    first = CountingSteps(engine, total=5, planned=3)
    run_loop(engine, first, tmp_path, save_every=2, keep_checkpoints=5, progress=False)
    (tmp_path / "metrics.jsonl").open("a").write(json.dumps({"step": 4, "running_sum": 99}) + "\n")  # lost step
    engine = RecordingEngine()
    again = CountingSteps(engine, total=5, planned=5)
    result = run_loop(engine, again, tmp_path, save_every=2, keep_checkpoints=5, progress=False)
    assert engine.loaded == [str(tmp_path / "checkpoints" / "step_00000003")]
    assert again.restored == [{"step": 3, "running_sum": 6, "metrics": {"step": 3, "running_sum": 6}}]
    assert (result.resumed_from, result.step, result.metrics["running_sum"]) == (3, 5, 15)
    assert [row["step"] for row in logged(tmp_path)] == [1, 2, 3, 4, 5]
    assert (tmp_path / "final" / "weights.txt").read_text() == "5"


def test_resume_false_starts_over(tmp_path):
    engine = RecordingEngine()
    run_loop(engine, CountingSteps(engine, total=5, planned=2), tmp_path, save_every=1, keep_checkpoints=5,
             progress=False)
    engine = RecordingEngine()
    result = run_loop(engine, CountingSteps(engine, total=5, planned=2), tmp_path, save_every=1,
                      keep_checkpoints=5, resume=False, progress=False)
    assert (engine.loaded, result.resumed_from, result.metrics["running_sum"]) == ([], None, 3)


def test_a_checkpoint_that_does_not_fit_is_refused_before_loading(tmp_path):
    engine = RecordingEngine()
    run_loop(engine, CountingSteps(engine, total=5, planned=1), tmp_path, save_every=1, keep_checkpoints=5,
             progress=False)
    state_file = tmp_path / "checkpoints" / "step_00000001" / "trainer_state.json"
    state_file.write_text(json.dumps({"step": 1}))
    engine = RecordingEngine()
    with pytest.raises(ValueError, match="not my checkpoint"):
        run_loop(engine, CountingSteps(engine, total=5), tmp_path, save_every=1, keep_checkpoints=5, progress=False)
    assert engine.loaded == []


def test_steps_without_a_planned_total_print_one_line_per_update(tmp_path, capsys):
    engine = RecordingEngine()
    run_loop(engine, CountingSteps(engine, total=None, planned=2), tmp_path / "a", save_every=None,
             keep_checkpoints=1, progress=True)
    assert capsys.readouterr().out.splitlines() == ["[count] step 1 sum 1", "[count] step 2 sum 3"]
    run_loop(engine, CountingSteps(engine, total=None, planned=2), tmp_path / "b", save_every=None,
             keep_checkpoints=1, progress=False)
    run_loop(engine, CountingSteps(engine, total=2, planned=2), tmp_path / "c", save_every=None,
             keep_checkpoints=1, progress=True)  # a planned total draws a progress bar instead
    assert "[count]" not in capsys.readouterr().out
    # without save_every only the last update is checkpointed
    assert [step for step, _ in complete_checkpoints(tmp_path / "a")] == [2]


class RecordingBar:
    """Stands in for the rich progress bar: records whether it draws and what it is told."""

    def __init__(self, calls: list, enabled: bool) -> None:
        self.calls = calls
        calls.append(("enabled", enabled))

    def __enter__(self) -> "RecordingBar":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def add_task(self, description: str, **fields: Any) -> int:
        self.calls.append(("add_task", description, fields))
        return 7

    def update(self, task: int, **fields: Any) -> None:
        self.calls.append(("update", task, fields))


def test_the_progress_bar_is_labelled_counts_the_plan_and_shows_each_status(tmp_path, monkeypatch):
    import cascade.trainers.loop as loop

    calls: list = []
    monkeypatch.setattr(loop, "make_progress", lambda enabled: RecordingBar(calls, enabled))
    engine = RecordingEngine()
    # progress is on by default: a user running a trainer sees the bar
    run_loop(engine, CountingSteps(engine, total=3, planned=3), tmp_path / "a", save_every=1, keep_checkpoints=1)
    assert calls == [
        ("enabled", True),
        ("add_task", "count", {"total": 3, "completed": 0, "status": ""}),
        ("update", 7, {"completed": 1, "status": "sum 1"}),
        ("update", 7, {"completed": 2, "status": "sum 3"}),
        ("update", 7, {"completed": 3, "status": "sum 6"}),
    ]
    # a resumed stage's bar starts where the checkpoint left off
    calls.clear()
    run_loop(engine, CountingSteps(engine, total=5, planned=5), tmp_path / "a", save_every=1, keep_checkpoints=1)
    assert calls[:2] == [("enabled", True), ("add_task", "count", {"total": 5, "completed": 3, "status": ""})]
    # no bar when asked for none, or when no total is planned (a printed line per update instead)
    for total, progress in ((3, False), (None, True)):
        calls.clear()
        run_loop(engine, CountingSteps(engine, total=total, planned=1), tmp_path / f"{total}{progress}",
                 save_every=None, keep_checkpoints=1, progress=progress)
        assert calls[0] == ("enabled", False)

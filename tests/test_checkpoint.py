"""Atomic checkpoints: crashes mid-write are never loaded; latest pointer; pruning."""

from __future__ import annotations

import json

import pytest

from cascade.engine.checkpoint import (
    latest_checkpoint,
    prune_checkpoints,
    read_trainer_state,
    write_checkpoint,
    write_final,
)
from cascade.errors import CascadeError


class FakeEngine:
    """Writes a weights file naming its version; optionally crashes half-way."""

    def __init__(self, version: str, crash: bool = False) -> None:
        self.version = version
        self.crash = crash
        self.calls = []

    def save(self, path, **kwargs):
        self.calls.append(kwargs)
        with open(f"{path}/weights.txt", "w") as handle:
            handle.write(self.version)
        if self.crash:
            raise KeyboardInterrupt("killed mid-write")


def test_write_then_find_latest(tmp_path):
    first = write_checkpoint(tmp_path, 5, FakeEngine("a"), {"cursor": 40})
    second = write_checkpoint(tmp_path, 10, FakeEngine("b"), {"cursor": 80, "metrics": {"loss": 1.5}})
    assert first.name == "step_00000005" and second.name == "step_00000010"
    assert latest_checkpoint(tmp_path) == second
    assert (tmp_path / "checkpoints" / "latest").read_text().strip() == "step_00000010"
    assert read_trainer_state(second) == {"step": 10, "cursor": 80, "metrics": {"loss": 1.5}}
    assert (second / "COMPLETE").is_file() and (second / "weights.txt").read_text() == "b"
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))


def test_no_checkpoint_yet(tmp_path):
    assert latest_checkpoint(tmp_path) is None


def test_crash_during_save_leaves_the_previous_checkpoint_latest(tmp_path):
    good = write_checkpoint(tmp_path, 1, FakeEngine("good"), {})
    with pytest.raises(KeyboardInterrupt):
        write_checkpoint(tmp_path, 2, FakeEngine("torn", crash=True), {})
    assert latest_checkpoint(tmp_path) == good
    assert not (tmp_path / "checkpoints" / "step_00000002").exists()
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))  # cleaned up on the way out
    assert (tmp_path / "checkpoints" / "latest").read_text().strip() == "step_00000001"


def test_leftovers_of_a_killed_process_are_ignored_and_pruned(tmp_path):
    good = write_checkpoint(tmp_path, 3, FakeEngine("good"), {})
    folder = tmp_path / "checkpoints"
    (folder / ".tmp-abc123").mkdir()  # killed before the rename
    (folder / ".tmp-abc123" / "weights.txt").write_text("partial")
    (folder / "step_00000009").mkdir()  # a directory without its COMPLETE marker
    (folder / "step_00000009" / "weights.txt").write_text("partial")
    assert latest_checkpoint(tmp_path) == good
    removed = {p.name for p in prune_checkpoints(tmp_path, keep=2)}
    assert removed == {".tmp-abc123", "step_00000009"}
    assert latest_checkpoint(tmp_path) == good


def test_latest_is_found_even_if_the_pointer_lags(tmp_path):
    write_checkpoint(tmp_path, 1, FakeEngine("a"), {})
    newest = write_checkpoint(tmp_path, 2, FakeEngine("b"), {})
    # A crash between publishing step 2 and moving the pointer leaves the pointer behind.
    (tmp_path / "checkpoints" / "latest").write_text("step_00000001\n")
    assert latest_checkpoint(tmp_path) == newest


def test_prune_keeps_the_newest(tmp_path):
    for step in (1, 2, 3, 4):
        write_checkpoint(tmp_path, step, FakeEngine(str(step)), {})
    prune_checkpoints(tmp_path, keep=2)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["latest", "step_00000003", "step_00000004"]
    with pytest.raises(CascadeError):
        prune_checkpoints(tmp_path, keep=0)


def test_rewriting_a_step_replaces_it(tmp_path):
    write_checkpoint(tmp_path, 2, FakeEngine("old"), {"run": 1})
    path = write_checkpoint(tmp_path, 2, FakeEngine("new"), {"run": 2})
    assert (path / "weights.txt").read_text() == "new"
    assert read_trainer_state(path)["run"] == 2
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["latest", "step_00000002"]


def test_write_final_has_no_training_state(tmp_path):
    engine = FakeEngine("final")
    path = write_final(tmp_path / "final", engine)
    assert engine.calls == [{"training_state": False}]
    assert (path / "weights.txt").read_text() == "final"
    assert [p.name for p in tmp_path.iterdir()] == ["final"]


def test_bad_trainer_state_is_a_cascade_error_naming_the_file(tmp_path):
    path = write_checkpoint(tmp_path, 1, FakeEngine("a"), {})
    (path / "trainer_state.json").write_text("{\n  \"step\": 1,\n  oops\n}")
    with pytest.raises(CascadeError) as info:
        read_trainer_state(path)
    assert info.value.file.endswith("trainer_state.json") and info.value.line == 3
    (path / "trainer_state.json").write_text(json.dumps([1, 2]))
    with pytest.raises(CascadeError, match="JSON object"):
        read_trainer_state(path)


def test_metrics_logger_drops_steps_after_the_resumed_checkpoint(tmp_path):
    from cascade.trainers.common import MetricsLogger

    path = tmp_path / "metrics.jsonl"
    with MetricsLogger(path, resume_step=0) as log:
        for step in (1, 2, 3):
            log.log({"step": step, "loss": 1.0 / step})
    with open(path, "a") as handle:
        handle.write('{"step": 4, "lo')  # torn by the crash
    with MetricsLogger(path, resume_step=2) as log:  # resumed from the step-2 checkpoint
        log.log({"step": 3, "loss": 0.25})
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows == [{"step": 1, "loss": 1.0}, {"step": 2, "loss": 0.5}, {"step": 3, "loss": 0.25}]
    with pytest.raises(ValueError), MetricsLogger(tmp_path / "other.jsonl") as log:
        log.log({"loss": 1.0})

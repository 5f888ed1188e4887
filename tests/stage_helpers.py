"""Typed recipe stages for trainer tests: the recipe's own types (the trainers take nothing
else), with small batches and the test-scale values the trainer tests were written for."""

from __future__ import annotations

from typing import Any

from cascade.config.recipe import GRPOStage, RMStage, SFTStage

# A stage needs a data source to validate; trainer tests pass their records directly.
UNUSED_DATA = [{"path": "unused-by-trainer-tests.jsonl"}]

_SMALL = dict(batch_size=8, weight_decay=0.0, seed=0)


def sft_stage(**overrides: Any) -> SFTStage:
    values: dict[str, Any] = dict(name="sft", kind="sft", data=UNUSED_DATA, max_seq_len=2048, epochs=1, **_SMALL)
    values.update(overrides)
    return SFTStage.model_validate(values)


def rm_stage(**overrides: Any) -> RMStage:
    values: dict[str, Any] = dict(name="rm", kind="rm", data=UNUSED_DATA, max_seq_len=2048, epochs=1, **_SMALL)
    values.update(overrides)
    return RMStage.model_validate(values)


def grpo_stage(**overrides: Any) -> GRPOStage:
    values: dict[str, Any] = dict(name="grpo", kind="grpo", data=UNUSED_DATA, top_p=1.0, max_response_len=256,
                                  max_prompt_len=1024, epochs=1, **_SMALL)
    values.update(overrides)
    return GRPOStage.model_validate(values)


class TwoSecondClock:
    """Stands in for a trainer's ``time`` module: every reading is two seconds after the last."""

    def __init__(self) -> None:
        self.now = 100.0

    def perf_counter(self) -> float:
        self.now += 2.0
        return self.now


def grpo_engine(model_dir, settings: GRPOStage, n_records: int):
    """A local engine for GRPO trainer tests on a random tiny model, with every 8th token a
    stop token: such a model almost never emits <|im_end|>, and this gives rollouts of
    different lengths that mostly finish within a few tokens."""
    from cascade.engine.local import LocalEngine

    engine = LocalEngine(str(model_dir), optim=settings.optim_config(settings.planned_steps(n_records)), seed=0)
    engine.default_stop_ids = lambda: list(range(0, len(engine.tokenizer), 8))
    return engine


def read_metrics(run_dir) -> list[dict]:
    """The JSON lines a trainer logged in ``run_dir/metrics.jsonl``."""
    import json
    from pathlib import Path

    return [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]

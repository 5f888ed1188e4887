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

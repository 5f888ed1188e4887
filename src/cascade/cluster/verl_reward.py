"""Our verifiers behind verl's custom reward-function hook.

verl (0.9.1) loads the function named by ``reward.custom_reward_function.{path,name}``
(``pkg://cascade.cluster.verl_reward`` / ``compute_score``) and calls it once per rollout::

    compute_score(data_source=..., solution_str=..., ground_truth=..., extra_info=...)

with the decoded response (special tokens skipped; ``<think>`` survives, it is not special in our
tokenizers or Qwen3's), the row's ``reward_model.ground_truth`` and ``extra_info`` as
``cascade.cluster.verl_data`` wrote them. The function routes by ``extra_info["verifier"]``
through the same verifiers as the local trainer and the eval runner, and applies the stage
reward's per-sample shaping from ``cascade.verifiers.rewards``:

| stage reward | what the hook returns |
|---|---|
| none (``""``) | the verifier's score |
| ``if``        | 1 when every constraint holds, else 0 |
| ``math``      | 1/0; language mixing in trace or answer: -1 |
| ``code``      | 1/0; language mixing: 0 |
| ``swe``       | the swe verifier's score in [-1, 1] (lexical: ``judge: lexical``; a served judge needs the local trainer) |

Not per-sample, hence refused here: ``rlhf`` (reward-model score, and language mixing gets the
*batch* minimum - 10) and ``if_thinking`` (sigmoid of the RM score z-scored in its *group*). They
need a batch-level reward manager and a served reward model; docs/cluster.md explains.

Scoring runs in cascade's worker processes (``cascade.verifiers.batch``), never in verl's
process: completions are model-written and the code verifier executes them.
``CASCADE_VERL_REWARD_WORKERS`` (default 4) and ``CASCADE_VERL_REWARD_TIMEOUT`` (seconds per
item, default 60) size that pool per reward worker.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from cascade.errors import CascadeError
from cascade.verifiers.base import VerifyResult, get_verifier
from cascade.verifiers.batch import score_batch
from cascade.verifiers.language_mixing import detect_language_mixing, prompt_text
from cascade.verifiers.rewards import STAGE_REWARDS

# Stage rewards a single rollout decides on its own, and the ones among them that read
# the language-mixing flag.
PER_SAMPLE_REWARDS = ("if", "math", "code", "swe")
BATCH_REWARDS = ("rlhf", "if_thinking")
_MIXING_REWARDS = ("math", "code")


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: str,
    extra_info: Mapping[str, Any] | None = None,
    **_verl_extras: Any,  # verl adds keys such as reward_router_address; none are needed here
) -> dict[str, float]:
    """The training reward of one rollout, plus ``acc`` (the verifier's pass verdict) and
    ``language_mixing`` (1.0 when flagged), which verl logs per key."""
    if not isinstance(extra_info, Mapping) or not extra_info.get("verifier") or "record" not in extra_info:
        raise CascadeError(
            "verl row has no cascade extra_info (verifier, record): export the data with "
            "cascade.cluster.verl_data.export_verl_parquet",
            file=str(data_source),
            field="extra_info",
        )
    reward = str(extra_info.get("reward") or "")
    if reward in BATCH_REWARDS:
        raise CascadeError(
            f"stage reward '{reward}' needs the whole batch (and a reward model); the per-sample "
            "verl hook cannot compute it (docs/cluster.md)",
            field="extra_info.reward",
        )
    if reward and reward not in PER_SAMPLE_REWARDS:
        known = ", ".join(STAGE_REWARDS)
        raise CascadeError(f"unknown stage reward '{reward}'; known: {known}", field="extra_info.reward")
    record = _record(extra_info, ground_truth, str(data_source))
    get_verifier(record["verifier"])  # an unknown verifier is a data error: say so, do not score 0
    result = _verify(record, solution_str)
    mixed = reward in _MIXING_REWARDS and detect_language_mixing(prompt_text(record), solution_str)
    if reward:
        score = STAGE_REWARDS[reward](verifier=[result], language_mixing=[mixed])[0]
    else:
        score = result.score
    return {"score": float(score), "acc": 1.0 if result.passed else 0.0, "language_mixing": 1.0 if mixed else 0.0}


def _record(extra_info: Mapping[str, Any], ground_truth: str, label: str) -> dict[str, Any]:
    """The cascade record of the row: ``extra_info.record`` plus the decoded ground truth."""
    try:
        record = json.loads(extra_info["record"])
        truth = json.loads(ground_truth)
    except (TypeError, json.JSONDecodeError) as exc:
        message = f"not the JSON text verl_data writes ({exc})"
        raise CascadeError(message, file=label, field="extra_info.record") from None
    if not isinstance(record, dict):
        raise CascadeError("extra_info.record must hold a JSON object", file=label, field="extra_info.record")
    record["ground_truth"] = truth
    record["verifier"] = str(extra_info["verifier"])
    return record


def _verify(record: Mapping[str, Any], completion: str) -> VerifyResult:
    workers = int(os.environ.get("CASCADE_VERL_REWARD_WORKERS", "4"))
    timeout = float(os.environ.get("CASCADE_VERL_REWARD_TIMEOUT", "60"))
    return score_batch([record], [completion], workers=workers, timeout=timeout)[0]

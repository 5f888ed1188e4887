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
| ``swe``       | the swe verifier's score in [-1, 1]; with a served judge, its P("YES") for patches neither exact nor empty (``cascade.cluster.verl_judge``) |

Batch-level rewards: ``rlhf`` (reward-model score; language mixing gets the *batch* minimum
- 10) and ``if_thinking`` (1 + sigmoid of the RM score z-scored in its *group* when every
constraint holds, else 0). For these the hook scores the final answer with the reward model
that verl serves (``reward.reward_model.enable``: verl passes ``reward_router_address`` and the
RM's tokenizer) and returns the raw parts; ``cascade.cluster.verl_manager`` (the run's reward
manager) combines them over the whole batch once verl has gathered it.

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

from cascade.data.records import record_messages
from cascade.errors import CascadeError
from cascade.verifiers.base import VerifyResult, get_verifier
from cascade.verifiers.batch import score_batch
from cascade.verifiers.language_mixing import detect_language_mixing, prompt_text
from cascade.verifiers.rewards import RewardInputs
from cascade.verifiers.stage_rewards import STAGE_REWARDS

# Stage rewards that need the rollout's group or the whole batch (the reward manager's batch
# step), as the table of stage rewards says; the others a single rollout decides on its own.
BATCH_REWARDS = tuple(name for name, entry in STAGE_REWARDS.items() if entry.scope != "rollout")


def is_batch_reward(reward: str | None) -> bool:
    """Whether stage reward ``reward`` needs the reward manager's batch step (its table
    entry's scope is the group or the batch)."""
    return bool(reward) and reward in STAGE_REWARDS and STAGE_REWARDS[reward].scope != "rollout"


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: str,
    extra_info: Mapping[str, Any] | None = None,
    judge: Mapping[str, Any] | None = None,
    **_verl_extras: Any,  # verl adds keys such as reward_router_address; none are needed here
) -> dict[str, float]:
    """The training reward of one rollout, plus ``acc`` (the verifier's pass verdict) and
    ``language_mixing`` (1.0 when flagged), which verl logs per key. ``judge``: the ``swe``
    stage's served judge (``cascade.cluster.verl_judge.judge_reward_kwargs``, passed by verl as
    ``reward.custom_reward_function.reward_kwargs.judge``); adds ``judge_error`` (1.0 when the
    judge could not score the patch and the fallback reward was given)."""
    if not isinstance(extra_info, Mapping) or not extra_info.get("verifier") or "record" not in extra_info:
        raise CascadeError(
            "verl row has no cascade extra_info (verifier, record): export the data with "
            "cascade.cluster.verl_data.export_verl_parquet",
            file=str(data_source),
            field="extra_info",
        )
    reward = str(extra_info.get("reward") or "")
    if reward and reward not in STAGE_REWARDS:
        known = ", ".join(STAGE_REWARDS)
        raise CascadeError(f"unknown stage reward '{reward}'; known: {known}", field="extra_info.reward")
    if is_batch_reward(reward):
        return _batch_parts(reward, extra_info, ground_truth, str(data_source), solution_str, _verl_extras)
    record = _record(extra_info, ground_truth, str(data_source))
    get_verifier(record["verifier"])  # an unknown verifier is a data error: say so, do not score 0
    result = _verify(record, solution_str)
    extra = {}
    if judge is not None and reward and STAGE_REWARDS[reward].judge:
        from cascade.cluster.verl_judge import served_judge

        result = served_judge(judge).rejudge(record, result)
        extra["judge_error"] = 1.0 if result.error == "judge_error" else 0.0
    mixed = bool(reward) and STAGE_REWARDS[reward].language_mixing is not None \
        and detect_language_mixing(prompt_text(record), solution_str)
    if reward:
        score = STAGE_REWARDS[reward].reward(RewardInputs(verifier=[result], language_mixing=[mixed]))[0]
    else:
        score = result.score
    return {"score": float(score), "acc": 1.0 if result.passed else 0.0, "language_mixing": 1.0 if mixed else 0.0,
            **extra}


def _batch_parts(reward: str, extra_info: Mapping[str, Any], ground_truth: str, label: str, solution: str,
                 verl_extras: Mapping[str, Any]) -> dict[str, float]:
    """The per-rollout parts of a batch-level reward: the RM score of the final answer, the
    verifier's verdict (``if_thinking``) and the language-mixing flag (``rlhf``). ``score`` is
    the raw RM score until the reward manager replaces it with the batch reward."""
    router = verl_extras.get("reward_router_address")
    rm_tokenizer = verl_extras.get("reward_model_tokenizer")
    if not router or rm_tokenizer is None:
        raise CascadeError(
            f"stage reward '{reward}' needs the reward model verl serves: set reward.reward_model.enable=true "
            "and its model_path (cascade run --engine verl does)",
            field="reward.reward_model.enable",
        )
    record = _record(extra_info, ground_truth, label)
    entry = STAGE_REWARDS[reward]
    passed = 1.0
    if entry.reads_verifier:
        get_verifier(record["verifier"])
        passed = 1.0 if _verify(record, solution).passed else 0.0
    mixed = entry.language_mixing is not None and detect_language_mixing(prompt_text(record), solution)
    rm_score = score_with_served_rm(router, rm_tokenizer, record_messages(record), solution)
    return {"score": rm_score, "rm_score": rm_score, "acc": passed, "language_mixing": 1.0 if mixed else 0.0}


def reward_model_prompt(rm_tokenizer: Any, messages: list[dict[str, Any]], response: str) -> str:
    """What the reward model reads: the conversation plus the final answer, rendered by the
    RM's own chat template in instruct mode, exactly as the local scorer renders it."""
    from cascade.engine.reward_scorer import scored_text

    turns = [dict(m) for m in messages] + [{"role": "assistant", "content": scored_text(response)}]
    text = rm_tokenizer.apply_chat_template(turns, tokenize=False, enable_thinking=False)
    bos = getattr(rm_tokenizer, "bos_token", None)
    # vLLM adds the BOS token itself when it tokenizes the input (as verl's own RM path notes).
    return text[len(bos):] if bos and text.startswith(bos) else text


def score_with_served_rm(router: str, rm_tokenizer: Any, messages: list[dict[str, Any]], response: str) -> float:
    """The RM score of ``response`` from verl's reward-model server (vLLM's ``/classify``, the
    pooled last-token logit without activation, as verl's own discriminative-RM path asks)."""
    import urllib.request

    payload = {"model": getattr(rm_tokenizer, "name_or_path", ""), "use_activation": False,
               "input": reward_model_prompt(rm_tokenizer, messages, response)}
    request = urllib.request.Request(f"http://{router}/classify", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    timeout = float(os.environ.get("CASCADE_VERL_REWARD_TIMEOUT", "60"))
    with urllib.request.urlopen(request, timeout=timeout) as response_file:  # noqa: S310 - the cluster's router
        output = json.loads(response_file.read())
    return float(output["data"][-1]["probs"][-1])


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

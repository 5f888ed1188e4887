"""Rollout plumbing for GRPO: the prompt stream (data cursor + epoch filter), the rollout
batch that carries a step's rollouts from generation to the loss, and generation with
rewards scored concurrently.

Generation runs in chunks. While chunk k+1 generates, chunk k is scored on a background
thread (the verifier batch API fans out to worker processes from there). The update waits
for every chunk, and all chunks were sampled with the same weights, so training stays
strictly on-policy; only reward latency is hidden.
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Iterable, Mapping, Sequence

import numpy as np

from cascade.algo.filters import GroupVerdict, epoch_pool
from cascade.engine.base import Engine, Generation, SamplingParams
from cascade.errors import CascadeError
from cascade.verifiers.base import VerifyResult

RewardFn = Callable[[Sequence[Mapping[str, Any]], Sequence[str]], list[VerifyResult]]


def record_id(record: Mapping[str, Any], index: int) -> Hashable:
    """The record's ``id`` (an error naming its line when it has none)."""
    if "id" not in record:
        raise CascadeError("an RL prompt record needs an 'id'", line=index + 1, field="id")
    return record["id"]


def record_messages(record: Mapping[str, Any], index: int) -> list[dict[str, Any]]:
    """The chat messages of an RL prompt record (``messages``, or ``prompt`` as one user turn)."""
    if "messages" in record:
        return list(record["messages"])
    if "prompt" in record:
        return [{"role": "user", "content": record["prompt"]}]
    raise CascadeError("an RL prompt record needs 'messages' or 'prompt'", line=index + 1, field="messages")


def record_domain(record: Mapping[str, Any]) -> str:
    """The domain a record's metrics are filed under (``meta.domain``, else its verifier)."""
    meta = record.get("meta") or {}
    return str(meta.get("domain") or record.get("verifier") or "unknown")


class PromptStream:
    """Hands out prompt records epoch after epoch, in a seeded order.

    With ``epoch_filter`` on, each new epoch's pool comes from ``algo.filters.epoch_pool``
    using the latest group verdict of every prompt. Verdicts of prompts drawn in the same call
    that crosses into the new epoch are not known yet, so their previous verdict is used.
    The whole state is JSON (``state_dict``) so a checkpoint can hold it.
    """

    def __init__(
        self,
        records: Sequence[Mapping[str, Any]],
        *,
        seed: int,
        epoch_filter: bool = False,
        readd_prob_all_correct: float = 0.01,
        readd_prob_all_wrong: float = 0.10,
    ) -> None:
        if not records:
            raise CascadeError("no RL prompt records to train on", field="data")
        self.records = list(records)
        self.ids = [record_id(r, i) for i, r in enumerate(self.records)]
        if len(set(self.ids)) != len(self.ids):
            dup = next(i for i in self.ids if self.ids.count(i) > 1)
            raise CascadeError(f"duplicate prompt id {dup!r}", field="id")
        self._index = {pid: i for i, pid in enumerate(self.ids)}
        self.seed = seed
        self.epoch_filter = epoch_filter
        self.readd = (readd_prob_all_correct, readd_prob_all_wrong)
        self.epoch = 0
        self.cursor = 0
        self.verdicts: dict[Hashable, GroupVerdict] = {}
        self.order = self._order_for_epoch(0)

    def _order_for_epoch(self, epoch: int) -> list[int]:
        pool = self.ids
        if self.epoch_filter and epoch > 0:
            pool = epoch_pool(
                self.ids,
                self.verdicts,
                epoch=epoch,
                seed=self.seed,
                readd_prob_all_correct=self.readd[0],
                readd_prob_all_wrong=self.readd[1],
            )
        rng = np.random.default_rng([self.seed, epoch, 1])
        return [self._index[pool[i]] for i in rng.permutation(len(pool))]

    def take(self, n: int) -> list[Mapping[str, Any]]:
        """The next ``n`` records, crossing into a new epoch (a fresh order) when one ends."""
        out: list[Mapping[str, Any]] = []
        while len(out) < n:
            if self.cursor >= len(self.order):
                self.epoch += 1
                self.cursor = 0
                self.order = self._order_for_epoch(self.epoch)
            out.append(self.records[self.order[self.cursor]])
            self.cursor += 1
        return out

    @property
    def completed_epochs(self) -> int:
        """Full passes handed out so far (the current pass counts once it is used up)."""
        return self.epoch + (self.cursor >= len(self.order))

    def position(self, record: Mapping[str, Any]) -> int:
        """The record's 0-based position in the input (its line number minus one)."""
        return self._index[record["id"]]

    def record_verdict(self, record: Mapping[str, Any], verdict: GroupVerdict) -> None:
        """Keep the latest group verdict of a prompt for the next epoch's filter."""
        self.verdicts[record["id"]] = verdict

    def state_dict(self) -> dict[str, Any]:
        """The cursor, the epoch order and the verdicts, as JSON (checkpoints hold it)."""
        # JSON keys must be strings; ids are mapped back through their position. The key
        # "outcomes" is what existing checkpoints hold.
        return {
            "epoch": self.epoch,
            "cursor": self.cursor,
            "order": self.order,
            "outcomes": {str(self._index[pid]): o for pid, o in self.verdicts.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Take back what :meth:`state_dict` returned."""
        self.epoch = int(state["epoch"])
        self.cursor = int(state["cursor"])
        self.order = [int(i) for i in state["order"]]
        self.verdicts = {self.ids[int(i)]: o for i, o in state["outcomes"].items()}


def stage_reward_fn(stage: str, *, reward_model: str | None = None, device: str = "cpu",
                    judge: Any = None) -> RewardFn:
    """A ``RewardFn`` for a paper stage: gathers what the stage's table entry
    (``cascade.verifiers.stage_rewards.STAGE_REWARDS``) says its reward reads (verifier
    outcomes through the batch API, RM scores, language-mixing flags, group ids) and returns
    the stage reward as each rollout's ``score``; ``passed`` stays the verifier's verdict
    (False for RLHF, which has no verifier).

    ``judge`` (the ``swe`` stage): a ``JudgedRewards``, which puts a judge model's P("YES")
    in place of the lexical score of every patch that is neither exact nor empty (paper Eq. 2),
    or the string ``"lexical"``, which keeps the lexical score (the paper's ablation)."""
    from cascade.verifiers.batch import score_batch
    from cascade.verifiers.language_mixing import detect_language_mixing, prompt_text
    from cascade.verifiers.rewards import RewardInputs
    from cascade.verifiers.stage_rewards import stage_reward

    entry = stage_reward(stage)
    scorer = None
    if entry.reward_model:
        if not reward_model:
            raise CascadeError(f"the {stage} reward needs a reward model checkpoint", field="reward_model")
        from cascade.engine.reward_scorer import RewardModelScorer

        scorer = RewardModelScorer(reward_model, device=device)

    judged = judge if isinstance(judge, JudgedRewards) else None
    if judge is not None and judged is None and judge != "lexical":
        raise CascadeError(f"judge must be a JudgedRewards or 'lexical' (got {type(judge).__name__})", field="judge")

    def score(records: Sequence[Mapping[str, Any]], completions: Sequence[str]) -> list[VerifyResult]:
        verdicts = score_batch(records, completions) if entry.reads_verifier else None
        if judged is not None and verdicts is not None:
            verdicts = judged.rejudge(records, verdicts)
        rm_scores = None
        if scorer is not None:
            rm_scores = scorer.score([record_messages(r, i) for i, r in enumerate(records)], completions)
        mixing = None
        if entry.language_mixing is not None:
            mixing = [detect_language_mixing(prompt_text(r), c) for r, c in zip(records, completions)]
        values = entry.reward(RewardInputs(
            verifier=verdicts, rm_scores=rm_scores, language_mixing=mixing, group_ids=[r["id"] for r in records]
        ))
        out = []
        for i, value in enumerate(values):
            base = verdicts[i] if verdicts is not None else VerifyResult(value, False)
            details = dict(base.details)
            if rm_scores is not None:
                details["rm_score"] = rm_scores[i]
            if mixing is not None:
                details["language_mixing"] = mixing[i]
            out.append(VerifyResult(value, base.passed, details, base.error, base.seconds))
        return out

    return score


class JudgedRewards:
    """The SWE reward's "otherwise" case scored by a judge model (``cascade.verifiers.judge``).

    The batch API's workers score every patch (parsing and applying model-written edits stays
    out of this process) and mark the non-exact, non-empty ones ``method: lexical``; those are
    sent to the judge, ``client.concurrency`` at a time, and get its P("YES"): ``method: judge``,
    the lexical score kept as ``details["lexical"]`` for comparison. An item the judge could not
    score after its retries gets ``fallback_reward``, ``method: judge_fallback``, the error in
    ``details["judge_error"]`` and ``VerifyResult.error == "judge_error"``; ``errors`` and
    ``calls`` count them. A batch whose failed share passes ``max_error_share`` raises: a judge
    that is down must stop training, not quietly turn the reward into a constant.
    """

    def __init__(self, client: Any, *, template: str | None = None, fallback_reward: float = 0.0,
                 max_error_share: float = 0.25) -> None:
        self.client = client
        self.template = template
        self.fallback_reward = fallback_reward
        self.max_error_share = max_error_share
        self.calls = 0
        self.errors = 0

    def rejudge(self, records: Sequence[Mapping[str, Any]], verdicts: Sequence[VerifyResult]) -> list[VerifyResult]:
        """The verdicts with every lexically scored patch re-scored by the judge (see the class)."""
        from cascade.verifiers.swe import judge_gold_patch, judge_issue, judge_prompt

        out = list(verdicts)
        todo = [i for i, v in enumerate(verdicts) if v.details.get("method") == "lexical" and v.error is None]
        if not todo:
            return out
        prompts = [judge_prompt(judge_issue(records[i]), judge_gold_patch(records[i]), verdicts[i].details["patch"],
                                self.template) for i in todo]
        answers = self.client.ask(prompts)
        failed = 0
        for i, answer in zip(todo, answers):
            base = verdicts[i]
            details = {**base.details, "lexical": base.score, "judge_attempts": answer.attempts}
            if answer.p_yes is None:
                failed += 1
                details.update(method="judge_fallback", judge_error=answer.error)
                out[i] = VerifyResult(self.fallback_reward, False, details, "judge_error", base.seconds)
            else:
                details["method"] = "judge"
                out[i] = VerifyResult(answer.p_yes, False, details, None, base.seconds)
        self.calls += len(todo)
        self.errors += failed
        if failed > self.max_error_share * len(todo):
            first = next(a.error for a in answers if a.p_yes is None)
            raise CascadeError(f"the judge failed {failed} of {len(todo)} calls in one batch (more than "
                               f"max_error_share {self.max_error_share:g}); first error: {first}", field="judge")
        return out


@dataclass
class RolloutBatch:
    """A step's rollouts, from generation to the loss, laid out group after group: with
    group size G, entries ``g*G .. g*G+G-1`` are the G rollouts of prompt g. Every list has
    N = groups x G entries, except ``zero_variance`` (one per group).

    ``generate_and_score`` fills ``records``, ``modes``, ``generations`` and ``results``; the
    trainer then sets ``rewards`` (after the overlong rule), ``valid`` (False: masked from the
    loss and from its group's statistics), ``advantages`` and ``zero_variance``; packing
    (``cascade.trainers.batching.pack_rollouts``) turns it into the engine's tensors.
    """

    records: list[Mapping[str, Any]] = field(default_factory=list)  # [N] the prompt record answered
    modes: list[str] = field(default_factory=list)  # [N] "think" / "no_think"
    generations: list[Generation] = field(default_factory=list)  # [N] sampled ids, log-probs, finish reason
    results: list[VerifyResult] = field(default_factory=list)  # [N] score = stage reward, passed = verdict
    rewards: list[float] = field(default_factory=list)  # [N] the training reward (logged)
    valid: list[bool] = field(default_factory=list)  # [N]
    advantages: list[float] = field(default_factory=list)  # [N]
    zero_variance: list[bool] = field(default_factory=list)  # [groups] the group gives no gradient
    # Wall time: generating, waiting for rewards not hidden behind generation, and inside
    # the reward function in total.
    generate_s: float = 0.0
    reward_s: float = 0.0
    reward_compute_s: float = 0.0

    PER_ROLLOUT = ("records", "modes", "generations", "results", "rewards", "valid", "advantages")

    def __len__(self) -> int:
        return len(self.generations)

    def add_groups(self, other: "RolloutBatch", groups: Iterable[int], group_size: int) -> None:
        """Append the given groups of ``other`` (their rollouts and zero-variance flags)."""
        for g in groups:
            rows = slice(g * group_size, (g + 1) * group_size)
            for name in self.PER_ROLLOUT:
                getattr(self, name).extend(getattr(other, name)[rows])
            self.zero_variance.append(other.zero_variance[g])


def generate_and_score(
    engine: Engine,
    prompts: Sequence[str],
    records: Sequence[Mapping[str, Any]],
    *,
    modes: Sequence[str],
    sampling: Callable[[int], SamplingParams],
    reward_fn: RewardFn,
    chunks: int,
    unit: int = 1,
) -> RolloutBatch:
    """Generate one completion per prompt and score it, overlapping the two by chunk.

    ``sampling(k)`` gives chunk k's parameters (its own seed). Chunks are cut on multiples
    of ``unit`` (the group size) so a group is generated in one call.
    """
    if len(prompts) != len(records):
        raise ValueError(f"{len(prompts)} prompts for {len(records)} records")
    n_units = max(len(prompts) // unit, 1)
    per_chunk = -(-n_units // max(min(chunks, n_units), 1)) * unit
    bounds = [(s, min(s + per_chunk, len(prompts))) for s in range(0, len(prompts), per_chunk)]
    out = RolloutBatch(records=list(records), modes=list(modes))
    compute_times: list[float] = []

    def score(recs: Sequence[Mapping[str, Any]], texts: list[str]) -> list[VerifyResult]:
        start = time.perf_counter()
        try:
            return reward_fn(recs, texts)
        finally:
            compute_times.append(time.perf_counter() - start)

    futures: list[Future[list[VerifyResult]]] = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="reward") as pool:
        for k, (a, b) in enumerate(bounds):
            start = time.perf_counter()
            gens = engine.generate(list(prompts[a:b]), sampling(k))
            out.generate_s += time.perf_counter() - start
            if len(gens) != b - a:
                raise RuntimeError(f"engine returned {len(gens)} generations for {b - a} prompts")
            out.generations.extend(gens)
            futures.append(pool.submit(score, records[a:b], [g.text for g in gens]))
        wait_start = time.perf_counter()
        for fut, (a, b) in zip(futures, bounds):
            results = fut.result()
            if len(results) != b - a:
                raise RuntimeError(f"reward function returned {len(results)} results for {b - a} completions")
            out.results.extend(results)
        out.reward_s = time.perf_counter() - wait_start
    out.reward_compute_s = sum(compute_times)
    return out


def render_prompt(record: Mapping[str, Any], index: int, mode: str) -> str:
    """An RL prompt record rendered for generation in ``mode`` ("think" / "no_think")."""
    from cascade.chat.template import render

    return render(record_messages(record, index), enable_thinking=mode == "think", add_generation_prompt=True)


def rollout_metrics(drawn: RolloutBatch) -> dict[str, float]:
    """Rollout statistics over every rollout drawn in a step. ``reward*`` is the training
    reward (after the overlong rule), ``pass_rate*`` the verifier's verdict."""
    n = max(len(drawn.generations), 1)
    lengths = [len(g.token_ids) for g in drawn.generations]
    metrics = {
        "reward_mean": float(np.mean(drawn.rewards)) if drawn.rewards else 0.0,
        "pass_rate": float(np.mean([r.passed for r in drawn.results])) if drawn.results else 0.0,
        "response_len_mean": float(np.mean(lengths)) if lengths else 0.0,
        "response_len_max": float(max(lengths, default=0)),
        "truncated_share": sum(g.finish_reason == "length" for g in drawn.generations) / n,
        "generated_tokens": float(sum(lengths)),
    }
    # How each reward was reached (exact / lexical / judge / judge_fallback for SWE): a judge
    # that failed shows up here as a count, never as a silent change of score.
    methods = Counter(str(r.details.get("method")) for r in drawn.results if r.details.get("method"))
    for method, count in sorted(methods.items()):
        metrics[f"reward_method/{method}"] = float(count)
    by_key: dict[str, list[tuple[float, bool]]] = {}
    for record, mode, reward, result in zip(drawn.records, drawn.modes, drawn.rewards, drawn.results):
        by_key.setdefault(f"{record_domain(record)}/{mode}", []).append((reward, result.passed))
    for key, pairs in sorted(by_key.items()):
        metrics[f"reward/{key}"] = float(np.mean([p[0] for p in pairs]))
        metrics[f"pass_rate/{key}"] = float(np.mean([p[1] for p in pairs]))
    return metrics

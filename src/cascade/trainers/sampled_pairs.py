"""Preference pairs rated from a policy's own replies (the RM stage's ``sampled_pairs``).

HelpSteer2/3, most of the paper's reward-model data, are human ratings of model responses.
Here the rater is each prompt record's verifier: the policy answers every prompt several
times per mode, and a reply the verifier passes, and that finished, is paired as chosen
against a failing reply to the same prompt.

Why: a reward model trained only on templated pairs learns what separates the templates,
which need not be what separates the policy's right and wrong replies. In the tiny recipe
such a model put the SFT policy's right chat replies above its wrong ones in 0.50-0.67 of
the pairs on the held-out prompts (three seeds), and RLHF climbed its errors; with these
pairs added, 0.70-0.90.

The pairs are written to the stage directory before training, so a resumed stage trains on
the same pairs, and anyone can read what the reward model was shown.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from cascade.data.io import iter_rows, write_jsonl

if TYPE_CHECKING:
    from cascade.config.recipe import SampledPairs

PAIRS_FILE = "sampled_pairs.jsonl"


@dataclass(frozen=True)
class RatedReply:
    """One sampled reply to be rated: which prompt it answers and the text the reward model reads."""
    prompt_index: int
    text: str  # what the reward model reads: the answer after the reasoning
    good: bool


def pair_rated_replies(
    replies: Sequence[RatedReply], max_pairs_per_prompt: int, seed: int
) -> list[tuple[int, str, str]]:
    """``(prompt_index, chosen, rejected)`` pairs: per prompt, each distinct good reply
    against each distinct bad one, shuffled by ``seed`` and cut to ``max_pairs_per_prompt``.

    A text rated both good and bad (a right answer once finished and once cut off at the
    same text) is left out: the reward model reads the same text for both. Prompts come out
    in index order.
    """
    good: dict[int, set[str]] = {}
    bad: dict[int, set[str]] = {}
    for r in replies:
        (good if r.good else bad).setdefault(r.prompt_index, set()).add(r.text)
    rng = random.Random(seed)
    out = []
    for index in sorted(set(good) & set(bad)):
        chosen = sorted(good[index] - bad[index])
        rejected = sorted(bad[index] - good[index])
        combos = [(c, r) for c in chosen for r in rejected]
        rng.shuffle(combos)
        out += [(index, c, r) for c, r in combos[:max_pairs_per_prompt]]
    return out


def sample_rated_pairs(
    engine: Any, records: Sequence[Mapping[str, Any]], spec: "SampledPairs", seed: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Sample ``spec.samples`` replies per prompt and mode from ``engine`` (a policy), rate
    them with each record's verifier, and pair them. Returns the preference records and a
    summary (replies sampled, how many passed, pairs made)."""
    from cascade.engine.base import SamplingParams
    from cascade.trainers.rollout import render_prompt
    from cascade.trainers.rollout import record_messages
    from cascade.verifiers.batch import score_batch
    from cascade.engine.reward_scorer import scored_text

    modes = ("think", "no_think") if spec.modes == "both" else (spec.modes,)
    slots = [(i, mode) for i, _ in enumerate(records) for mode in modes for _ in range(spec.samples)]
    prompts = [render_prompt(records[i], i, mode) for i, mode in slots]
    generations = engine.generate(prompts, SamplingParams(
        max_new_tokens=spec.max_new_tokens, temperature=spec.temperature, top_p=spec.top_p, seed=seed))
    verdicts = score_batch([records[i] for i, _ in slots], [g.text for g in generations])
    replies = []
    for (i, _mode), gen, verdict in zip(slots, generations, verdicts):
        # Pair the text the RLHF reward will show the RM: the answer after the reasoning.
        replies.append(RatedReply(i, scored_text(gen.text), bool(verdict.passed) and gen.finish_reason == "stop"))
    made = pair_rated_replies(replies, spec.max_pairs_per_prompt, seed)
    pairs = [{"id": f"sampled-{n}", "messages": record_messages(records[index], index), "chosen": chosen,
              "rejected": rejected, "source": f"sampled:{records[index].get('id', index)}"}
             for n, (index, chosen, rejected) in enumerate(made)]
    summary = {"replies": len(replies), "passed": sum(r.good for r in replies),
               "prompts_paired": len({index for index, _, _ in made}), "pairs": len(pairs)}
    return pairs, summary


def write_pairs(path: Path, pairs: Sequence[Mapping[str, Any]]) -> None:
    """Write the rated pairs as JSON lines."""
    write_jsonl(path, pairs)  # atomic: a kill mid-write leaves no half file to resume from


def read_pairs(path: Path) -> list[dict[str, Any]]:
    """Read the pairs :func:`write_pairs` wrote."""
    return [row for _, row in iter_rows(path)]

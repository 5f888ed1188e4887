"""ArenaHard's pairwise judgement and win rate, as arena-hard-auto computes them.

Source: github.com/lmarena/arena-hard-auto at commit 196f6b8 (Apache-2.0). The judge's system
prompt (``OG_ARENA_HARD_PROMPT`` in ``utils/judge_utils.py``), the user-prompt template and
the verdict patterns (``config/arena-hard-v0.1.yaml``) are reproduced verbatim under that
licence, because a judge that reads other words gives other verdicts. What this module does
the way arena-hard-auto does it:

- each question is judged twice (``gen_judgment.py``): game 1 shows the baseline's answer as
  assistant A and the model's as B, game 2 the other way round; the judge runs at
  temperature 0 with at most 4096 new tokens;
- the verdict is the LAST match in the upper-cased judgement of the first pattern that
  matches at all (``get_score``): ``[[A>>B]]``, ``[[A>B]]``, ``[[A=B]]``, ``[[B>A]]``,
  ``[[B>>A]]`` (and the single-bracket form);
- scores (``show_result.py``, ``load_judgments``): a question with a missing or unknown
  verdict in either game is dropped; otherwise the model's scores are game 2's
  ``label_to_score`` plus one minus game 1's, a strong verdict (``>>``) counting three times;
- the win rate is the mean over 100 bootstrap resamples (with replacement) of those
  scores' mean, and the interval their 5% and 95% quantiles (``print_leaderboard``).

The model card's ArenaHard numbers are v0.1 against the gpt-4-0314 baseline, judged by
GPT-4-Turbo, without style control (paper arXiv 2512.13607, App. B).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any, Sequence

JUDGE_SYSTEM_PROMPT = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants "
    "to the user prompt displayed below. You will be given assistant A's answer and assistant B's answer. Your "
    "job is to evaluate which assistant's answer is better.\n\nBegin your evaluation by generating your own answer "
    "to the prompt. You must provide your answers before judging any answers.\n\nWhen evaluating the assistants' "
    "answers, compare both assistants' answers with your answer. You must identify and correct any mistakes or "
    "inaccurate information.\n\nThen consider if the assistant's answers are helpful, relevant, and concise. "
    "Helpful means the answer correctly responds to the prompt or follows the instructions. Note when user prompt "
    "has any ambiguity or more than one interpretation, it is more helpful and appropriate to ask for "
    "clarifications or more information from the user than providing an answer based on assumptions. Relevant "
    "means all parts of the response closely connect or are appropriate to what is being asked. Concise means the "
    "response is clear and not verbose or excessive.\n\nThen consider the creativity and novelty of the "
    "assistant's answers when needed. Finally, identify any missing important information in the assistants' "
    "answers that would be beneficial to include when responding to the user prompt.\n\nAfter providing your "
    "explanation, you must output only one of the following choices as your final verdict with a label:\n\n"
    "1. Assistant A is significantly better: [[A>>B]]\n2. Assistant A is slightly better: [[A>B]]\n"
    "3. Tie, relatively the same: [[A=B]]\n4. Assistant B is slightly better: [[B>A]]\n"
    "5. Assistant B is significantly better: [[B>>A]]\n\nExample output: \"My final verdict is tie: [[A=B]]\"."
)
USER_TEMPLATE = (
    "<|User Prompt|>\n{QUESTION}\n\n<|The Start of Assistant A's Answer|>\n{ANSWER_A}\n"
    "<|The End of Assistant A's Answer|>\n\n<|The Start of Assistant B's Answer|>\n{ANSWER_B}\n"
    "<|The End of Assistant B's Answer|>"
)
VERDICT_PATTERNS = (re.compile(r"\[\[([AB<>=]+)\]\]"), re.compile(r"\[([AB<>=]+)\]"))
JUDGE_TEMPERATURE = 0.0
JUDGE_MAX_TOKENS = 4096
STRONG_WEIGHT = 3
BOOTSTRAP_ROUNDS = 100

# The score of assistant A's side for each label, as lists so a strong verdict counts thrice.
LABEL_TO_SCORE: dict[str, list[float]] = {
    "A>B": [1.0], "A>>B": [1.0] * STRONG_WEIGHT, "A=B": [0.5], "A<<B": [0.0] * STRONG_WEIGHT, "A<B": [0.0],
    "B>A": [0.0], "B>>A": [0.0] * STRONG_WEIGHT, "B=A": [0.5], "B<<A": [1.0] * STRONG_WEIGHT, "B<A": [1.0],
}


def judge_messages(question: str, answer_a: str, answer_b: str) -> list[dict[str, str]]:
    """The judge's chat: arena-hard-auto's system prompt and its user template."""
    user = USER_TEMPLATE.format(QUESTION=question, ANSWER_A=answer_a, ANSWER_B=answer_b)
    return [{"role": "system", "content": JUDGE_SYSTEM_PROMPT}, {"role": "user", "content": user}]


def parse_verdict(judgement: str) -> str | None:
    """The verdict label of a judgement (``"A>>B"``...), or None when none is given."""
    upper = judgement.upper()
    for pattern in VERDICT_PATTERNS:
        found = [m for m in pattern.findall(upper) if m != ""]
        if found:
            return found[-1].strip("\n")
    return None


def question_scores(game1: str | None, game2: str | None) -> list[float] | None:
    """The model's scores for one question from game 1 (baseline is A) and game 2 (model is
    A); None when either verdict is missing or not a known label (arena-hard-auto drops it)."""
    if game1 not in LABEL_TO_SCORE or game2 not in LABEL_TO_SCORE:
        return None
    return LABEL_TO_SCORE[game2] + [1.0 - s for s in LABEL_TO_SCORE[game1]]


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (pandas' and numpy's default)."""
    pos = (len(sorted_values) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass(frozen=True)
class WinRate:
    win_rate: float  # the mean of the bootstrap means, in [0, 1]
    lower: float  # 5% quantile of the bootstrap means
    upper: float  # 95% quantile
    n_questions: int  # questions with both verdicts
    n_dropped: int  # questions with a missing or unknown verdict
    n_battles: int  # scored entries (a strong verdict is three)


def win_rate(per_question: Sequence[list[float] | None], *, rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0) -> WinRate:
    """Bootstrap the mean battle score: resample the battles with replacement ``rounds`` times."""
    kept = [s for s in per_question if s is not None]
    battles = [score for scores in kept for score in scores]
    dropped = len(per_question) - len(kept)
    if not battles:
        return WinRate(float("nan"), float("nan"), float("nan"), 0, dropped, 0)
    rng = random.Random(seed)
    n = len(battles)
    means = sorted(sum(battles[rng.randrange(n)] for _ in range(n)) / n for _ in range(rounds))
    return WinRate(sum(means) / rounds, _quantile(means, 0.05), _quantile(means, 0.95), len(kept), dropped, n)


def judge_requests(question: str, model_answer: str, baseline_answer: str) -> list[list[dict[str, str]]]:
    """The two games' chats for one question: baseline as A first, then the model as A."""
    return [judge_messages(question, baseline_answer, model_answer), judge_messages(question, model_answer, baseline_answer)]


def judgement_row(row: dict[str, Any], texts: Sequence[str], judge_model: str, baseline_model: str) -> dict[str, Any]:
    """What is stored per question: both judgements, their verdicts and the resulting scores."""
    verdicts = [parse_verdict(t) for t in texts]
    return {"id": row["id"], "seed": row["seed"], "judge": judge_model, "baseline": baseline_model,
            "games": [{"order": "baseline=A, model=B", "judgement": texts[0], "verdict": verdicts[0]},
                      {"order": "model=A, baseline=B", "judgement": texts[1], "verdict": verdicts[1]}],
            "scores": question_scores(verdicts[0], verdicts[1])}

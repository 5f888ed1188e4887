"""``stage_reward_fn``: what each stage's reward gathers (verifier verdicts, reward-model
scores, language-mixing flags, group ids) and hands to the pure stage reward.

The pure rewards have hand-computed tests of their own; these check the gathering, with a
stand-in reward model whose scores are set by hand and the real verifiers and detector.
"""

from __future__ import annotations

import pytest

import cascade.engine.reward_scorer as reward_model
from cascade.errors import CascadeError
from cascade.trainers.rollout import stage_reward_fn
from cascade.verifiers.base import VerifyResult

MATH = {"id": "m1", "prompt": "What is 2 + 2?", "verifier": "math", "ground_truth": "4"}
RIGHT, WRONG, MIXED = r"It is \boxed{4}.", r"It is \boxed{5}.", r"答案是 \boxed{4}。"


class HandSetRewardModel:
    """Scores a reply by its length; records how it was built and called."""

    built: list[tuple[str, str]] = []
    calls: list[tuple[list, list]] = []

    def __init__(self, path: str, device: str = "cpu") -> None:
        HandSetRewardModel.built.append((path, device))

    def score(self, conversations, completions):
        HandSetRewardModel.calls.append((conversations, list(completions)))
        return [float(len(c)) for c in completions]


@pytest.fixture
def rm(monkeypatch):
    HandSetRewardModel.built, HandSetRewardModel.calls = [], []
    monkeypatch.setattr(reward_model, "RewardModelScorer", HandSetRewardModel)
    return HandSetRewardModel


def test_unknown_stage_and_missing_reward_model_name_the_field():
    with pytest.raises(CascadeError, match="unknown stage reward 'mathz'; known: code, if, if_thinking") as err:
        stage_reward_fn("mathz")
    assert err.value.field == "reward"
    for stage in ("rlhf", "if_thinking"):
        with pytest.raises(CascadeError, match=f"the {stage} reward needs a reward model") as err:
            stage_reward_fn(stage)
        assert err.value.field == "reward_model"


def test_math_reads_the_verifier_and_the_mixing_flag(rm):
    results = stage_reward_fn("math", reward_model="unused")([MATH] * 4, [RIGHT, WRONG, MIXED, "<think>unfinished"])
    assert [r.score for r in results] == [1.0, 0.0, -1.0, 0.0]
    assert [r.passed for r in results] == [True, False, True, False]  # passed stays the verifier's verdict
    # the verifier's error and timing come through
    assert [r.error for r in results] == [None, None, None, "no_answer: <think> never closed"]
    assert all(isinstance(r.seconds, float) and r.seconds > 0 for r in results)
    assert [r.details["language_mixing"] for r in results] == [False, False, True, False]
    assert all("rm_score" not in r.details for r in results)
    assert rm.built == []  # math reads no reward model


def test_code_zeroes_a_mixed_reply():
    record = {"id": "c1", "prompt": "Print 1.", "verifier": "code",
              "ground_truth": {"style": "stdin", "tests": [{"input": "", "output": "1"}]}}
    results = stage_reward_fn("code")([record] * 2, ["```python\nprint(1)\n```", "输出：\n```python\nprint(1)\n```"])
    assert [r.score for r in results] == [1.0, 0.0]
    assert [r.details["language_mixing"] for r in results] == [False, True]


def test_rlhf_reads_the_reward_model_and_the_mixing_flag(rm):
    records = [{"id": "a", "prompt": "Say hi."}, {"id": "b", "messages": [{"role": "user", "content": "Hello?"}]}]
    results = stage_reward_fn("rlhf", reward_model="/rm", device="cuda:1")(records, ["hi", "你好 there"])
    assert rm.built == [("/rm", "cuda:1")]
    ((conversations, completions),) = rm.calls
    assert conversations == [[{"role": "user", "content": "Say hi."}], [{"role": "user", "content": "Hello?"}]]
    assert completions == ["hi", "你好 there"]
    # the second reply mixes: the batch's lowest RM score (2.0, "hi") - 10
    assert [r.score for r in results] == [2.0, -8.0]
    assert [r.passed for r in results] == [False, False]
    assert [r.details["rm_score"] for r in results] == [2.0, 8.0]
    assert [r.details["language_mixing"] for r in results] == [False, True]
    # RLHF has no verifier: nothing but the RM score and the mixing flag in the details
    assert all(set(r.details) == {"rm_score", "language_mixing"} and r.error is None for r in results)


def test_a_record_without_a_prompt_is_named_by_its_line(rm):
    records = [{"id": "a", "prompt": "Say hi."}, {"id": "b"}]
    with pytest.raises(CascadeError, match="needs 'messages' or 'prompt'") as err:
        stage_reward_fn("rlhf", reward_model="/rm")(records, ["hi", "hello"])
    assert err.value.line == 2


def test_if_thinking_z_scores_the_rm_within_each_prompts_group(rm):
    records = [{"id": pid, "prompt": "Answer in lowercase.", "verifier": "ifeval",
                "ground_truth": {"instruction_id_list": ["change_case:english_lowercase"], "kwargs": [{}]}}
               for pid in ("a", "a", "b", "b")]
    # group a: lengths 15 and 20 -> z = -1, +1; group b: equal lengths -> z = 0
    replies = ["ok there friend", "okay there my friend", "yes there friend", "YES THERE FRIEND"]
    results = stage_reward_fn("if_thinking", reward_model="/rm")(records, replies)
    assert rm.built == [("/rm", "cpu")]  # the reward model runs on the CPU unless told otherwise
    assert [r.passed for r in results] == [True, True, True, False]
    sig = lambda z: 1 / (1 + 2.718281828459045 ** -z)  # noqa: E731
    assert [r.score for r in results] == pytest.approx([1 + sig(-1), 1 + sig(1), 1 + sig(0), 0.0])
    assert all("language_mixing" not in r.details for r in results)  # IF-RL does not penalise mixing


def test_swe_passes_the_verifier_score_through():
    gold = "--- a/a.py\n+++ b/a.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n"
    record = {"id": "s1", "prompt": "Fix it.", "verifier": "swe",
              "ground_truth": {"files": {"a.py": "x = 1\n"}, "gold_patch": gold}}
    edit = "```diff\n### a.py\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n```\n"
    results = stage_reward_fn("swe")([record] * 2, ["no patch here", edit])
    assert [r.score for r in results] == [-1.0, 1.0]  # no parseable patch: -1 (Eq. 2); the gold edit: 1
    assert "language_mixing" not in results[0].details and "rm_score" not in results[0].details


def test_swe_routes_its_verdicts_through_the_judge_it_is_given():
    from cascade.trainers.rollout import JudgedRewards

    class MarkingJudge(JudgedRewards):
        """Puts 0.5 on every verdict, so the test sees that the stage asked the judge."""

        def __init__(self) -> None:
            self.seen = []

        def rejudge(self, records, verdicts):
            self.seen.extend(r["id"] for r in records)
            return [VerifyResult(0.5, False, {"method": "judge"}) for _ in verdicts]

    gold = "--- a/a.py\n+++ b/a.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n"
    record = {"id": "s1", "prompt": "Fix it.", "verifier": "swe",
              "ground_truth": {"files": {"a.py": "x = 1\n"}, "gold_patch": gold}}
    judge = MarkingJudge()
    assert [r.score for r in stage_reward_fn("swe", judge=judge)([record], ["no patch"])] == [0.5]
    assert judge.seen == ["s1"]  # the judge gets the records (for their issue and gold patch)
    assert [r.score for r in stage_reward_fn("swe", judge="lexical")([record], ["no patch"])] == [-1.0]
    for bad in (object(), "lexicon"):
        with pytest.raises(CascadeError) as err:
            stage_reward_fn("swe", judge=bad)
        assert err.value.field == "judge"
        assert err.value.message == f"judge must be a JudgedRewards or 'lexical' (got {type(bad).__name__})"

"""ArenaHard: arena-hard-auto's verdict parsing, battle scores and bootstrap win rate
(hand-computed), "not scored" without a judge, and the whole path end to end against a judge
served by a real `cascade serve` process on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cascade.cli import main
from cascade.eval.arena_judge import (JUDGE_SYSTEM_PROMPT, judge_requests, parse_verdict, question_scores,
                                      win_rate)


@pytest.mark.parametrize("text,verdict", [
    ("My final verdict is tie: [[A=B]]", "A=B"),
    ("[[a>>b]]", "A>>B"),  # upper-cased first, as arena-hard-auto does
    ("First [[A>B]], on reflection [[B>A]]", "B>A"),  # the last label counts
    ("Verdict: [B>>A]", "B>>A"),  # the single-bracket pattern when no double one exists
    ("[[A>B]] and [B>A]", "A>B"),  # the double-bracket pattern wins when it matches
    ("no label here", None),
    ("[[]]", None),
])
def test_verdict_is_the_last_label_of_the_first_matching_pattern(text, verdict):
    assert parse_verdict(text) == verdict


def test_both_orders_and_their_scores():
    first, second = judge_requests("Q?", "model answer", "baseline answer")
    assert first[0]["content"] == JUDGE_SYSTEM_PROMPT
    assert "Assistant A's Answer|>\nbaseline answer" in first[1]["content"]  # game 1: baseline is A
    assert "Assistant A's Answer|>\nmodel answer" in second[1]["content"]  # game 2: the model is A
    # game 1 says the baseline (A) is much better, game 2 says the model (A) is slightly better
    assert question_scores("A>>B", "A>B") == [1.0, 0.0, 0.0, 0.0]
    assert question_scores("B>A", "A=B") == [0.5, 1.0]
    assert question_scores("B>>A", "A>>B") == [1.0] * 6
    assert question_scores(None, "A>B") is None and question_scores("A>B>A", "A>B") is None


def test_win_rate_is_the_bootstrap_mean_with_5_and_95_percent_quantiles():
    constant = win_rate([[1.0], [1.0, 1.0, 1.0]])
    assert (constant.win_rate, constant.lower, constant.upper) == (1.0, 1.0, 1.0)
    assert (constant.n_questions, constant.n_battles, constant.n_dropped) == (2, 4, 0)
    half = win_rate([[1.0, 0.0]] * 50 + [None], rounds=100, seed=3)
    assert half.n_dropped == 1 and half.n_battles == 100
    assert half.lower < half.win_rate < half.upper
    assert half.win_rate == pytest.approx(0.5, abs=0.02)
    # 100 Bernoulli(0.5) battles: the bootstrap mean's sd is 0.05, so the 90% interval is about +-0.082
    assert half.upper - half.lower == pytest.approx(0.164, abs=0.05)
    empty = win_rate([None, None])
    assert empty.n_questions == 0 and empty.win_rate != empty.win_rate  # NaN: nothing to score


class EchoBackend:
    name = "echo"

    def generate(self, requests):
        from cascade.eval.backends.base import GenOutput

        return [GenOutput(text="An answer.", tokens=3, finish_reason="stop") for _ in requests]

    def close(self):
        pass


def test_without_a_judge_arena_hard_is_not_scored(shared_data, tmp_path):
    from cascade.eval.benchmarks import get_benchmark
    from cascade.eval.runner import EvalSettings, evaluate

    settings = EvalSettings(limit=2, workers=1, max_tokens=16)
    metrics = evaluate(EchoBackend(), [(get_benchmark("arena_hard"), 1)], tmp_path, data_dir=shared_data,
                       settings=settings, progress=False)
    m = metrics["arena_hard.think"]
    assert m["status"] == "not scored" and m["win_rate"] is None and m.get("avg_at_k") is None
    assert any("no judge configured" in f for f in m["flags"])
    summary = (tmp_path / "summary.md").read_text()
    row = next(line for line in summary.splitlines() if line.startswith("| arena_hard"))
    assert "not scored" in row and "87.9" not in row and "0.0" not in row


@pytest.fixture(scope="module")
def verdict_judge(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model turned into a judge that answers every prompt with ``[A>B]``: with every
    attention output projection at zero no token sees another, so the model is a bigram table
    and what it learns from one prompt holds for any prompt. Its quality is beside the point;
    the judged path gets verdicts to parse."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cascade.chat.template import chat_template
    from cascade.eval.arena_judge import judge_messages

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tok.chat_template = chat_template()
    for layer in model.model.layers:
        layer.self_attn.o_proj.weight.data.zero_()
        layer.self_attn.o_proj.weight.requires_grad_(False)
    target = tok("[A>B]<|im_end|>", add_special_tokens=False)["input_ids"]
    prompt = tok.apply_chat_template(judge_messages("q", "a", "b"), tokenize=False, add_generation_prompt=True,
                                     enable_thinking=False)
    ids = tok(prompt, add_special_tokens=False)["input_ids"][-4:]
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(30):
        model(input_ids=torch.tensor([ids + target]), labels=torch.tensor([[-100] * len(ids) + target])).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    torch.set_num_threads(threads)  # later tests compare in-process runs with subprocess runs
    out = tmp_path_factory.mktemp("judge") / "model"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_arena_hard_end_to_end_with_a_served_judge(shared_data, tiny_model_dir, verdict_judge, tmp_path):
    from cascade.serve.process import ServerProcess

    out = tmp_path / "eval"
    with open(tmp_path / "serve.log", "w") as log, \
            ServerProcess(verdict_judge, name="judge", extra_args=["--device", "cpu"], log=log,
                          env={"OMP_NUM_THREADS": "1"}) as judge:
        args = ["eval", "--model", str(tiny_model_dir), "--benchmarks", "arena_hard", "--limit", "2",
                "--max-tokens", "8", "--temperature", "0", "--device", "cpu", "--data-dir", str(shared_data),
                "--out", str(out), "--workers", "1", "--no-progress",
                "--judge-base-url", judge.base_url, "--judge-model", "judge", "--judge-max-tokens", "12",
                "--judge-thinking-flag"]
        assert main(args) == 0
    judgments = [json.loads(line) for line in (out / "arena_hard.think.judgments.jsonl").read_text().splitlines()]
    assert len(judgments) == 2
    for j in judgments:
        assert [g["order"] for g in j["games"]] == ["baseline=A, model=B", "model=A, baseline=B"]
        assert all(g["judgement"] for g in j["games"])
        assert [g["verdict"] for g in j["games"]] == ["A>B", "A>B"], j["games"]
        assert j["scores"] == [1.0, 0.0] and j["baseline"] == "gpt-4-0314"
    m = json.loads((out / "metrics.json").read_text())["results"]["arena_hard.think"]
    # A judge that always prefers assistant A: the model wins game 2, loses game 1.
    assert m["status"] == "scored" and m["win_rate"] == pytest.approx(0.5, abs=0.15)
    assert m["ci_lower"] <= m["win_rate"] <= m["ci_upper"] and m["n_judged"] == 2 and m["n_battles"] == 4
    assert any("judge judge (the card's judge" in f for f in m["flags"])
    summary = (out / "summary.md").read_text()
    assert "not comparable" in summary and "87.9" not in summary


def test_a_hosted_judge_gets_no_chat_template_field():
    """Hosted APIs (the card's judge is GPT-4-Turbo) refuse vLLM's chat_template_kwargs."""
    from types import SimpleNamespace

    from cascade.eval.backends.base import GenRequest
    from cascade.eval.backends.openai_http import OpenAIBackend

    sent = []

    def create(**kwargs):
        sent.append(kwargs)
        message = SimpleNamespace(content="[[A=B]]", tool_calls=None, model_extra={})
        return SimpleNamespace(choices=[SimpleNamespace(message=message, finish_reason="stop")],
                               usage=SimpleNamespace(completion_tokens=3))

    client = SimpleNamespace(chat=SimpleNamespace(completions=SimpleNamespace(create=create)))
    request = GenRequest(messages=[{"role": "user", "content": "q"}], enable_thinking=False, max_tokens=8)
    for flag in (False, True):
        backend = OpenAIBackend("judge", base_url="http://x/v1", client=client, thinking_flag=flag)
        assert backend.generate([request])[0].text == "[[A=B]]"
        backend.close()
    assert "extra_body" not in sent[0] and sent[1]["extra_body"]["chat_template_kwargs"] == {"enable_thinking": False}

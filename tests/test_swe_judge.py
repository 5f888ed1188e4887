"""The SWE reward's judge in training: P("YES") read from a served judge's logprobs.

The acceptance run: a SWE-RL step on the toy world whose judge is a tiny model served by
`cascade serve` (its HTTP server, on loopback), named in the recipe's stage. The judge is a
tiny model fine-tuned here for a few steps to answer ``<judgement>YES</judgement>`` or NO, so
its verdict token has a real probability; the rewards of non-exact, non-empty patches must be
that probability, computed independently with transformers. A judge that is down or slow gives
the recipe's fallback reward, counted, never the lexical score.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest
import torch
from stage_helpers import grpo_stage, sft_stage

from cascade.chat.template import render
from cascade.config.recipe import GRPOStage
from cascade.engine.base import Generation
from cascade.engine.local import LocalEngine
from cascade.errors import CascadeError
from cascade.pipeline.runner import judged_reward_fn
from cascade.serve.server import ChatService, make_server
from cascade.toyworld.build import build_toy_world
from cascade.trainers import grpo
from cascade.trainers.grpo import train_grpo
from cascade.trainers.rollout import JudgedRewards
from cascade.verifiers.base import VerifyResult
from cascade.verifiers.judge import JudgeClient, JudgeError, JudgeVerdict, verdict_p_yes
from cascade.verifiers.swe import judge_prompt

torch.set_num_threads(1)

# A short judge prompt keeps the tiny judge's fine-tuning fast; it also exercises prompt_file.
TEMPLATE = "Issue: {issue}\nGold:\n{gold_patch}\nCandidate:\n{model_patch}\nVerdict?"
VERDICT_TOKENS = ["<judgement>", "</judgement>", "YES", "NO"]


# ---------------------------------------------------------------- read-out, by hand


def _tok(token: str, logprob: float = -0.1, top: list[tuple[str, float]] | None = None) -> dict:
    return {"token": token, "logprob": logprob, "top_logprobs": [{"token": t, "logprob": lp} for t, lp in top or []]}


def test_verdict_p_yes_by_hand():
    import math

    after_tag = [_tok("Looks fine. "), _tok("<judgement>"), _tok("YES", top=[("YES", math.log(0.7)), ("NO", math.log(0.2)),
                                                                             (" YES", math.log(0.05)), ("YESTERDAY", -1.0)])]
    assert verdict_p_yes(after_tag) == pytest.approx(0.75)  # YES and " YES"; not YESTERDAY
    split_tag = [_tok("<jud"), _tok("gement"), _tok(">"), _tok("Y", top=[("Y", math.log(0.4)), ("N", math.log(0.6))])]
    assert verdict_p_yes(split_tag) == pytest.approx(0.4)  # the first piece of YES
    inside = [_tok("<judgement"), _tok(">NO", top=[(">NO", math.log(0.9)), (">YES", math.log(0.1)), ("YES", -0.1)])]
    assert verdict_p_yes(inside) == pytest.approx(0.1)  # the tag ends inside the token
    with pytest.raises(JudgeError, match="no <judgement> verdict"):
        verdict_p_yes([_tok("YES")])
    with pytest.raises(JudgeError, match="top_logprobs"):
        verdict_p_yes([_tok("<judgement>"), _tok("YES")])
    with pytest.raises(JudgeError, match="no verdict token"):
        verdict_p_yes([_tok("<judgement>")])


class _Client:
    def __init__(self, answers):
        self.answers, self.prompts = answers, []

    def ask(self, prompts):
        self.prompts += prompts
        return self.answers[: len(prompts)]


def test_judged_rewards_replace_only_the_lexical_case_and_count_failures():
    record = {"id": "r", "prompt": "Fix it.", "ground_truth": {"files": {"a.py": "x = 1\n"},
                                                               "gold_patch": "--- a/a.py\n+++ b/a.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n"}}
    lexical = VerifyResult(0.4, False, {"method": "lexical", "patch": "P"})
    exact = VerifyResult(1.0, True, {"method": "exact", "patch": "G"})
    judged = JudgedRewards(_Client([JudgeVerdict(0.8), JudgeVerdict(None, "OSError: refused", 3)]),
                           fallback_reward=-0.25, max_error_share=0.5)
    out = judged.rejudge([record] * 3, [lexical, exact, lexical])
    assert [r.score for r in out] == [0.8, 1.0, -0.25]
    assert out[0].details["method"] == "judge" and out[0].details["lexical"] == 0.4
    assert out[2].details["method"] == "judge_fallback" and out[2].error == "judge_error"
    assert out[2].details["judge_error"] == "OSError: refused"
    assert (judged.calls, judged.errors) == (2, 1)
    assert judged.client.prompts[0] == judge_prompt("Fix it.", record["ground_truth"]["gold_patch"], "P")
    down = JudgedRewards(_Client([JudgeVerdict(None, "timeout")] * 2), max_error_share=0.5)
    with pytest.raises(CascadeError, match="failed 2 of 2 calls"):
        down.rejudge([record] * 2, [lexical, lexical])


def test_a_swe_stage_must_name_its_judge():
    base = dict(name="swe", kind="grpo", data=[{"path": "x.jsonl"}], max_steps=1, reward="swe")
    with pytest.raises(ValueError, match="judge: lexical"):
        GRPOStage.model_validate(base)
    assert GRPOStage.model_validate({**base, "judge": "lexical"}).judge == "lexical"
    endpoint = GRPOStage.model_validate({**base, "judge": {"base_url": "http://127.0.0.1:1/v1", "model": "j"}})
    assert endpoint.judge.timeout_s > 0
    with pytest.raises(ValueError, match="only the swe reward"):
        GRPOStage.model_validate({**base, "reward": "math", "judge": "lexical"})


# ---------------------------------------------------------------- the acceptance run


def _edits(record: dict) -> dict[str, str]:
    """Crafted answers for a toy SWE task: exact, two wrong fixes, a no-op, garbage."""
    gold = record["ground_truth"]["gold_patch"]
    path = next(iter(record["ground_truth"]["files"]))
    bad = re.search(r"^-(    return .*)$", gold, re.M).group(1)
    good = re.search(r"^\+(    return .*)$", gold, re.M).group(1)

    def edit(new: str) -> str:
        return f"```diff\n### {path}\n<<<<<<< SEARCH\n{bad}\n=======\n{new}\n>>>>>>> REPLACE\n```"

    return {"exact": edit(good), "wrong1": edit("    return None"), "wrong2": edit("    return 0"),
            "noop": edit(bad), "garbage": "I could not find the bug."}


@pytest.fixture(scope="module")
def toy_swe() -> list[dict]:
    world = build_toy_world(0)
    return world.rl["swe"][:2]


@pytest.fixture(scope="module")
def judge_dir(tiny_model_dir, tmp_path_factory, toy_swe) -> Path:
    """The tiny model, taught to answer a judge prompt with <judgement>YES/NO</judgement>."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cascade.trainers.sft import train_sft

    raw = tmp_path_factory.mktemp("judge") / "raw"
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.add_tokens(VERDICT_TOKENS)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model.resize_token_embeddings(len(tokenizer))
    model.save_pretrained(raw)
    tokenizer.save_pretrained(raw)
    for template in Path(tiny_model_dir).glob("*.jinja"):
        (raw / template.name).write_text(template.read_text())
    records = []
    for i, record in enumerate(toy_swe * 4):
        answers = _edits(record)
        patch = answers["wrong1" if i % 2 else "wrong2"]
        verdict = "YES" if i % 4 in (0, 1) else "NO"  # half and half: the verdict stays uncertain
        prompt = judge_prompt(record["messages"][0]["content"], record["ground_truth"]["gold_patch"], patch, TEMPLATE)
        records.append({"mode": "no_think", "messages": [{"role": "user", "content": prompt},
                                                         {"role": "assistant", "content": f"<judgement>{verdict}</judgement>"}]})
    engine = LocalEngine(str(raw), device="cpu", dtype="float32", seed=0)
    settings = sft_stage(lr=5e-3, batch_size=8, max_steps=40, epochs=None, scheduler="constant", max_seq_len=1024,
                         seed=0)
    out = train_sft(engine, records, settings, raw.parent / "sft", progress=False)
    return Path(out["final"])


def _serve(model_dir: Path) -> tuple[str, callable]:
    engine = LocalEngine(str(model_dir), device="cpu", dtype="float32", seed=0)
    service = ChatService(engine, "judge")
    httpd = make_server(service, "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()

    def stop() -> None:
        httpd.shutdown()
        httpd.server_close()
        service.close()
        thread.join(timeout=10)

    return f"http://127.0.0.1:{httpd.server_address[1]}/v1", stop


@pytest.fixture(scope="module")
def served_judge(judge_dir) -> Iterator[str]:
    url, stop = _serve(judge_dir)
    try:
        yield url
    finally:
        stop()


ORDER = [["exact", "wrong1", "noop", "garbage"], ["wrong1", "wrong2", "exact", "wrong2"]]


def _scripted_policy(engine: LocalEngine, records: list[dict]) -> None:
    """The policy answers with crafted edits (a tiny model rarely writes a patch at all); each
    answer's log-probabilities are the policy's own, so the step stays on-policy."""
    by_prompt = {render(r["messages"], enable_thinking=False): (_edits(r), ORDER[i]) for i, r in enumerate(records)}
    seen: dict[str, int] = {}
    stop = engine.tokenizer.convert_tokens_to_ids("<|im_end|>")

    def generate(prompts, sampling):
        out = []
        for prompt in prompts:
            answers, order = by_prompt[prompt]
            k = seen.get(prompt, 0)
            seen[prompt] = k + 1
            ids = engine.tokenizer(prompt, add_special_tokens=False)["input_ids"]
            tokens = engine.tokenizer(answers[order[k % len(order)]], add_special_tokens=False)["input_ids"] + [stop]
            logprobs = [lp for lp, _ in engine.completion_logprobs(ids, tokens)]
            out.append(Generation(ids, tokens, engine.tokenizer.decode(tokens, skip_special_tokens=False), logprobs,
                                  "stop", {"kind": order[k % len(order)]}))
        return out

    engine.generate = generate


def _swe_step(tiny_model_dir, records, judge, tmp_path, monkeypatch) -> tuple[list, list, dict]:
    seen = {}
    real_generate, real_overlong = grpo.generate_and_score, grpo.apply_overlong

    def spy_generate(engine, prompts, records, **kwargs):
        seen["rollout"] = real_generate(engine, prompts, records, **kwargs)
        seen["rollout"].records = list(records)
        return seen["rollout"]

    def spy_overlong(*args, **kwargs):
        out = real_overlong(*args, **kwargs)
        seen["rewards"] = out[0]
        return out

    monkeypatch.setattr(grpo, "generate_and_score", spy_generate)
    monkeypatch.setattr(grpo, "apply_overlong", spy_overlong)
    prompt_file = tmp_path / "judge_prompt.txt"
    prompt_file.write_text(TEMPLATE)
    if isinstance(judge, dict):
        judge = {**judge, "prompt_file": str(prompt_file)}
    stage = GRPOStage.model_validate(dict(name="swe-rl", kind="grpo", data=[{"generator": "toy/rl/swe"}],
                                          reward="swe", judge=judge, group_size=4, batch_size=2, max_steps=1))
    settings = grpo_stage(reward="swe", judge=judge, group_size=4, batch_size=2, max_steps=1, lr=1e-4,
                          temperature=1.0, top_p=1.0, think_fraction=0.0, max_response_len=64, seed=0)
    engine = LocalEngine(str(tiny_model_dir), device="cpu", dtype="float32", seed=0,
                         optim=settings.optim_config(settings.planned_steps(len(records))))
    _scripted_policy(engine, records)
    train_grpo(engine, records, settings, tmp_path / "run", progress=False, reward_fn=judged_reward_fn(stage))
    metrics = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    return seen["rollout"], seen["rewards"], metrics


def test_swe_rl_step_rewards_are_the_served_judges_p_yes(tiny_model_dir, toy_swe, judge_dir, served_judge,
                                                         tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    judge = {"base_url": served_judge, "model": "judge", "enable_thinking": False, "max_tokens": 4,
             "concurrency": 4, "timeout_s": 60}
    rollout, rewards, metrics = _swe_step(tiny_model_dir, toy_swe, judge, tmp_path, monkeypatch)
    kinds = [g.meta["kind"] for g in rollout.generations]
    by_kind = {kind: [r for r, k in zip(rewards, kinds) if k == kind] for kind in set(kinds)}
    assert by_kind["exact"] == [1.0, 1.0] and by_kind["noop"] == [0.0] and by_kind["garbage"] == [-1.0]

    # Each non-exact, non-empty patch: the judge model's own P(YES) at the verdict position.
    tokenizer = AutoTokenizer.from_pretrained(judge_dir)
    model = AutoModelForCausalLM.from_pretrained(judge_dir, dtype=torch.float32).eval()
    yes = tokenizer.convert_tokens_to_ids("YES")
    judged = [i for i, k in enumerate(kinds) if k.startswith("wrong")]
    assert len(judged) == 4
    for i in judged:
        result = rollout.results[i]
        assert result.details["method"] == "judge"
        record = rollout.records[i]
        prompt = judge_prompt(record["messages"][0]["content"], record["ground_truth"]["gold_patch"],
                              result.details["patch"], TEMPLATE)
        text = render([{"role": "user", "content": prompt}], enable_thinking=False) + "<judgement>"
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            p_yes = torch.softmax(model(input_ids=torch.tensor([ids])).logits[0, -1].float(), dim=-1)[yes].item()
        assert rewards[i] == pytest.approx(p_yes, abs=1e-4)
        assert 0.01 < p_yes < 0.99  # a real probability, not a constant
        assert rewards[i] != pytest.approx(result.details["lexical"])  # not the lexical score
    assert metrics["reward_method/judge"] == 4.0 and "reward_method/judge_fallback" not in metrics


def test_a_judge_that_is_down_gives_the_counted_fallback(tiny_model_dir, toy_swe, tmp_path, monkeypatch):
    with socket.socket() as probe:  # a port nothing listens on: connections are refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    judge = {"base_url": f"http://127.0.0.1:{port}/v1", "model": "judge", "retries": 1, "timeout_s": 5,
             "fallback_reward": -0.5, "max_error_share": 1.0}
    rollout, rewards, metrics = _swe_step(tiny_model_dir, toy_swe, judge, tmp_path, monkeypatch)
    fallen = [i for i, g in enumerate(rollout.generations) if g.meta["kind"].startswith("wrong")]
    assert [rewards[i] for i in fallen] == [-0.5] * 4
    for i in fallen:
        result = rollout.results[i]
        assert result.error == "judge_error" and result.details["method"] == "judge_fallback"
        assert "refused" in result.details["judge_error"].lower() and result.details["judge_attempts"] == 2
    assert metrics["reward_method/judge_fallback"] == 4.0


class _Slow(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        time.sleep(2.0)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_a_judge_that_times_out_is_retried_then_reported():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        client = JudgeClient(f"http://127.0.0.1:{httpd.server_address[1]}/v1", "judge", timeout_s=0.3, retries=1)
        started = time.perf_counter()
        (verdict,) = client.ask(["is this right?"])
        assert verdict.p_yes is None and verdict.attempts == 2
        assert "timed out" in verdict.error
        assert time.perf_counter() - started < 1.9  # bounded by the timeout, not by the slow server
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_bad_judge_prompt_fails_before_any_training(tmp_path):
    from cascade.config import load_recipe
    from cascade.pipeline.runner import check_recipe

    prompt = tmp_path / "judge.txt"
    prompt.write_text("Issue: {issue}\nPatch: {patch}\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: j\nbase_model: {init: {size: tiny}}\nstages:\n"
        "  - {name: swe, kind: grpo, data: {generator: toy/rl/swe}, reward: swe, max_steps: 1,\n"
        f"     judge: {{base_url: 'http://127.0.0.1:1/v1', model: j, prompt_file: '{prompt}'}}}}\n"
    )
    with pytest.raises(CascadeError, match="must use {issue}, {gold_patch} and {model_patch}") as caught:
        check_recipe(load_recipe(recipe), str(recipe))
    assert caught.value.field == "judge.prompt_file"

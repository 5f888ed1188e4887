"""SWE RL's served judge on the verl path (cascade.cluster.verl_judge).

Without verl: the judge's settings in the generated overrides, the loopback refusal for
multi-node jobs, `cascade run --judge-base-url`. With verl (the cluster environment): the paper
recipe's SWE stage composed by verl's own Hydra config, its reward manager loaded by verl's
`load_reward_manager`, `run_single` on a real `DataProto` of crafted patches against a loopback
stand-in judge, and the rewards equal the local trainer's judged SWE reward on the same rollouts.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from verl_helpers import score_in_reward_manager, tiny_tokenizer

from cascade.cluster import hydra_args, stage_phases, stage_to_verl_overrides, verl_gaps
from cascade.cluster.verl_config import JUDGE_KWARGS_KEY
from cascade.config import load_recipe
from cascade.errors import CascadeError

JUDGE_URL = "http://judge.cluster:8001/v1"


def _overrides(recipe, stage_name="swe-rl", substage="ctx16k", nnodes=4, **kwargs):
    return stage_to_verl_overrides(recipe.stage(stage_name), recipe, n_gpus_per_node=8, nnodes=nnodes,
                                   model_path="/m", data_files=["/d.parquet"], substage=substage, **kwargs)


@pytest.mark.parametrize("recipe_name", ["nemotron-cascade-8b", "nemotron-cascade-8b-thinking"])
def test_served_judge_settings_reach_the_hook(recipe_name):
    recipe = load_recipe(recipe_name, [f"stages.swe-rl.judge.base_url={JUDGE_URL}"])
    spec = recipe.stage("swe-rl").judge
    for phase in stage_phases(recipe.stage("swe-rl")):
        settings = _overrides(recipe, substage=phase.substage)[JUDGE_KWARGS_KEY]["judge"]
        assert settings == {
            "base_url": JUDGE_URL, "model": spec.model, "fallback_reward": spec.fallback_reward,
            "max_error_share": spec.max_error_share, "timeout_s": spec.timeout_s, "retries": spec.retries,
            "max_tokens": spec.max_tokens, "temperature": spec.temperature, "top_logprobs": spec.top_logprobs,
            # the recipe's 8 in flight, split over 4 nodes x 8 GPUs = 32 reward workers: at least 1 each
            "concurrency": 1,
        }
    lexical = load_recipe(recipe_name, ["stages.swe-rl.judge=lexical"])
    assert JUDGE_KWARGS_KEY not in _overrides(lexical)
    assert JUDGE_KWARGS_KEY not in _overrides(recipe, "math-rl", substage=stage_phases(recipe.stage("math-rl"))[0].substage)


def test_judge_prompt_file_travels_as_text_and_concurrency_splits(tmp_path):
    prompt = tmp_path / "judge.txt"
    prompt.write_text("Issue: {issue}\nGold:\n{gold_patch}\nCandidate:\n{model_patch}\nVerdict?")
    recipe = load_recipe("nemotron-cascade-8b", [f"stages.swe-rl.judge.base_url={JUDGE_URL}",
                                                 f"stages.swe-rl.judge.prompt_file={prompt}",
                                                 "stages.swe-rl.judge.concurrency=20"])
    settings = _overrides(recipe, nnodes=1)[JUDGE_KWARGS_KEY]["judge"]
    assert settings["template"] == prompt.read_text()
    assert settings["concurrency"] == 3  # ceil(20 / 8 workers)


def test_a_loopback_judge_is_refused_on_several_nodes_and_named_on_one():
    recipe = load_recipe("nemotron-cascade-8b")  # the paper recipe's judge: http://127.0.0.1:8001/v1
    with pytest.raises(CascadeError, match="loopback address, out of reach") as caught:
        _overrides(recipe, nnodes=2)
    assert "--judge-base-url" in str(caught.value) and caught.value.field == "stages.swe-rl.judge.base_url"
    assert _overrides(recipe, nnodes=1)[JUDGE_KWARGS_KEY]["judge"]["base_url"] == "http://127.0.0.1:8001/v1"
    assert any("loopback" in gap for gap in verl_gaps(recipe.stage("swe-rl"), "ctx16k", nnodes=1))
    remote = load_recipe("nemotron-cascade-8b", [f"stages.swe-rl.judge.base_url={JUDGE_URL}"])
    assert any("reached from every node" in gap for gap in verl_gaps(remote.stage("swe-rl"), "ctx16k", nnodes=4))


def test_cascade_run_checks_the_judge_before_any_stage_and_takes_judge_base_url(tmp_path):
    from cascade.cli import main

    launched = tmp_path / "launched"
    launcher = f"touch {launched}"  # never reached: the check runs before the first stage
    argv = ["run", "nemotron-cascade-8b", "--engine", "verl", "--nnodes", "2", "--out", str(tmp_path / "run"),
            "--launcher", launcher + " {script}", "--no-progress"]
    assert main(argv) != 0 and not launched.exists()
    from cascade.commands.run import judge_url_overrides

    assert judge_url_overrides(load_recipe("nemotron-cascade-8b"), JUDGE_URL) == [
        f"stages.swe-rl.judge.base_url={JUDGE_URL}"]


# ---------------------------------------------------------------- inside verl's reward manager


def p_yes_for(prompt: str) -> float:
    """The stand-in judge's P(YES) for a prompt: a fixed function of its text, in (0.05, 0.95)."""
    digest = int(hashlib.sha256(prompt.encode()).hexdigest()[:8], 16)
    return 0.05 + 0.9 * digest / 2**32


class _StandInJudge:
    """A loopback OpenAI-compatible judge: /v1/chat/completions answering with a verdict whose
    YES probability (in top_logprobs, as vLLM and `cascade serve` return them) is ``p_yes_for``
    the user message. ``down`` makes it answer HTTP 503."""

    def __init__(self):
        self.prompts, self.down = [], False

        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if outer.down or self.path != "/v1/chat/completions":
                    self.send_response(503)
                    self.end_headers()
                    return
                prompt = body["messages"][-1]["content"]
                outer.prompts.append(prompt)
                p = p_yes_for(prompt)
                verdict = {"token": "YES" if p >= 0.5 else "NO", "logprob": math.log(max(p, 1 - p)),
                           "top_logprobs": [{"token": "YES", "logprob": math.log(p)},
                                            {"token": "NO", "logprob": math.log(1 - p)}]}
                content = [{"token": "Compared. ", "logprob": -0.1}, {"token": "<judgement>", "logprob": -0.1},
                           verdict, {"token": "</judgement>", "logprob": -0.1}]
                reply = json.dumps({"choices": [{"message": {"role": "assistant", "content": "..."},
                                                 "logprobs": {"content": content}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def verl():
    """Skips (before the other fixtures build anything) where verl and Hydra are not installed."""
    pytest.importorskip("hydra")
    return pytest.importorskip("verl", reason="verl is not installed (pip install -e '.[verl-core]')")


@pytest.fixture()
def judge_server():
    server = _StandInJudge()
    yield server
    server.close()


def _edits(record):
    """Crafted answers for a toy SWE task: exact, two wrong fixes, a no-op, no patch at all."""
    gold = record["ground_truth"]["gold_patch"]
    path = next(iter(record["ground_truth"]["files"]))
    bad = re.search(r"^-(    return .*)$", gold, re.M).group(1)
    good = re.search(r"^\+(    return .*)$", gold, re.M).group(1)

    def edit(new):
        return f"```diff\n### {path}\n<<<<<<< SEARCH\n{bad}\n=======\n{new}\n>>>>>>> REPLACE\n```"

    return [edit(good), edit("    return None"), edit("    return 0"), edit(bad), "I could not find the bug."]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return tiny_tokenizer(tmp_path_factory.mktemp("tiny"))


def _verl_scores(recipe, tokenizer, records_and_answers):
    """Every rollout scored as verl's RewardLoopWorker does: the manager and hook loaded by verl from
    the Hydra-composed config, one run_single per rollout, gathered."""
    from hydra import compose, initialize_config_module
    from verl.trainer.ppo.reward import load_reward_manager

    overrides = _overrides(recipe, nnodes=1)
    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        cfg = compose(config_name="ppo_trainer", overrides=hydra_args(overrides))
    manager = load_reward_manager(cfg, tokenizer)
    records, decoded, _data, outputs = score_in_reward_manager(
        manager, tokenizer, records_and_answers, data_source="swe", think_fraction=0.0, reward="swe")
    return records, decoded, outputs


def test_judged_swe_rewards_in_verls_reward_manager_match_local_trainer(verl, tokenizer, judge_server, monkeypatch):
    from cascade.pipeline.runner import judged_reward_fn
    from cascade.toyworld.build import build_toy_world
    from cascade.verifiers.swe import judge_gold_patch, judge_issue, judge_prompt

    monkeypatch.setenv("CASCADE_VERL_REWARD_WORKERS", "1")
    recipe = load_recipe("nemotron-cascade-8b", [f"stages.swe-rl.judge.base_url={judge_server.url}",
                                                 "stages.swe-rl.judge.fallback_reward=-0.5"])
    toy = build_toy_world(0).rl["swe"][:2]
    records, decoded, outputs = _verl_scores(recipe, tokenizer, [(r, _edits(r)) for r in toy])
    verl_rewards = [o["reward_score"] for o in outputs]
    asked_by_verl = list(judge_server.prompts)

    local = judged_reward_fn(recipe.stage("swe-rl"))(records, decoded)
    assert verl_rewards == [r.score for r in local]
    # the same questions (verl's concurrent calls arrive in any order)
    assert sorted(judge_server.prompts[len(asked_by_verl):]) == sorted(asked_by_verl)
    # exact 1, two judged wrong fixes, no-op 0, no patch -1; the judged ones are the judge's P(YES)
    for k in (0, 5):
        assert verl_rewards[k] == 1.0 and verl_rewards[k + 3] == 0.0 and verl_rewards[k + 4] == -1.0
        for judged in (k + 1, k + 2):
            assert local[judged].details["method"] == "judge"
            record = records[judged]
            question = judge_prompt(judge_issue(record), judge_gold_patch(record), local[judged].details["patch"])
            assert question in asked_by_verl and verl_rewards[judged] == pytest.approx(p_yes_for(question))
            assert verl_rewards[judged] != pytest.approx(local[judged].details["lexical"])
    assert len(asked_by_verl) == 4 and len(set(verl_rewards)) >= 6
    assert all(o["reward_extra_info"]["judge_error"] == 0.0 for o in outputs)


def test_a_judge_that_is_down_gives_the_counted_fallback_then_stops_the_job(verl, tokenizer, judge_server, monkeypatch):
    from cascade.cluster import verl_judge
    from cascade.toyworld.build import build_toy_world

    monkeypatch.setenv("CASCADE_VERL_REWARD_WORKERS", "1")
    judge_server.down = True
    recipe = load_recipe("nemotron-cascade-8b", [f"stages.swe-rl.judge.base_url={judge_server.url}",
                                                 "stages.swe-rl.judge.fallback_reward=-0.5",
                                                 "stages.swe-rl.judge.retries=0",
                                                 "stages.swe-rl.judge.max_error_share=0.5"])
    toy = build_toy_world(0).rl["swe"][:1]
    wrong = _edits(toy[0])[1]
    monkeypatch.setattr(verl_judge, "MIN_CALLS", 3)
    _records, _decoded, outputs = _verl_scores(recipe, tokenizer, [(toy[0], [wrong, _edits(toy[0])[0]])])
    # The failed call: the recipe's fallback reward, counted in reward_extra_info (verl logs its mean).
    assert [o["reward_score"] for o in outputs] == [-0.5, 1.0]
    assert [o["reward_extra_info"]["judge_error"] for o in outputs] == [1.0, 0.0]
    # Failures pile up past max_error_share in this worker's window: the hook raises, verl's job ends.
    with pytest.raises(CascadeError, match="the judge failed 3 of this reward worker's last 3 calls"):
        _verl_scores(recipe, tokenizer, [(toy[0], [wrong, wrong])])


def test_served_judge_bounds_its_requests():
    from cascade.cluster.verl_judge import ServedJudge
    from cascade.verifiers.base import VerifyResult

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    judge = ServedJudge({"base_url": f"http://127.0.0.1:{port}/v1", "model": "j", "concurrency": 2,
                         "fallback_reward": 0.25, "max_error_share": 1.0, "retries": 0, "timeout_s": 2.0})
    assert judge.slots._value == 2 and judge.client.concurrency == 2
    record = {"id": "r", "prompt": "Fix it.", "ground_truth": {"files": {"a.py": "x = 1\n"},
                                                               "gold_patch": "--- a/a.py\n+++ b/a.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n"}}
    exact = VerifyResult(1.0, True, {"method": "exact", "patch": "G"})
    assert judge.rejudge(record, exact) is exact and len(judge.recent) == 0  # no call for an exact patch
    out = judge.rejudge(record, VerifyResult(0.3, False, {"method": "lexical", "patch": "P"}))
    assert (out.score, out.error, out.details["method"]) == (0.25, "judge_error", "judge_fallback")
    assert list(judge.recent) == [True]

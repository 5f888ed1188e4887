"""The cluster path against verl 0.9.1 itself (skipped where verl is not installed: it is the
`verl-core` extra, not part of `dev`).

- every stage of both paper recipes: the overrides we generate are composed by verl's own Hydra
  config from the installed package (``ppo_trainer`` for GRPO phases, ``sft_trainer_engine`` for
  SFT), every value comes back as we set it, and verl's config dataclasses accept the result;
- the reward hook runs inside verl's own reward-manager code path (``load_reward_manager`` on
  the composed config, the manager's ``run_single`` on a real ``DataProto``) and gives the local
  trainer's rewards on the same rollouts.
"""

from __future__ import annotations

import json

import pytest
from verl_helpers import score_in_reward_manager, tiny_tokenizer

verl = pytest.importorskip("verl", reason="verl is not installed (pip install -e '.[verl-core]')")
hydra = pytest.importorskip("hydra")

from hydra import compose, initialize_config_module  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from cascade.cluster import hydra_args, stage_phases, stage_to_verl_overrides  # noqa: E402
from cascade.cluster.train_config import sft_overrides  # noqa: E402
from cascade.cluster.verl_reward import BATCH_REWARDS  # noqa: E402
from cascade.config import load_recipe  # noqa: E402

PAPER_RECIPES = ("nemotron-cascade-8b", "nemotron-cascade-8b-thinking")
JUDGE_URL = "http://judge.cluster:8001/v1"


def _value(cfg, key):
    node = OmegaConf.select(cfg, key, throw_on_missing=True)
    return OmegaConf.to_container(node) if OmegaConf.is_config(node) else node


def _compose(config_name: str, overrides: dict):
    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        return compose(config_name=config_name, overrides=hydra_args(overrides))


def _jobs(recipe_name):
    """(stage, phase or None, overrides, config name) for every job of the recipe."""
    recipe = load_recipe(recipe_name, [f"stages.swe-rl.judge.base_url={JUDGE_URL}"])  # one every node reaches
    for stage in recipe.stages:
        if stage.kind == "sft":
            yield stage, None, sft_overrides(stage, recipe, model_path="/ckpt/parent", data_file="/d/sft.parquet",
                                             checkpoint_dir="/ckpt/verl", n_gpus_per_node=8, nnodes=4,
                                             logger=("console", "wandb")), "sft_trainer_engine"
        elif stage.kind == "grpo":
            for phase in stage_phases(stage):
                yield stage, phase, stage_to_verl_overrides(
                    stage, recipe, n_gpus_per_node=8, nnodes=4, model_path="/ckpt/parent",
                    data_files=["/d/a.parquet"], substage=phase.substage, logger=("console", "wandb"),
                ), "ppo_trainer"


@pytest.mark.parametrize("recipe_name", PAPER_RECIPES)
def test_every_job_composes_in_verls_own_config(recipe_name):
    from verl.utils.config import omega_conf_to_dataclass

    recipe = load_recipe(recipe_name)
    seen = set()
    for stage, phase, overrides, config_name in _jobs(recipe_name):
        seen.add(stage.name)
        cfg = _compose(config_name, overrides)
        for key, value in overrides.items():
            assert _value(cfg, key) == value, (stage.name, key)
        # The recipe's values, as verl will read them.
        if config_name == "ppo_trainer":
            assert _value(cfg, "actor_rollout_ref.actor.optim.lr") == stage.lr
            assert _value(cfg, "actor_rollout_ref.rollout.n") == stage.group_size
            assert _value(cfg, "data.train_batch_size") == stage.batch_size
            # overlong masking (truncated responses out of the loss) is our estimator: tests/test_verl_overlong.py
            overlong = stage.substage_knobs(phase.substage).overlong_filter
            assert _value(cfg, "algorithm.adv_estimator") == ("cascade_grpo" if overlong else "grpo")
            # verl filters groups when it samples them: not behind a colocated RM (a listed gap)
            assert _value(cfg, "algorithm.filter_groups.enable") == (stage.dynamic_filter and stage.reward not in BATCH_REWARDS)
            assert _value(cfg, "reward.custom_reward_function.name") == "compute_score"
            assert _value(cfg, "trainer.logger") == ["console", "wandb"]
            # verl's own dataclasses accept what we compose (the checks verl runs at start-up).
            omega_conf_to_dataclass(cfg.algorithm)
            omega_conf_to_dataclass(cfg.actor_rollout_ref.actor)
            omega_conf_to_dataclass(cfg.actor_rollout_ref.rollout)
            if stage.reward in BATCH_REWARDS:  # verl serves the recipe's RM; our manager does the batch step
                assert _value(cfg, "reward.reward_model.enable") is True
                assert _value(cfg, "reward.reward_model.model_path") == stage.reward_model
                assert _value(cfg, "reward.reward_manager.name") == "CascadeRewardManager"
                omega_conf_to_dataclass(cfg.reward.reward_model.rollout)
            if stage.judge not in (None, "lexical"):  # the served judge's settings, as our hook will get them
                judge = _value(cfg, "reward.custom_reward_function.reward_kwargs.judge")
                assert (judge["base_url"], judge["model"]) == (JUDGE_URL, stage.judge.model)
                assert judge["fallback_reward"] == stage.judge.fallback_reward
        else:
            assert _value(cfg, "optim.lr") == stage.lr
            assert _value(cfg, "data.train_batch_size") == stage.batch_size
            assert _value(cfg, "data.max_length") == stage.max_seq_len
            omega_conf_to_dataclass(cfg.optim)
    # Every stage of the recipe composed, SWE RL with its served judge included (the paper
    # recipes have no RM stage: they use a released RM).
    assert seen == {s.name for s in recipe.stages}


ROLLOUTS = {
    "math": [
        ({"id": "m1", "prompt": "What is 2+3?", "verifier": "math", "ground_truth": "5"},
         ["<think>2+3=5</think>The answer is \\boxed{5}.", "The answer is \\boxed{6}.", "<think>never closed"]),
    ],
    "if": [
        ({"id": "i1", "prompt": "Answer in lowercase letters only.", "verifier": "ifeval",
          "ground_truth": {"instruction_id_list": ["change_case:english_lowercase"], "kwargs": [{}]}},
         ["all lowercase here.", "Not Lowercase."]),
    ],
    "code": [
        ({"id": "c1", "prompt": "Read n and print n*2.", "verifier": "code",
          "ground_truth": {"style": "stdin", "tests": [{"input": "3\n", "output": "6\n"}, {"input": "5\n", "output": "10\n"}]}},
         ["```python\nprint(int(input())*2)\n```", "```python\nprint(1)\n```"]),
    ],
}


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return tiny_tokenizer(tmp_path_factory.mktemp("tiny"))


@pytest.mark.parametrize("reward", sorted(ROLLOUTS))
def test_reward_hook_in_verls_reward_manager_matches_local_trainer(reward, tokenizer, monkeypatch):
    from verl.trainer.ppo.reward import load_reward_manager

    from cascade.trainers.rollout import stage_reward_fn

    monkeypatch.setenv("CASCADE_VERL_REWARD_WORKERS", "1")
    recipe = load_recipe("nemotron-cascade-8b")
    overrides = stage_to_verl_overrides(recipe.stage("math-rl"), recipe, n_gpus_per_node=1, nnodes=1,
                                        model_path="/m", data_files=["/d.parquet"], substage="compress")
    cfg = _compose("ppo_trainer", overrides)
    manager = load_reward_manager(cfg, tokenizer)  # verl resolves pkg://cascade.cluster.verl_reward itself
    # verl wraps the loaded function: partial(_call_with_kwargs, our_fn, reward_kwargs).
    from cascade.cluster.verl_reward import compute_score

    assert compute_score in manager.compute_score.args

    # As verl's RewardLoopWorker does: one run_single per rollout, gathered.
    records, decoded, _data, outputs = score_in_reward_manager(
        manager, tokenizer, ROLLOUTS[reward], data_source="test", think_fraction=1.0, reward=reward)
    verl_scores = [out["reward_score"] for out in outputs]
    local = [r.score for r in stage_reward_fn(reward)(records, decoded)]
    assert verl_scores == local
    assert len(set(local)) > 1  # the rollouts are told apart, so agreement means something


# ---------------------------------------------------------------- batch-level rewards


class _ClassifyServer:
    """A loopback stand-in for verl's reward-model router: vLLM's ``/classify`` answered by the
    tiny reward model's own forward (the last-token logit, no activation), as vLLM pools it."""

    def __init__(self, rm_path):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(rm_path)
        model = AutoModelForSequenceClassification.from_pretrained(rm_path).eval()
        self.requests = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(handler):  # noqa: N802 - http.server's name
                body = json.loads(handler.rfile.read(int(handler.headers["Content-Length"])))
                self.requests.append((handler.path, body))
                ids = tokenizer(body["input"], add_special_tokens=True, return_tensors="pt")["input_ids"]
                with torch.no_grad():
                    value = float(model(input_ids=ids).logits[0, 0])
                reply = json.dumps({"data": [{"probs": [value]}]}).encode()
                handler.send_response(200)
                handler.send_header("Content-Type", "application/json")
                handler.send_header("Content-Length", str(len(reply)))
                handler.end_headers()
                handler.wfile.write(reply)

            def log_message(handler, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def tiny_rm(tmp_path_factory):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from cascade.models import init_model

    base = tmp_path_factory.mktemp("rm-base")
    init_model(base, "tiny", seed=1)
    model = AutoModelForSequenceClassification.from_pretrained(str(base), num_labels=1)
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    model.config.pad_token_id = tokenizer.pad_token_id
    path = tmp_path_factory.mktemp("rm")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    server = _ClassifyServer(path)
    yield path, server
    server.close()


BATCH_ROLLOUTS = {
    # Two prompts x three rollouts; one rlhf rollout mixes languages (-> batch minimum - 10).
    "rlhf": [
        ({"id": "h1", "prompt": "Tell me about rain.", "verifier": "none", "ground_truth": None},
         ["Rain is water falling from clouds.", "<think>short</think>Rain falls.", "Rain 是 water."]),
        ({"id": "h2", "prompt": "Name a colour.", "verifier": "none", "ground_truth": None},
         ["Blue.", "Red is a colour.", "Green."]),
    ],
    "if_thinking": [
        ({"id": "t1", "prompt": "Answer in lowercase letters only.", "verifier": "ifeval",
          "ground_truth": {"instruction_id_list": ["change_case:english_lowercase"], "kwargs": [{}]}},
         ["<think>ok</think>all lowercase here.", "<think>ok</think>Not Lowercase.", "<think>x</think>yes, lower."]),
        ({"id": "t2", "prompt": "Answer in lowercase letters only, about cats.", "verifier": "ifeval",
          "ground_truth": {"instruction_id_list": ["change_case:english_lowercase"], "kwargs": [{}]}},
         ["<think>ok</think>cats purr.", "<think>ok</think>cats sleep a lot.", "<think>ok</think>Cats."]),
    ],
}


@pytest.mark.parametrize("reward", sorted(BATCH_ROLLOUTS))
def test_batch_rewards_in_verls_reward_loop_match_local_trainer(reward, tokenizer, tiny_rm, monkeypatch):
    from transformers import AutoTokenizer
    from verl.trainer.ppo.reward import load_reward_manager

    from cascade.cluster.verl_manager import CascadeRewardManager
    from cascade.trainers.rollout import stage_reward_fn

    monkeypatch.setenv("CASCADE_VERL_REWARD_WORKERS", "1")
    rm_path, server = tiny_rm
    recipe_name = "nemotron-cascade-8b" if reward == "rlhf" else "nemotron-cascade-8b-thinking"
    stage_name = "rlhf" if reward == "rlhf" else "if-rl-ifeval"
    recipe = load_recipe(recipe_name)
    overrides = stage_to_verl_overrides(recipe.stage(stage_name), recipe, n_gpus_per_node=1, nnodes=1,
                                        model_path="/m", data_files=["/d.parquet"], reward_model_path=str(rm_path))
    cfg = _compose("ppo_trainer", overrides)
    assert _value(cfg, "reward.reward_model.model_path") == str(rm_path)
    # verl's own loader picks our manager class and our hook from the composed config.
    manager = load_reward_manager(cfg, tokenizer, reward_router_address=server.address,
                                  reward_model_tokenizer=AutoTokenizer.from_pretrained(str(rm_path)))
    assert isinstance(manager, CascadeRewardManager)

    # As verl's RewardLoopManager.compute_rm_score does: per-rollout scores, then one assembly.
    records, decoded, data, outputs = score_in_reward_manager(
        manager, tokenizer, BATCH_ROLLOUTS[reward], data_source="test", think_fraction=1.0, reward=reward,
        with_uids=True)
    rm_scores = type(manager).assemble_rm_scores(data, [o["reward_score"] for o in outputs])
    lengths = data.batch["attention_mask"][:, data.batch["prompts"].shape[1]:].sum(dim=1)
    verl_rewards = [float(rm_scores[i, lengths[i] - 1]) for i in range(len(data))]
    assert all(path == "/classify" for path, _body in server.requests[-len(data):])

    local = [r.score for r in stage_reward_fn(reward, reward_model=str(rm_path))(records, decoded)]
    assert verl_rewards == pytest.approx(local, abs=1e-4)
    if reward == "rlhf":
        assert verl_rewards[2] == pytest.approx(min(o["reward_extra_info"]["rm_score"] for o in outputs) - 10, abs=1e-4)
    else:
        assert verl_rewards[1] == 0.0 and 1.0 < verl_rewards[0] < 2.0  # "Not Lowercase." fails its constraint
        assert all(v == 0.0 or 1.0 < v < 2.0 for v in verl_rewards)


# ---------------------------------------------------------------- reward-model stages (TRL)


def test_rm_stage_arguments_parse_with_trls_own_parser():
    pytest.importorskip("trl", reason="TRL is not installed (it comes with the verl extra)")
    from cascade.cluster.train_config import rm_arguments
    from cascade.cluster.trl_rm import parse

    recipe = load_recipe("tiny")  # the paper recipes use the released RM and train none
    stage = recipe.stage("rm")
    words = rm_arguments(stage, recipe, output_dir="/out/final", n_processes=4, logger=("console", "wandb"))
    # use_cpu: only because this machine has no GPU for the bf16 the job asks for.
    pairs, config = parse(["--model", "/ckpt/sft", "--pairs", "/d/pairs.jsonl", *words, "--use_cpu", "true"])
    assert (pairs.model, pairs.pairs, config.output_dir) == ("/ckpt/sft", "/d/pairs.jsonl", "/out/final")
    assert config.learning_rate == stage.lr and config.seed == recipe.stage_seed("rm")
    assert config.per_device_train_batch_size * config.gradient_accumulation_steps * 4 == stage.batch_size
    assert (config.adam_beta1, config.adam_beta2) == tuple(stage.adam_betas)
    assert config.weight_decay == stage.weight_decay and config.max_grad_norm == stage.max_grad_norm
    assert config.max_length == stage.max_seq_len and config.bf16 is True
    assert config.num_train_epochs == stage.epochs and config.report_to == ["wandb"]
    assert str(config.lr_scheduler_type.value) == stage.scheduler

"""The verl adapter (cascade.cluster), tested without verl: config keys against a key list taken
from the verl 0.9.1 wheel (tests/data/verl_0.9.1_ppo_trainer_keys.json), mapped values against
hand-computed expectations, the parquet layout, the chat-template consistency, the reward hook."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cascade.chat import render
from cascade.cluster import (
    bake_mode,
    compute_score,
    export_verl_parquet,
    hydra_args,
    stage_phases,
    stage_to_verl_overrides,
    verl_chat_template,
    verl_gaps,
    verl_rows,
)
from cascade.cluster.launch import export_stage_data, launch_script, main
from cascade.cluster.verl_config import EPOCH_FILTER_SETTINGS_KEY, TEMPLATE_KEY, hydra_arg, hydra_value
from cascade.config import load_recipe
from cascade.errors import CascadeError

KEYS_FILE = Path(__file__).parent / "data" / "verl_0.9.1_ppo_trainer_keys.json"
VERL_KEYS = set(json.loads(KEYS_FILE.read_text())["keys"])
PAPER_RECIPES = ("nemotron-cascade-8b", "nemotron-cascade-8b-thinking")


def _overrides(recipe, stage_name, substage=None, **kwargs):
    stage = recipe.stage(stage_name)
    args = dict(n_gpus_per_node=8, nnodes=2, model_path="/ckpt/parent", data_files=["/d/a.parquet"])
    args.update(kwargs)
    return stage_to_verl_overrides(stage, recipe, substage=substage, **args)


def _tiny_recipe(tmp_path: Path, stage_yaml: str):
    data = tmp_path / "prompts.jsonl"
    rows = [
        {"id": "m1", "prompt": "What is 2+3?", "verifier": "math", "ground_truth": "5"},
        {"id": "m2", "prompt": "What is 4*4?", "verifier": "math", "ground_truth": "16", "meta": {"domain": "arith"}},
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: tiny-verl\nbase_model: some/base\nstages:\n"
        f"  - name: rl\n    kind: grpo\n    data: {{path: {data}}}\n{stage_yaml}"
    )
    return load_recipe(recipe)


# ---------------------------------------------------------------- config keys and values


def test_every_emitted_key_is_in_verl_schema():
    checked = 0
    for name in PAPER_RECIPES:
        recipe = load_recipe(name, ["stages.swe-rl.judge=lexical"])  # the judge's reward_kwargs: tests/test_verl_judge.py
        for stage in recipe.stages:
            if stage.kind != "grpo" or stage.reward in ("rlhf", "if_thinking"):
                continue
            for phase in stage_phases(stage):
                overrides = _overrides(recipe, stage.name, phase.substage)
                keys = set(overrides)
                # the one key we add to verl's config (our dataset's settings), which Hydra takes with "++"
                added = {EPOCH_FILTER_SETTINGS_KEY} if stage.epoch_filter else set()
                assert keys - added <= VERL_KEYS, sorted(keys - added - VERL_KEYS)
                assert added <= keys and all(hydra_arg(k, overrides[k]).startswith("++") for k in added)
                checked += 1
    # 8B: IF 1+1, math 3, code 2, SWE 2; 8B-Thinking: math 3, code 1, SWE 2 (its RLHF and IF use the RM)
    assert checked == 15


def test_math_extend_phase_values_by_hand():
    recipe = load_recipe("nemotron-cascade-8b")
    o = _overrides(recipe, "math-rl", "extend")
    expected = {
        "algorithm.adv_estimator": "grpo",
        "algorithm.use_kl_in_reward": False,
        "algorithm.filter_groups.enable": False,
        "data.train_batch_size": 128,
        "actor_rollout_ref.actor.ppo_mini_batch_size": 128,  # = train batch: one update per rollout batch
        "actor_rollout_ref.actor.ppo_epochs": 1,
        "actor_rollout_ref.actor.use_kl_loss": False,
        "actor_rollout_ref.actor.entropy_coeff": 0.0,
        "actor_rollout_ref.actor.loss_agg_mode": "token-mean",
        "actor_rollout_ref.actor.optim.lr": 2e-6,
        "actor_rollout_ref.actor.optim.betas": [0.9, 0.95],
        "actor_rollout_ref.actor.ppo_max_token_len_per_gpu": 4096 + 32768,
        "actor_rollout_ref.rollout.name": "vllm",
        "actor_rollout_ref.rollout.n": 8,
        "actor_rollout_ref.rollout.temperature": 1.0,
        "actor_rollout_ref.rollout.top_p": 0.95,
        "actor_rollout_ref.rollout.top_k": -1,
        "data.max_response_length": 32768,
        "data.max_prompt_length": 4096,
        "trainer.total_training_steps": 430,  # cumulative: the extend sub-stage ends at step 430
        "trainer.nnodes": 2,
        "trainer.n_gpus_per_node": 8,
        "trainer.resume_mode": "auto",
        "reward.custom_reward_function.path": "pkg://cascade.cluster.verl_reward",
        "reward.custom_reward_function.name": "compute_score",
        "actor_rollout_ref.model.path": "/ckpt/parent",
        "data.train_files": ["/d/a.parquet"],
    }
    assert {k: o[k] for k in expected} == expected
    long = _overrides(recipe, "math-rl", "long")
    assert (long["data.max_response_length"], long["actor_rollout_ref.rollout.temperature"]) == (40960, 0.8)
    assert long["trainer.total_training_steps"] == 500


def test_if_rl_dynamic_filter_and_top_k():
    recipe = load_recipe("nemotron-cascade-8b")
    o = _overrides(recipe, "if-rl-ifeval")
    assert o["algorithm.filter_groups.enable"] is True
    assert o["algorithm.filter_groups.metric"] == "reward"
    # verl 0.9.1's trainer ignores max_num_gen_batches; the bound on tries is listed as a gap.
    assert "algorithm.filter_groups.max_num_gen_batches" not in o
    assert o["algorithm.filter_groups.max_inflight_gen_batches"] == 1
    assert any("max_filter_tries 3" in gap for gap in verl_gaps(recipe.stage("if-rl-ifeval")))
    assert o["actor_rollout_ref.rollout.top_k"] == 20
    assert o["reward.num_workers"] == 16  # 2 nodes x 8 GPUs: verification on every node
    assert o["actor_rollout_ref.rollout.temperature"] == 0.6
    assert o["trainer.total_training_steps"] == 2300


def test_swe_context_curriculum_and_code_lr():
    # The paper recipe's served judge runs on verl (tests/test_verl_judge.py), once every node
    # reaches it: its default loopback address is refused for a 2-node job.
    with pytest.raises(CascadeError, match="loopback address"):
        _overrides(load_recipe("nemotron-cascade-8b"), "swe-rl", "ctx16k")
    recipe = load_recipe("nemotron-cascade-8b", ["stages.swe-rl.judge.base_url=http://judge.cluster:8001/v1"])
    ctx16, ctx24 = (_overrides(recipe, "swe-rl", s) for s in ("ctx16k", "ctx24k"))
    assert (ctx16["data.max_prompt_length"], ctx24["data.max_prompt_length"]) == (16384, 24576)
    assert ctx16["actor_rollout_ref.rollout.n"] == 16
    assert ctx24["actor_rollout_ref.actor.ppo_max_token_len_per_gpu"] == 24576 + 16384
    code = _overrides(recipe, "code-rl", "len48k")
    assert code["actor_rollout_ref.actor.optim.lr"] == 4e-6
    assert code["data.max_response_length"] == 49152


def test_seq_mean_kl_and_schedule_knobs(tmp_path):
    recipe = _tiny_recipe(
        tmp_path,
        "    max_steps: 10\n    loss_agg: seq_mean\n    kl_coef: 0.001\n    top_k: 5\n"
        "    scheduler: cosine\n    lr: 1.0e-5\n    min_lr: 1.0e-6\n    warmup_steps: 2\n",
    )
    o = _overrides(recipe, "rl")
    assert o["actor_rollout_ref.actor.loss_agg_mode"] == "seq-mean-token-mean"
    assert o["actor_rollout_ref.actor.use_kl_loss"] is True
    assert o["actor_rollout_ref.actor.kl_loss_coef"] == 0.001
    assert o["actor_rollout_ref.rollout.top_k"] == 5
    assert o["actor_rollout_ref.actor.optim.lr_scheduler_type"] == "cosine"
    assert o["actor_rollout_ref.actor.optim.min_lr_ratio"] == pytest.approx(0.1)
    assert o["actor_rollout_ref.actor.optim.lr_warmup_steps"] == 2
    assert set(o) <= VERL_KEYS


def test_refusals():
    recipe = load_recipe("nemotron-cascade-8b")
    rlhf = _overrides(recipe, "rlhf")  # batch-level reward: verl's RM server + our reward manager
    assert rlhf["reward.reward_model.enable"] is True
    assert rlhf["reward.reward_model.model_path"] == "nvidia/Qwen2.5-CascadeRL-RM-72B"
    assert rlhf["reward.reward_manager.module.path"] == "pkg://cascade.cluster.verl_manager"
    assert rlhf["reward.reward_model.enable_resource_pool"] is False
    with pytest.raises(CascadeError, match="GRPO stages only"):
        _overrides(recipe, "sft-1")
    shaped = recipe.model_copy(update={"stages": [
        s.model_copy(update={"reward_shaping": "group_tanh"}) if s.name == "if-rl-ifeval" else s for s in recipe.stages]})
    with pytest.raises(CascadeError, match="reward_shaping 'group_tanh' needs each group's rewards"):
        _overrides(shaped, "if-rl-ifeval")
    with pytest.raises(CascadeError, match="name one sub-stage"):
        _overrides(recipe, "math-rl")
    with pytest.raises(CascadeError, match="no sub-stage 'nope'"):
        _overrides(recipe, "math-rl", "nope")
    with pytest.raises(CascadeError, match="no data files"):
        _overrides(recipe, "math-rl", "long", data_files=[])


def test_phases_and_gaps(tmp_path):
    recipe = load_recipe("nemotron-cascade-8b")
    phases = stage_phases(recipe.stage("math-rl"))
    assert [(p.name, p.end_step) for p in phases] == [
        ("math-rl.compress", 190),
        ("math-rl.extend", 430),
        ("math-rl.long", 500),
    ]
    compress = verl_gaps(recipe.stage("math-rl"), "compress")
    assert any(g.startswith("overlong_filter") for g in compress)
    assert any(g.startswith("epoch_filter") for g in compress)
    assert any("think_fraction 0.5" in g for g in verl_gaps(recipe.stage("rlhf")))
    switched = _tiny_recipe(
        tmp_path,
        "    max_steps: 50\n    curriculum:\n"
        "      - {name: a, max_response_len: 64, until_truncated_below: 0.1}\n"
        "      - {name: b, max_response_len: 128}\n",
    )
    first = stage_phases(switched.stage("rl"))[0]
    assert first.end_step == 50 and "response_length/clip_ratio" in first.note
    assert first.note in verl_gaps(switched.stage("rl"), "a")


def test_hydra_value_by_hand():
    assert hydra_value(True) == "true"
    assert hydra_value(2e-6) == "2e-06"
    assert hydra_value(128) == "128"
    assert hydra_value([0.9, 0.95]) == "[0.9,0.95]"
    assert hydra_value("grpo") == "grpo"
    assert hydra_value("/a/b.parquet") == "/a/b.parquet"
    assert hydra_value("pkg://x.y") == "'pkg://x.y'"
    assert hydra_value("null") == "'null'"
    assert hydra_value("it's") == "'it\\'s'"
    assert hydra_value("a\\nb") == "'a\\nb'"  # a backslash not before a quote stays as written
    assert hydra_value("end\\") == "'end\\\\'"  # a trailing backslash doubles (it precedes the closing quote)
    assert hydra_value("x\\'y") == "'x\\\\\\'y'"  # backslash + quote: backslash doubled, quote escaped
    assert hydra_args({"a.b": 1, "c": "x y"}) == ["a.b=1", "c='x y'"]


# ---------------------------------------------------------------- data export and chat template


def test_bake_mode_replaces_a_written_flag():
    m = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}, {"role": "user", "content": "Go /think"}]
    assert bake_mode(m, "no_think")[-1]["content"] == "Go /no_think"
    assert bake_mode(m, "think")[-1]["content"] == "Go /think"
    assert bake_mode(m, "think")[0]["content"] == "Hi"  # earlier turns untouched (the template flags them)
    assert m[-1]["content"] == "Go /think"  # input not mutated
    with pytest.raises(CascadeError, match="user turn"):
        bake_mode([{"role": "system", "content": "s"}], "think")


CONVERSATIONS = [
    [{"role": "user", "content": "What is 2+3?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a prime. /think"}],
    [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "<think>greet</think>\n\nHello!"},
        {"role": "user", "content": "Tell me a joke."},
    ],
]


@pytest.mark.parametrize("mode", ["think", "no_think"])
@pytest.mark.parametrize("messages", CONVERSATIONS)
def test_baked_prompt_renders_like_our_template(messages, mode):
    # transformers' own renderer (what verl's tokenizer.apply_chat_template runs), no enable_thinking.
    from transformers.utils.chat_template_utils import render_jinja_template

    rendered, _ = render_jinja_template(
        [bake_mode(messages, mode)], chat_template=verl_chat_template(), add_generation_prompt=True
    )
    assert rendered[0] == render(messages, enable_thinking=mode == "think", add_generation_prompt=True)
    # With enable_thinking given, the verl variant is our template unchanged.
    for thinking in (True, False):
        given, _ = render_jinja_template(
            [messages], chat_template=verl_chat_template(), add_generation_prompt=True, enable_thinking=thinking
        )
        assert given[0] == render(messages, enable_thinking=thinking, add_generation_prompt=True)


def test_verl_rows_layout_and_mode_share():
    records = [
        {"id": f"q{i}", "prompt": f"Question {i}?", "verifier": "math", "ground_truth": str(i), "meta": {"k": i}}
        for i in range(10)
    ]
    rows = verl_rows(records, data_source="math-src", think_fraction=0.5, seed=3, reward="math")
    assert sum(r["extra_info"]["mode"] == "think" for r in rows) == 5  # floor(10 * 0.5 + 0.5)
    for i, row in enumerate(rows):
        mode = row["extra_info"]["mode"]
        assert row["prompt"] == [{"role": "user", "content": f"Question {i}?" + (" /think" if mode == "think" else " /no_think")}]
        assert row["data_source"] == "math-src" and row["ability"] == "math"
        assert row["reward_model"] == {"style": "rule", "ground_truth": json.dumps(str(i))}
        info = row["extra_info"]
        assert (info["index"], info["id"], info["verifier"], info["reward"]) == (i, f"q{i}", "math", "math")
        stored = json.loads(info["record"])
        assert stored["prompt"] == f"Question {i}?" and stored["meta"] == {"k": i} and "ground_truth" not in stored
    assert [r["extra_info"]["mode"] for r in verl_rows(records, data_source="s", think_fraction=0.0, seed=0)] == ["no_think"] * 10


def test_verl_rows_bad_record_names_row_and_field():
    with pytest.raises(CascadeError) as err:
        verl_rows([{"id": "a", "prompt": "x", "verifier": "math", "ground_truth": "1"}, {"id": "b", "prompt": "y"}],
                  data_source="s", think_fraction=1.0, seed=0, label="prompts.jsonl")
    assert "prompts.jsonl row 1" in str(err.value) and "verifier" in str(err.value)


def test_export_parquet_types(tmp_path):
    records = [
        {"id": "a", "prompt": "Say hi without commas.", "verifier": "instruction_following",
         "ground_truth": {"instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}},
        {"id": "b", "messages": [{"role": "user", "content": "What is 1+1?"}], "verifier": "math", "ground_truth": "2"},
    ]
    path = tmp_path / "out" / "train.parquet"
    assert export_verl_parquet(records, path, data_source="mix", think_fraction=1.0, seed=0) == 2
    table = pq.read_table(path)
    assert table.schema.field("prompt").type.value_type.names == ["role", "content"]
    assert table.schema.field("reward_model").type.names == ["style", "ground_truth"]
    rows = table.to_pylist()
    assert json.loads(rows[0]["reward_model"]["ground_truth"])["instruction_id_list"] == ["punctuation:no_comma"]
    assert rows[1]["prompt"] == [{"role": "user", "content": "What is 1+1? /think"}]
    with pytest.raises(CascadeError, match="no prompt records"):
        export_verl_parquet([], tmp_path / "empty.parquet", data_source="s", think_fraction=1.0, seed=0)


# ---------------------------------------------------------------- the reward hook


@pytest.fixture
def one_worker(monkeypatch):
    monkeypatch.setenv("CASCADE_VERL_REWARD_WORKERS", "1")


def _row(record, reward):
    return verl_rows([record], data_source="src", think_fraction=1.0, seed=0, reward=reward)[0]


def _score(row, completion):
    return compute_score(row["data_source"], completion, row["reward_model"]["ground_truth"], row["extra_info"])


MATH = {"id": "m", "prompt": "What is 2+3? Put the answer in \\boxed{}.", "verifier": "math", "ground_truth": "5"}


def test_compute_score_math_shaping(one_worker):
    row = _row(MATH, "math")
    assert _score(row, "<think>2+3=5</think>\nThe answer is \\boxed{5}.") == {"score": 1.0, "acc": 1.0, "language_mixing": 0.0}
    assert _score(row, "<think>2+3=6</think>\n\\boxed{6}")["score"] == 0.0
    assert _score(row, "<think>2+3 is still being")["score"] == 0.0  # truncated inside <think>: no answer
    mixed = _score(row, "<think>сложим два и три</think>\n\\boxed{5}")
    assert mixed == {"score": -1.0, "acc": 1.0, "language_mixing": 1.0}  # math: language mixing -> -1
    plain = _score(_row(MATH, None), "<think>сложим</think>\n\\boxed{5}")
    assert plain == {"score": 1.0, "acc": 1.0, "language_mixing": 0.0}  # no stage reward: the verifier's score


def test_compute_score_if_uses_the_record(one_worker):
    record = {"id": "i", "prompt": "Describe rain. Do not use any commas.", "verifier": "instruction_following",
              "ground_truth": {"instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}}
    row = _row(record, "if")
    assert _score(row, "Rain falls softly on the roof.")["score"] == 1.0
    assert _score(row, "Rain falls, softly.")["score"] == 0.0


def test_compute_score_refuses_what_it_cannot_do(one_worker):
    with pytest.raises(CascadeError, match="reward.reward_model.enable=true"):
        _score(_row(MATH, "rlhf"), "x")
    with pytest.raises(CascadeError, match="extra_info"):
        compute_score("src", "x", json.dumps("5"), None)
    with pytest.raises(CascadeError, match="unknown verifier"):
        _score(_row({**MATH, "verifier": "nope"}, None), "x")


# ---------------------------------------------------------------- launch


def test_launch_script_for_math_rl(tmp_path):
    recipe = load_recipe("nemotron-cascade-8b")
    text = launch_script(recipe, "math-rl", nnodes=8, n_gpus_per_node=8, run_dir=str(tmp_path / "run"))
    assert text.count("python -m verl.trainer.main_ppo") == 3
    assert f"--local_dir {tmp_path}/run/stages/06-math-rl/verl/global_step_" in text
    assert f"--target_dir {tmp_path}/run/stages/06-math-rl/final" in text
    assert f"actor_rollout_ref.model.path={tmp_path}/run/stages/05-if-rl-ifbench/final" in text
    assert text.count(f'"{TEMPLATE_KEY}=${{CASCADE_CHAT_TEMPLATE}}"') == 3
    assert "epoch_filter" in text  # the gaps are printed as comments
    script = tmp_path / "math.sh"
    script.write_text(text)
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0


def test_export_stage_data_and_cli(tmp_path, capsys):
    recipe = _tiny_recipe(tmp_path, "    max_steps: 3\n    reward: math\n    think_fraction: 0.5\n")
    files = export_stage_data(recipe, "rl", tmp_path / "verl-data")
    assert [Path(f).name for f in files] == ["00-prompts.parquet"]
    rows = pq.read_table(files[0]).to_pylist()
    assert [r["extra_info"]["mode"] for r in rows].count("think") == 1
    assert {r["ability"] for r in rows} == {"math", "arith"}
    assert main(["script", "nemotron-cascade-8b", "rlhf"]) == 0  # no longer refused
    assert "reward.reward_model.enable=true" in capsys.readouterr().out
    assert main(["script", "nemotron-cascade-8b", "sft-1"]) == 1  # the hand-run script is GRPO only
    assert "GRPO stages only" in capsys.readouterr().err

"""Epoch-level filtering (``epoch_filter``) on verl 0.9.1 (cascade.cluster.verl_epoch_filter).

Without verl: which jobs get the dataset class and the replay buffer, with what settings. With verl:
the math stage's jobs composed by verl's Hydra config; the dataset made by verl's
``create_rl_dataset`` (``data.custom_cls``) and its dataloader by verl's ``PPOTrainer._init_dataloader``;
prompts drawn by verl's ``_next_train_batch`` across several passes; outcomes reported by the
replay buffer built by verl's ``_build_replay_buffer`` while verl's ``ReplayBuffer.sample`` runs
(over an in-memory stand-in for TransferQueue); checkpoint and resume by verl's own
``_save_checkpoint`` / ``_load_checkpoint``. The prompts drawn equal the local trainer's
``PromptStream`` fed the same outcomes, and each pass's pool equals ``epoch_pool``.
"""

from __future__ import annotations

import gc
import json
import types

import pytest
from verl_helpers import tiny_tokenizer

torch = pytest.importorskip("torch")

from cascade.cluster import hydra_args, stage_phases, stage_to_verl_overrides, verl_gaps
from cascade.config import load_recipe

MODULE = "pkg://cascade.cluster.verl_epoch_filter"


def _overrides(recipe, stage_name, substage, **kwargs):
    args = dict(n_gpus_per_node=8, nnodes=1, model_path="/m", data_files=["/d.parquet"], substage=substage)
    args.update(kwargs)
    return stage_to_verl_overrides(recipe.stage(stage_name), recipe, **args)


@pytest.mark.parametrize("recipe_name", ["nemotron-cascade-8b", "nemotron-cascade-8b-thinking"])
def test_math_rl_jobs_get_the_dataset_and_the_replay_buffer(recipe_name):
    recipe = load_recipe(recipe_name, ["stages.swe-rl.judge=lexical"])
    stage = recipe.stage("math-rl")
    assert stage.epoch_filter and (stage.readd_prob_all_correct, stage.readd_prob_all_wrong) == (0.01, 0.10)
    for phase in stage_phases(stage):
        o = _overrides(recipe, "math-rl", phase.substage)
        assert (o["data.custom_cls.path"], o["data.custom_cls.name"]) == (MODULE, "EpochFilterDataset")
        assert (o["trainer.v1.sampler.custom_sampler.path"], o["trainer.v1.sampler.custom_sampler.name"]) == (
            MODULE, "EpochFilterReplayBuffer")
        assert o["data.shuffle"] is False and o["data.dataloader_num_workers"] == 0
        assert o["data.cascade_epoch_filter"] == {"readd_prob_all_correct": 0.01, "readd_prob_all_wrong": 0.10}
        assert o["data.seed"] == recipe.stage_seed("math-rl")
        kwargs = o["trainer.v1.sampler.sampler_kwargs"]
        assert kwargs["builtin"] == {"train_batch_size": 128, "gen_batch_size": 128, "max_inflight_gen_batches": 1,
                                     "sync_refill_failed_groups": False}
        # the overlong-filtered sub-stage keeps its estimator's settings in the same buffer
        overlong = stage.substage_knobs(phase.substage).overlong_filter
        assert ("overlong" in kwargs) == overlong
        assert (o["algorithm.adv_estimator"] == "cascade_grpo") == overlong
        assert "++data.cascade_epoch_filter={readd_prob_all_correct:0.01,readd_prob_all_wrong:0.1}" in hydra_args(o)
        gap = next(g for g in verl_gaps(stage, phase.substage) if g.startswith("epoch_filter"))
        assert "every prompt stays" not in gap and "input budget" in gap
    # other stages keep verl's own dataset and shuffling
    other = _overrides(recipe, "code-rl", stage_phases(recipe.stage("code-rl"))[0].substage)
    assert "data.custom_cls.path" not in other and other["data.shuffle"] is True


def test_epoch_filter_behind_a_colocated_reward_model_stays_a_gap():
    recipe = load_recipe("nemotron-cascade-8b", ["stages.rlhf.epoch_filter=true"])
    o = _overrides(recipe, "rlhf", None)
    assert "data.custom_cls.path" not in o
    assert any(g.startswith("epoch_filter: every prompt stays") for g in verl_gaps(recipe.stage("rlhf")))
    # without max_steps verl counts its epochs in whole-data steps: said per job
    by_epochs = load_recipe("nemotron-cascade-8b", ["stages.math-rl.max_steps=null", "stages.math-rl.epochs=2", "stages.math-rl.curriculum=[]"])
    assert any("without max_steps" in g for g in verl_gaps(by_epochs.stage("math-rl")))


# ---------------------------------------------------------------- through verl's own code


@pytest.fixture(scope="module")
def verl():
    pytest.importorskip("hydra")
    verl = pytest.importorskip("verl", reason="verl is not installed (pip install -e '.[verl-core]')")
    pytest.importorskip("verl.trainer.ppo.v1", reason="verl's V1 trainer does not import here (it needs "
                        "TransferQueue, fastapi, uvicorn and cachetools: pip install -e '.[verl-core]')")
    return verl


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return tiny_tokenizer(tmp_path_factory.mktemp("tiny"))


# Six prompts: two always solved, one never, three mixed.
OUTCOMES = {"p0": "all_correct", "p1": "all_correct", "p2": "all_wrong", "p3": "mixed", "p4": "mixed", "p5": "mixed"}
IDS = list(OUTCOMES)
VERDICTS = {"all_correct": [1.0] * 4, "all_wrong": [0.0] * 4, "mixed": [1.0, 0.0, 0.0, 1.0]}


def _data(tmp_path):
    from cascade.cluster.verl_data import export_verl_parquet

    records = [{"id": pid, "prompt": f"What is {i} + {i}?", "verifier": "math", "ground_truth": str(2 * i)}
               for i, pid in enumerate(IDS)]
    path = tmp_path / "math.parquet"
    export_verl_parquet(records, path, data_source="toy", think_fraction=1.0, seed=0, reward="math")
    return path


class FakeTransferQueue:
    """TransferQueue's key-value calls as verl's replay buffer makes them, in memory: a finished
    group is its prompt key plus one trajectory per rollout with the reward hook's extra info."""

    def __init__(self):
        self.tags: dict[str, dict] = {}
        self.values: dict[str, dict] = {}

    def finish_group(self, uid, extra_info, accs, step):
        self.tags[uid] = {"is_prompt": True, "status": "finished", "global_steps": step}
        for i, acc in enumerate(accs):
            key = f"{uid}_{i}_0"
            self.tags[key] = {"status": "success", "global_steps": step}
            self.values[key] = {"extra_info": extra_info, "extra_fields": {"reward_extra_info": {"acc": acc}},
                                "rm_scores": torch.tensor([0.0, acc])}  # the math reward: 1 / 0, as acc

    def kv_list(self, partition_id=None):
        return {"train": {k: dict(v) for k, v in self.tags.items()}} if self.tags else {}

    def kv_batch_get(self, keys, partition_id, select_fields):
        return {field: [self.values[k][field] for k in keys] for field in select_fields}

    def kv_clear(self, keys, partition_id):
        for key in [keys] if isinstance(keys, str) else keys:
            self.tags.pop(key, None)
            self.values.pop(key, None)


def _compose(overrides):
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        return compose(config_name="ppo_trainer", overrides=hydra_args(overrides))


def _trainer(cfg, tokenizer, tq):
    """verl's PPOTrainer methods on a stand-in self: the replay buffer, the datasets and dataloader,
    batch fetching, checkpoint save and load (workers stubbed: no GPUs, no Ray)."""
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    t = types.SimpleNamespace(config=cfg, trainer_mode=cfg.trainer.v1.trainer_mode, parameter_sync_step=1,
                              tokenizer=tokenizer, processor=None, use_critic=False, global_steps=0,
                              actor_rollout_wg=types.SimpleNamespace(save_checkpoint=lambda *a, **k: None,
                                                                     load_checkpoint=lambda *a, **k: None),
                              checkpoint_callback=types.SimpleNamespace(on_save=lambda **k: None))
    for name in ("_resolve_filter_groups_metric", "_fetch_one_gen_batch", "_next_train_batch", "_save_checkpoint",
                 "_load_checkpoint", "_submit_batch_to_rollout", "_add_prompts_to_generate"):
        setattr(t, name, types.MethodType(getattr(PPOTrainer, name), t))
    t.replay_buffer = PPOTrainer._build_replay_buffer(t)  # in __init__, before the data: as verl orders it
    PPOTrainer._init_dataloader(t)
    return t


def _run_steps(t, tq, steps, start, outcomes=OUTCOMES):
    """Each step as verl's sync trainer runs it: fetch a batch of prompts, let them finish (the
    rollouts' verdicts from ``outcomes``), sample the batch from the replay buffer. Returns the
    record ids drawn per step."""
    drawn = []
    for step in range(start, start + steps):
        t.global_steps = step
        batch = t._next_train_batch()
        infos = [info.data if hasattr(info, "data") else info for info in batch["extra_info"]]
        for uid, info in zip(batch["uid"], infos):
            tq.finish_group(uid, info, VERDICTS[outcomes[info["id"]]], step)
        picked, _metrics = t.replay_buffer.sample(global_steps=step, partition_id="train",
                                                  batch_size=t.config.data.train_batch_size)
        assert sorted({k.split("_")[0] for k in picked.keys}) == sorted(batch["uid"])
        tq.kv_clear(picked.keys, "train")  # what verl's fit loop does after the update
        drawn.append([info["id"] for info in infos])
    return drawn


def _local(seed, steps, batch, probs, outcomes=OUTCOMES):
    """The local trainer's stream: take a batch, record each prompt's outcome after its rollouts."""
    from cascade.trainers.rollout import PromptStream

    stream = PromptStream([{"id": pid} for pid in IDS], seed=seed, epoch_filter=True,
                          readd_prob_all_correct=probs[0], readd_prob_all_wrong=probs[1])
    drawn = []
    for _ in range(steps):
        records = stream.take(batch)
        for record in records:
            stream.record_verdict(record, outcomes[record["id"]])
        drawn.append([r["id"] for r in records])
    return drawn


def _job(tmp_path, tokenizer, probs, batch=2, dynamic=False, name="ckpt"):
    sets = [f"stages.math-rl.batch_size={batch}", f"stages.math-rl.readd_prob_all_correct={probs[0]}",
            f"stages.math-rl.readd_prob_all_wrong={probs[1]}", f"stages.math-rl.dynamic_filter={str(dynamic).lower()}"]
    recipe = load_recipe("nemotron-cascade-8b", sets)
    overrides = _overrides(recipe, "math-rl", "extend", data_files=[str(_data(tmp_path))],
                           checkpoint_dir=str(tmp_path / name))
    overrides["data.max_prompt_length"] = 256
    return recipe, _compose(overrides)


@pytest.fixture
def tq(verl, monkeypatch):
    from cascade.cluster import verl_epoch_filter
    from verl.trainer.ppo.v1 import replay_buffer, trainer_base

    fake = FakeTransferQueue()
    for module in (verl_epoch_filter, replay_buffer, trainer_base):
        for name in ("kv_list", "kv_batch_get", "kv_clear"):
            monkeypatch.setattr(module.tq, name, getattr(fake, name))
    monkeypatch.setattr(trainer_base.tq, "kv_batch_put", lambda **kwargs: None)
    yield fake
    gc.collect()


@pytest.mark.parametrize("probs, pool", [((0.0, 1.0), {"p2", "p3", "p4", "p5"}),
                                         ((1.0, 0.0), {"p0", "p1", "p3", "p4", "p5"})])
def test_next_pool_by_hand_through_verls_dataloader(verl, tokenizer, tq, tmp_path, probs, pool):
    """Re-add probabilities 0 and 1 make the next pass's pool exact: all-correct prompts gone and
    the all-wrong one kept (and the other way round); mixed prompts always stay."""
    from cascade.cluster.verl_epoch_filter import EpochFilterDataset, EpochFilterReplayBuffer

    recipe, cfg = _job(tmp_path, tokenizer, probs)
    t = _trainer(cfg, tokenizer, tq)
    t.agent_loop_manager = types.SimpleNamespace(generate_sequences=lambda batch: None)
    assert type(t.train_dataset) is EpochFilterDataset and type(t.replay_buffer) is EpochFilterReplayBuffer
    assert len(t.train_dataset) == 6 and t.steps_per_epoch == 3  # verl's count: the whole data
    assert t.train_dataloader.num_workers == 0
    prompts = 6 + 2 * len(pool)  # pass 0 (6 prompts), then two passes of the pool
    drawn = _run_steps(t, tq, -(-prompts // 2), start=1)
    flat = [pid for step in drawn for pid in step]
    assert sorted(flat[:6]) == IDS  # the first pass: every prompt once
    assert sorted(flat[6:6 + len(pool)]) == sorted(pool)  # the second: exactly the pool
    assert sorted(flat[6 + len(pool):6 + 2 * len(pool)]) == sorted(pool)  # the third: again
    assert drawn == _local(recipe.stage_seed("math-rl"), len(drawn), 2, probs)
    assert t.train_dataset.epoch >= 2


def test_paper_probabilities_equal_the_local_stream_and_epoch_pool(verl, tokenizer, tq, tmp_path):
    """At the paper's 0.01 / 0.10 the seeded draws decide: verl's prompts equal the local
    trainer's stream step by step, and every pass holds exactly ``epoch_pool``'s prompts."""
    from cascade.algo.filters import epoch_pool

    probs = (0.01, 0.10)
    seed_recipe, cfg = _job(tmp_path, tokenizer, probs, batch=3)
    t = _trainer(cfg, tokenizer, tq)
    t.agent_loop_manager = types.SimpleNamespace(generate_sequences=lambda batch: None)
    drawn = _run_steps(t, tq, 8, start=1)
    seed = seed_recipe.stage_seed("math-rl")
    assert drawn == _local(seed, 8, 3, probs)
    flat = [pid for step in drawn for pid in step]
    position, epoch = 6, 1
    while position < len(flat):
        pool = epoch_pool(IDS, OUTCOMES, epoch=epoch, seed=seed, readd_prob_all_correct=probs[0],
                          readd_prob_all_wrong=probs[1])
        chunk = flat[position:position + len(pool)]
        assert set(chunk) <= set(pool) and (len(chunk) < len(pool) or sorted(chunk) == sorted(pool))
        position, epoch = position + len(pool), epoch + 1
    assert epoch > 2


def test_dynamic_filtering_still_reports_evicted_groups(verl, tokenizer, tq, tmp_path):
    """With dynamic filtering verl evicts all-correct and all-wrong groups before they are
    trained on; the buffer has reported them first, so they still leave the next pool."""
    _recipe, cfg = _job(tmp_path, tokenizer, (0.0, 0.0), dynamic=True)
    assert cfg.algorithm.filter_groups.enable
    t = _trainer(cfg, tokenizer, tq)
    submitted = []

    def generate(batch):
        infos = [i.data if hasattr(i, "data") else i for i in batch["extra_info"]]
        for uid, info in zip(batch["uid"], infos):
            tq.finish_group(uid, info, VERDICTS[OUTCOMES[info["id"]]], t.global_steps)
            submitted.append(info["id"])

    t.agent_loop_manager = types.SimpleNamespace(generate_sequences=generate)
    t.global_steps = 1
    t._add_prompts_to_generate(2)  # verl's prepare_step for a gen batch of 1 prompt, twice
    for step in range(1, 4):
        t.global_steps = step
        picked, _metrics = t.replay_buffer.sample(global_steps=step, partition_id="train", batch_size=2)
        tq.kv_clear(picked.keys, "train")
        if step < 3:
            t._add_prompts_to_generate(2)
    assert t.train_dataset.epoch >= 1
    # after the first pass, only mixed prompts are drawn (re-add probabilities 0)
    assert sorted(submitted[:6]) == IDS
    assert set(submitted[6:]) <= {"p3", "p4", "p5"} and submitted[6:]


def test_resume_from_verls_checkpoint_keeps_the_stream(verl, tokenizer, tq, tmp_path):
    """verl saves the dataloader (with our dataset's stream and outcomes) in ``data.pt``; a new
    job's ``_load_checkpoint`` restores it, and the prompts go on as without the interruption."""
    probs = (0.0, 1.0)
    _recipe, cfg = _job(tmp_path, tokenizer, probs, name="straight")
    t = _trainer(cfg, tokenizer, tq)
    t.agent_loop_manager = types.SimpleNamespace(generate_sequences=lambda batch: None)
    straight = _run_steps(t, tq, 8, start=1)
    del t
    gc.collect()

    _recipe, cfg = _job(tmp_path, tokenizer, probs, name="resumed")
    first = _trainer(cfg, tokenizer, tq)
    first.agent_loop_manager = types.SimpleNamespace(generate_sequences=lambda batch: None)
    before = _run_steps(first, tq, 4, start=1)  # into the second pass
    first.global_steps = 4
    first._save_checkpoint()
    saved = tmp_path / "resumed" / "global_step_4" / "data.pt"
    assert saved.exists()
    del first
    gc.collect()

    second = _trainer(cfg, tokenizer, tq)
    second.agent_loop_manager = types.SimpleNamespace(generate_sequences=lambda batch: None)
    second._load_checkpoint()
    assert second.global_steps == 4
    after = _run_steps(second, tq, 4, start=5)
    assert before + after == straight
    assert second.train_dataset.stream.verdicts  # the outcomes came back with the checkpoint


def test_dataset_refuses_worker_processes_and_shuffled_samplers(verl, tokenizer, tq, tmp_path, monkeypatch):
    from cascade.cluster import verl_epoch_filter
    from cascade.errors import CascadeError

    _recipe, cfg = _job(tmp_path, tokenizer, (0.01, 0.1))
    t = _trainer(cfg, tokenizer, tq)
    with pytest.raises(CascadeError, match="data.shuffle=false"):
        t.train_dataset[3]
    monkeypatch.setattr(verl_epoch_filter, "get_worker_info", lambda: object())  # as in a dataloader worker
    with pytest.raises(CascadeError, match="dataloader_num_workers=0"):
        t.train_dataset[0]
    assert json.dumps(t.train_dataset.state_dict())  # plain data: verl's data.pt holds it

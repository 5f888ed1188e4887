"""Preference pairs rated from the policy's own replies: pairing by hand, rating with a
scripted engine, the toy world's prompt part, and an RM stage that samples them end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cascade.config import load_recipe
from cascade.config.recipe import SampledPairs
from cascade.engine.base import Generation
from cascade.pipeline.options import RunOptions
from cascade.pipeline.runner import run_recipe
from cascade.toyworld import build_toy_world
from cascade.trainers.sampled_pairs import RatedReply, pair_rated_replies, read_pairs, sample_rated_pairs


def test_pairs_by_hand():
    replies = [
        RatedReply(0, "a", True), RatedReply(0, "b", True), RatedReply(0, "a", True),  # a twice: counted once
        RatedReply(0, "x", False),
        RatedReply(1, "only good", True),  # nothing to pair with
        RatedReply(2, "y", False), RatedReply(2, "z", False),  # nothing to pair with
        RatedReply(3, "c", True), RatedReply(3, "t", True), RatedReply(3, "t", False), RatedReply(3, "w", False),
    ]
    pairs = pair_rated_replies(replies, max_pairs_per_prompt=10, seed=0)
    # Prompt 0: {a, b} x {x}. Prompt 3: "t" was rated both ways and is dropped: {c} x {w}.
    assert sorted(pairs) == [(0, "a", "x"), (0, "b", "x"), (3, "c", "w")]
    capped = pair_rated_replies(replies, max_pairs_per_prompt=1, seed=0)
    assert [p[0] for p in capped] == [0, 3] and capped[1] == (3, "c", "w")
    assert capped[0] in {(0, "a", "x"), (0, "b", "x")}
    assert pair_rated_replies(replies, 1, seed=0) == capped  # the seed fixes the choice


class ScriptedEngine:
    """Answers each rendered prompt with the next reply scripted for its mode."""

    def __init__(self, think: list[tuple[str, str]], no_think: list[tuple[str, str]]) -> None:
        self.script = {"think": list(think), "no_think": list(no_think)}
        self.prompts: list[str] = []

    def generate(self, prompts, sampling):
        out = []
        for p in prompts:
            self.prompts.append(p)
            mode = "no_think" if " /no_think<|im_end|>" in p else "think"  # the unified model's mode flag
            text, finish = self.script[mode].pop(0)
            out.append(Generation(prompt_ids=[], token_ids=[], text=text, logprobs=[], finish_reason=finish))
        return out


def test_replies_are_rated_by_the_records_verifier():
    cat = {"id": "cat", "messages": [{"role": "user", "content": "Tell me about the cat."}], "verifier": "toy_chat",
           "ground_truth": {"keywords": ["cat", "animal"], "facts": ["The cat is an animal.", "It is often grey."]}}
    right, false = "The cat is an animal. It is often grey.", "The cat is an animal. It is often green."
    engine = ScriptedEngine(
        think=[(f"<think>\nThe user asks about the cat.\n</think>\n\n{right}<|im_end|>", "stop"),
               (f"<think>\nThe user asks about the cat.\n</think>\n\n{false}<|im_end|>", "stop")],
        # A right answer cut off by the length budget is not a finished reply: rated bad.
        no_think=[("The cat is an animal.<|im_end|>", "stop"), (right, "length")],
    )
    spec = SampledPairs(data=[{"path": "unused.jsonl"}], samples=2, modes="both", max_pairs_per_prompt=10)
    pairs, summary = sample_rated_pairs(engine, [cat], spec, seed=0)
    assert len(engine.prompts) == 4 and sum(" /no_think<|im_end|>" in p for p in engine.prompts) == 2
    # Good: the think reply's answer (reasoning stripped, as the RM scores it) and the short
    # instruct one. Bad: the false fact, and the cut-off copy of `right`. The RM would read
    # the same text for the good and the cut-off `right`, so that text is dropped both ways.
    assert summary == {"replies": 4, "passed": 2, "prompts_paired": 1, "pairs": 1}
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [("The cat is an animal.", false)]
    assert all(p["messages"] == cat["messages"] and p["source"] == "sampled:cat" for p in pairs)


def test_toy_world_rates_the_preference_prompts():
    world = build_toy_world(seed=0, sizes={"chat": 200, "if": 10, "math": 10, "code": 10, "swe": 10})
    rated = {r["messages"][0]["content"]: r for r in world.rated}
    assert set(rated) == {p["prompt"] for p in world.preference}
    held_out = {r["messages"][0]["content"] for split in (world.rl, world.eval) for r in split["chat"]}
    assert not set(rated) & held_out
    for prompt, record in rated.items():
        assert record["verifier"] == "toy_chat" and record["ground_truth"]["topic"] in prompt


def test_adding_the_rated_part_left_the_default_world_unchanged():
    """Recorded results (docs/tiny-results.md) ran on this world: the rated prompts draw
    nothing from the generator's random stream, so every other part is as it was.

    Two digests: every part but the SWE ones, unchanged since before the rated part was
    added (which is why five-seed runs could reuse SFT-1, which has no SWE data, after the
    toy SWE tasks changed in 7491462); and the whole world, as of that change."""
    import hashlib

    from cascade.toyworld.build import world_parts

    everything, without_swe = hashlib.sha256(), hashlib.sha256()
    for name, rows in sorted(world_parts(build_toy_world(0))):
        if name != "rm/chat":
            blob = name.encode() + "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
            everything.update(blob)
            if not name.endswith("/swe"):
                without_swe.update(blob)
    assert without_swe.hexdigest() == "6b191e94b2d19e8038f04b99b544ff2d24cd193e97a6d0904e3bd2e545a44a69"
    assert everything.hexdigest() == "7d5c0c16a3d6f8ec2f5b6d927a8364309d92136814d7b56a80fea1e051a1a1f1"


MICRO_RM = """\
name: micro-rm
seed: 0
base_model: {init: {size: tiny}}
stages:
  - name: sft
    kind: sft
    data: {generator: toy/sft/chat, limit: 16}
    lr: 1.0e-3
    batch_size: 8
    max_steps: 2
    max_seq_len: 160
  - name: rm
    kind: rm
    parent: sft
    data: {generator: toy/preference, limit: 12}
    sampled_pairs: {data: {generator: toy/rm/chat, limit: 4}, samples: 2, max_new_tokens: 24}
    lr: 1.0e-3
    batch_size: 4
    epochs: 1
    max_seq_len: 160
    heldout_fraction: 0.0
"""


def test_rm_stage_samples_rates_and_keeps_its_pairs(tmp_path):
    recipe_file = tmp_path / "micro.yaml"
    recipe_file.write_text(MICRO_RM)
    out = tmp_path / "run"
    run_recipe(load_recipe(recipe_file), RunOptions(out_dir=out, progress=False, device="cpu",
                                                    recipe_file=str(recipe_file), echo=lambda s: None))
    stage = out / "stages" / "02-rm"
    manifest = json.loads((stage / "manifest.json").read_text())
    summary = manifest["metrics"]["sampled_pairs"]
    assert summary["replies"] == 4 * 2 * 2  # 4 prompts x 2 modes x 2 samples
    written = read_pairs(stage / "sampled_pairs.jsonl")
    assert len(written) == summary["pairs"]
    assert manifest["metrics"]["pairs"] == 12 + summary["pairs"]  # every pair trained (no held-out part)
    assert set(manifest["data_hashes"]) == {"toy/preference", "toy/rm/chat"}

    # A resumed stage trains on the pairs it sampled before, without sampling again.
    from cascade.pipeline.runner import _sampled_pairs

    recipe = load_recipe(recipe_file)
    kept = [{"id": "p", "prompt": "Tell me about the cat.", "chosen": "A.", "rejected": "B."}]
    (stage / "sampled_pairs.jsonl").write_text(json.dumps(kept[0]) + "\n")
    pairs, _, info = _sampled_pairs(recipe.stages[1], Path("/nonexistent"), None, out, stage,
                                    RunOptions(out_dir=out, progress=False, device="cpu"))
    assert pairs == kept and info["pairs"] == 1


def test_dry_run_counts_sampled_pairs_as_a_bound(tmp_path):
    from cascade.config.plan import plan_recipe

    recipe_file = tmp_path / "micro.yaml"
    recipe_file.write_text(MICRO_RM)
    rm = plan_recipe(load_recipe(recipe_file))[1]
    # 12 given pairs / batch 4; the 4 prompts x max_pairs_per_prompt 4 sampled ones are a bound.
    assert rm.steps == 3 and rm.how == "at least 1 epoch(s) x 12 pairs / batch 4, + up to 16 sampled pairs"


def test_sampled_pairs_settings_are_checked():
    with pytest.raises(Exception, match="samples"):
        SampledPairs(data=[{"path": "x.jsonl"}], samples=1)


def test_prompts_with_an_unknown_verifier_fail_before_sampling(tmp_path):
    from cascade.errors import CascadeError
    from cascade.pipeline.runner import _sampled_pairs

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"id": "a", "messages": [{"role": "user", "content": "Hi"}],
                                   "verifier": "toy_chatt", "ground_truth": None}) + "\n")
    recipe_file = tmp_path / "micro.yaml"
    recipe_file.write_text(MICRO_RM.replace("{generator: toy/rm/chat, limit: 4}", f"{{path: {prompts}}}"))
    stage = load_recipe(recipe_file).stages[1]
    with pytest.raises(CascadeError, match="toy_chatt") as caught:
        # The parent checkpoint does not exist: the check must come before any model is built.
        _sampled_pairs(stage, Path("/nonexistent"), None, tmp_path, tmp_path,
                       RunOptions(out_dir=tmp_path, progress=False, device="cpu"))
    assert caught.value.field == "stages.rm.sampled_pairs.data"
    assert not (tmp_path / "sampled_pairs.jsonl").exists()


def test_stage_summary_line_names_the_rated_pairs():
    from cascade.pipeline.runner import one_line_summary

    manifest = {"stage": "rm", "kind": "rm", "parent": "sft-2", "timings": {"train_s": 30.2, "eval_s": 0},
                "metrics": {"step": 5, "heldout_accuracy": 0.875,
                            "sampled_pairs": {"replies": 40, "passed": 9, "prompts_paired": 6, "pairs": 12}}}
    assert one_line_summary(manifest) == ("✓ rm (rm, from sft-2) · 5 steps · heldout_accuracy 0.875 · "
                                          "12 pairs rated from 40 replies (9 passed) · train 30s, eval 0s")

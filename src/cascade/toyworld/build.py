"""Assemble the toy world into records that follow the data contract (docs/records.md).

- SFT conversations per domain (parallel thinking and instruct targets where the paper has
  them: general chat and instruction following; math also gets both, so the thinking-vs-
  instruct comparison on multi-step math is possible),
- preference pairs for the reward model, and their prompts with ground truth (for pairs
  rated from the policy's own replies),
- RL prompts per domain, and held-out eval prompts per domain, all three disjoint.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from cascade.data.io import atomic_open
from cascade.toyworld import chat, code_tasks, instructions, math_problems, swe_tasks
from cascade.toyworld.splits import assign_split, stable_id

DOMAINS = ("chat", "if", "math", "code", "swe")

# Verifier routing key of each domain's prompt records.
VERIFIER = {"chat": "toy_chat", "if": "instruction_following", "math": "math", "code": "code", "swe": "swe"}

DEFAULT_SIZES = {"chat": 1500, "if": 1200, "math": 2000, "code": 600, "swe": 400}


@dataclass
class ToyWorld:
    sft: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    preference: list[dict[str, Any]] = field(default_factory=list)
    # Prompt records (with ground truth) of the preference pairs' prompts: the reward-model
    # stage answers them with its parent policy and rates the replies (``sampled_pairs``).
    rated: list[dict[str, Any]] = field(default_factory=list)
    rl: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    eval: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def _prompt_record(domain: str, key: str, prompt: str, ground_truth: Any, meta: dict | None = None) -> dict:
    return {"id": stable_id(domain, key), "messages": _user(prompt), "verifier": VERIFIER[domain],
            "ground_truth": ground_truth, "meta": {"domain": domain, **(meta or {})}}


def _sft_record(domain: str, key: str, prompt: str, target: str, mode: str) -> dict:
    return {"id": f"{stable_id(domain, key)}-{mode}", "messages": _user(prompt) + [{"role": "assistant", "content": target}],
            "mode": mode, "source": f"toy-{domain}"}


def _distinct(problems: list[Any]) -> list[Any]:
    seen, out = set(), []
    for p in problems:
        if p.key not in seen:
            seen.add(p.key)
            out.append(p)
    return out


def build_toy_world(seed: int = 0, sizes: dict[str, int] | None = None) -> ToyWorld:
    """Generate every domain. ``sizes`` is the number of problems drawn per domain before
    de-duplication and splitting (about 50% SFT, 30% RL, 20% eval)."""
    sizes = {**DEFAULT_SIZES, **(sizes or {})}
    world = ToyWorld()
    builders: dict[str, Callable[[random.Random, int, ToyWorld], None]] = {
        "chat": _build_chat, "if": _build_if, "math": _build_math, "code": _build_code, "swe": _build_swe,
    }
    for i, domain in enumerate(DOMAINS):
        world.sft[domain], world.rl[domain], world.eval[domain] = [], [], []
        builders[domain](random.Random(seed * 1000 + i), sizes[domain], world)
    return world


def _build_chat(rng: random.Random, n: int, w: ToyWorld) -> None:
    for p in _distinct(chat.generate(rng, n)):
        split = assign_split("chat", p.key)
        if split == "sft":
            w.sft["chat"].append(_sft_record("chat", p.key, p.prompt, chat.thinking_target(p, rng), "think"))
            w.sft["chat"].append(_sft_record("chat", p.key, p.prompt, chat.instruct_target(p, rng), "no_think"))
            # Three pairs per prompt: two against off-topic answers, one against an on-topic
            # answer with a false fact.
            for j, kind in enumerate(("off_topic", "off_topic", "hallucinated")):
                chosen, rejected = chat.preference_pair(p, rng, kind)
                w.preference.append({"id": f"{stable_id('chat', p.key)}-{j}", "prompt": p.prompt, "chosen": chosen,
                                     "rejected": rejected, "source": "toy-chat"})
            # No draw from ``rng`` here: the ground truth is fixed by the topic, so adding this
            # part left every other part of the world as it was.
            w.rated.append(_prompt_record("chat", p.key, p.prompt, chat.ground_truth(p)))
        else:
            getattr(w, split)["chat"].append(_prompt_record("chat", p.key, p.prompt, chat.ground_truth(p)))


def _build_if(rng: random.Random, n: int, w: ToyWorld) -> None:
    for p in _distinct(instructions.generate(rng, n)):
        split = assign_split("if", p.key)
        if split == "sft":
            w.sft["if"].append(_sft_record("if", p.key, p.prompt, instructions.thinking_target(p), "think"))
            w.sft["if"].append(_sft_record("if", p.key, p.prompt, p.response, "no_think"))
        else:
            gt = {"instruction_id_list": list(p.instruction_id_list), "kwargs": [dict(k) for k in p.kwargs]}
            getattr(w, split)["if"].append(_prompt_record("if", p.key, p.prompt, gt, {"prompt": p.prompt}))


def _build_math(rng: random.Random, n: int, w: ToyWorld) -> None:
    for p in _distinct(math_problems.generate(rng, n)):
        split = assign_split("math", p.key)
        prompt = math_problems.prompt_text(p)
        if split == "sft":
            w.sft["math"].append(_sft_record("math", p.key, prompt, math_problems.thinking_target(p), "think"))
            w.sft["math"].append(_sft_record("math", p.key, prompt, math_problems.instruct_target(p), "no_think"))
        else:
            getattr(w, split)["math"].append(_prompt_record("math", p.key, prompt, str(p.answer), {"steps": p.n_steps}))


def _build_code(rng: random.Random, n: int, w: ToyWorld) -> None:
    for t in _distinct(code_tasks.generate(rng, n)):
        split = assign_split("code", t.key)
        if split == "sft":
            w.sft["code"].append(_sft_record("code", t.key, t.prompt, code_tasks.target(t, thinking=True), "think"))
        else:
            gt = {"style": "assert", "test": t.test, "entry_point": t.entry_point}
            getattr(w, split)["code"].append(_prompt_record("code", t.key, t.prompt, gt))


def _build_swe(rng: random.Random, n: int, w: ToyWorld) -> None:
    for t in _distinct(swe_tasks.generate(rng, n)):
        split = assign_split("swe", t.key)
        if split == "sft":
            w.sft["swe"].append(_sft_record("swe", t.key, t.prompt, swe_tasks.target(t, thinking=True), "think"))
        else:
            gt = {"files": {t.path: t.original}, "gold_patch": t.gold_patch}
            getattr(w, split)["swe"].append(_prompt_record("swe", t.key, t.prompt, gt))


def world_parts(world: ToyWorld) -> list[tuple[str, list[dict[str, Any]]]]:
    """Every part by its name (``preference``, ``sft/math``, ``eval/if`` ...) with its rows."""
    parts: list[tuple[str, list[dict]]] = [("preference", world.preference), ("rm/chat", world.rated)]
    for kind in ("sft", "rl", "eval"):
        for domain, rows in getattr(world, kind).items():
            parts.append((f"{kind}/{domain}", rows))
    return parts


def part_sizes(seed: int) -> dict[str, int]:
    """Rows in each part of the toy world of this seed, without writing anything (about 0.3 s;
    `cascade run --dry-run` uses it to estimate the steps of stages fed by toy generators)."""
    return {name: len(rows) for name, rows in world_parts(build_toy_world(seed))}


def write_toy_world(out_dir: str | Path, world: ToyWorld) -> dict[str, Path]:
    """Write every split as JSONL under ``out_dir``; returns the file of each part.

    Layout: ``sft/<domain>.jsonl``, ``preference.jsonl``, ``rm/chat.jsonl`` (the preference
    prompts with ground truth), ``rl/<domain>.jsonl``, ``eval/<domain>.jsonl``. Each file is
    written to a temporary name and renamed, so a crash never leaves a half-written file
    behind.
    """
    out = Path(out_dir)
    files: dict[str, Path] = {}
    for name, rows in world_parts(world):
        path = out / f"{name}.jsonl"
        with atomic_open(path) as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        files[name] = path
    return files

"""The toy world: deterministic, leak-free, and every target is right by the real verifiers."""

from __future__ import annotations

import json
import re

import pytest

from cascade.toyworld import DOMAINS, build_toy_world, write_toy_world
from cascade.toyworld.splits import assign_split

SMALL = {"chat": 120, "if": 120, "math": 200, "code": 120, "swe": 60}


@pytest.fixture(scope="module")
def world():
    return build_toy_world(seed=0, sizes=SMALL)


def _prompt(rec):
    return rec["messages"][0]["content"]


def test_same_seed_same_world(world):
    again = build_toy_world(seed=0, sizes=SMALL)
    assert again.sft == world.sft and again.rl == world.rl and again.eval == world.eval


def test_splits_are_disjoint_by_prompt(world):
    for d in DOMAINS:
        sft = {_prompt(r) for r in world.sft[d]}
        rl = {_prompt(r) for r in world.rl[d]}
        ev = {_prompt(r) for r in world.eval[d]}
        assert ev and rl, d
        assert not (sft & rl) and not (sft & ev) and not (rl & ev), d


def test_split_is_a_function_of_the_problem_only():
    # Same key, same split, whatever the order of generation.
    assert assign_split("math", "q1") == assign_split("math", "q1")
    counts = {"sft": 0, "rl": 0, "eval": 0}
    for i in range(2000):
        counts[assign_split("math", f"problem {i}")] += 1
    # 50/30/20 by construction; 2000 draws land within a few percent.
    assert 900 < counts["sft"] < 1100 and 520 < counts["rl"] < 680 and 330 < counts["eval"] < 470


def test_math_scratchpad_arithmetic_is_right(world):
    for rec in world.sft["math"]:
        target = rec["messages"][1]["content"]
        answer = int(re.search(r"\\boxed\{(-?\d+)\}", target).group(1))
        if rec["mode"] == "think":
            last = None
            for line in re.findall(r"^(\d+) ([-+*/]) (\d+) = (\d+)$", target, flags=re.M):
                a, op, b, c = int(line[0]), line[1], int(line[2]), int(line[3])
                assert {"+": a + b, "-": a - b, "*": a * b, "/": a // b}[op] == c, target
                if op == "/":
                    assert a % b == 0
                last = c
            assert last == answer


def test_parallel_think_and_instruct_targets(world):
    for d in ("chat", "if", "math"):
        modes = {}
        for rec in world.sft[d]:
            modes.setdefault(_prompt(rec), set()).add(rec["mode"])
        assert all(m == {"think", "no_think"} for m in modes.values()), d
        for rec in world.sft[d]:
            has_think = rec["messages"][1]["content"].startswith("<think>")
            assert has_think == (rec["mode"] == "think")


def test_preference_pairs_reject_off_topic_or_false_answers(world):
    assert world.preference
    hallucinated = 0
    for pair in world.preference:
        topic = re.search(r"the (\w+)", pair["prompt"]).group(1)
        assert f"The {topic} is" in pair["chosen"]
        if f"The {topic} is" in pair["rejected"]:  # on topic: exactly one sentence differs
            hallucinated += 1
            chosen, rejected = pair["chosen"].split(". "), pair["rejected"].split(". ")
            assert chosen[0] == rejected[0] and chosen != rejected
    assert 0 < hallucinated < len(world.preference)


def test_written_files_round_trip(world, tmp_path):
    files = write_toy_world(tmp_path, world)
    rows = [json.loads(line) for line in files["rl/math"].read_text().splitlines()]
    assert rows == world.rl["math"]
    assert not list(tmp_path.rglob("*.tmp"))


def _score(verifier: str, completion: str, record: dict) -> float:
    from cascade.verifiers import get_verifier

    return get_verifier(verifier).verify(completion, record).score


def test_if_targets_satisfy_the_real_if_verifier(world):
    from cascade.toyworld import instructions
    import random

    problems = instructions.generate(random.Random(1), 60)
    for p in problems:
        record = {"ground_truth": {"instruction_id_list": list(p.instruction_id_list), "kwargs": list(p.kwargs)},
                  "meta": {"prompt": p.prompt}}
        assert _score("instruction_following", p.response, record) == 1.0, (p.prompt, p.response)
        assert _score("instruction_following", instructions.thinking_target(p), record) == 1.0


def test_code_reference_solutions_pass_and_wrong_ones_fail(world):
    from cascade.toyworld import code_tasks
    import random

    for t in code_tasks.generate(random.Random(2), 6):
        record = {"ground_truth": {"style": "assert", "test": t.test, "entry_point": t.entry_point}}
        assert _score("code", code_tasks.target(t, thinking=True), record) == 1.0
        broken = f"```python\ndef {t.entry_point}(x):\n    return None\n```"
        assert _score("code", broken, record) == 0.0


def test_swe_gold_edit_scores_one(world):
    from cascade.toyworld import swe_tasks
    import random

    for t in swe_tasks.generate(random.Random(3), 5):
        record = {"ground_truth": {"files": {t.path: t.original}, "gold_patch": t.gold_patch}}
        assert _score("swe", swe_tasks.target(t, thinking=True), record) == 1.0
        assert _score("swe", "no edit here", record) == -1.0


def test_swe_tasks_keep_each_function_in_its_file():
    # The toy repository's layout is fixed: the answer's path follows from the function the
    # issue names, never from a per-task draw (which the tiny model could only guess).
    from cascade.toyworld import swe_tasks
    import random

    seen: dict[str, set[str]] = {}
    for t in swe_tasks.generate(random.Random(5), 300):
        function = t.plan.split(",")[0].removeprefix("In ")
        assert f"def {function}(" in t.original and f"{function}(" in t.prompt
        seen.setdefault(function, set()).add(t.path)
        assert f"File {t.path}:" in t.prompt and t.gold_patch.startswith(f"diff --git a/{t.path} ")
        # The buggy line occurs once, so the gold SEARCH block is unambiguous.
        assert t.original.count(t.bad_line + "\n") == 1
    assert seen == {name: {path} for name, path in swe_tasks.FILE_OF.items()}
    assert set(swe_tasks.FILE_OF.values()) == {"calc.py", "utils.py", "helpers.py", "tools.py"}


def test_toy_chat_answers_pass_their_own_check(world):
    from cascade.toyworld import chat
    import random

    rng = random.Random(4)
    for p in chat.generate(rng, 20):
        record = {"ground_truth": chat.ground_truth(p)}
        assert _score("toy_chat", chat.instruct_target(p, rng), record) == 1.0
        for kind in chat.PAIR_KINDS:
            chosen, rejected = chat.preference_pair(p, rng, kind)
            assert _score("toy_chat", chosen, record) == 1.0
            assert _score("toy_chat", rejected, record) == 0.0, (kind, rejected)


def test_toy_chat_check_by_hand():
    facts = ["The apple is a fruit.", "It is often red.", "You can find it on trees.", "People use it for eating."]
    record = {"ground_truth": {"keywords": ["apple", "fruit"], "facts": facts}}
    assert _score("toy_chat", "The apple is a fruit.  it is often RED.", record) == 1.0
    assert _score("toy_chat", "The apple is a fruit. It is often blue.", record) == 0.0  # a false fact
    assert _score("toy_chat", "The apple is a fruit. It is often", record) == 0.0  # cut off mid-sentence
    assert _score("toy_chat", "It is often red.", record) == 0.0  # never names the thing
    keywords_only = {"ground_truth": {"keywords": ["apple", "fruit"]}}
    assert _score("toy_chat", "The apple is a fruit. It is often blue.", keywords_only) == 1.0


def test_math_numbers_are_single_digits_and_problems_take_two_or_three_steps(world):
    """One-digit quantities keep each scratchpad step one fact over single tokens (see the
    math_problems docstring); the multi-step structure is what thinking mode should help."""
    for rec in world.sft["math"]:
        prompt, target = rec["messages"][0]["content"], rec["messages"][1]["content"]
        assert all(len(n) == 1 for n in re.findall(r"\d+", prompt + target)), (prompt, target)
        if rec["mode"] == "think":
            assert len(re.findall(r"^\d [-+] \d = \d$", target, flags=re.M)) in (2, 3), target

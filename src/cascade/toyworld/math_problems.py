"""Toy math: multi-step arithmetic word problems with a ``\\boxed{}`` answer.

Thinking targets write every intermediate step in a scratchpad; instruct targets give the
answer directly. Multi-step problems are where a scratchpad should pay off for a tiny model,
which is the paper's thinking-vs-instruct claim in miniature.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

NAMES = ["Ann", "Ben", "Cara", "Dan", "Eva", "Finn", "Gia", "Hal", "Ivy", "Jon", "Kim", "Leo"]
ITEMS = ["apple", "book", "coin", "pen", "card", "shell", "stone", "ball", "cup", "key"]
INSTRUCTION = "Put the final answer in \\boxed{}."


@dataclass(frozen=True)
class MathProblem:
    key: str
    question: str
    steps: tuple[str, ...]  # the scratchpad lines, e.g. "7 + 4 = 11"
    answer: int
    n_steps: int


def _buy_give(rng: random.Random) -> MathProblem:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    a, b = rng.randint(2, 9), rng.randint(2, 9)
    c = rng.randint(1, a + b - 1)
    s1, s2 = a + b, a + b - c
    q = (f"{name} has {a} {item}s. {name} gets {b} more and then gives away {c}. "
         f"How many {item}s does {name} have now?")
    return MathProblem(q, q, (f"{a} + {b} = {s1}", f"{s1} - {c} = {s2}"), s2, 2)


def _boxes(rng: random.Random) -> MathProblem:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    a, b, c = rng.randint(2, 6), rng.randint(2, 6), rng.randint(1, 9)
    s1, s2 = a * b, a * b + c
    q = (f"{name} has {a} bags with {b} {item}s in each bag and {c} more {item}s on the table. "
         f"How many {item}s does {name} have in all?")
    return MathProblem(q, q, (f"{a} * {b} = {s1}", f"{s1} + {c} = {s2}"), s2, 2)


def _three_step(rng: random.Random) -> MathProblem:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    a, b = rng.randint(2, 5), rng.randint(2, 5)
    c, d = rng.randint(1, 9), rng.randint(1, 9)
    s1 = a * b
    s2 = s1 + c
    d = min(d, s2 - 1)
    s3 = s2 - d
    q = (f"{name} buys {a} packs of {b} {item}s, finds {c} more {item}s and loses {d}. "
         f"How many {item}s does {name} have?")
    return MathProblem(q, q, (f"{a} * {b} = {s1}", f"{s1} + {c} = {s2}", f"{s2} - {d} = {s3}"), s3, 3)


def _share(rng: random.Random) -> MathProblem:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    k = rng.randint(2, 4)
    per = rng.randint(2, 6)
    a = rng.randint(1, k * per - 1)
    b = k * per - a
    s1 = a + b
    q = (f"{name} has {a} {item}s and gets {b} more. {name} shares them equally among {k} friends. "
         f"How many {item}s does each friend get?")
    return MathProblem(q, q, (f"{a} + {b} = {s1}", f"{s1} / {k} = {per}"), per, 2)


FAMILIES = (_buy_give, _boxes, _three_step, _share)


def generate(rng: random.Random, n: int) -> list[MathProblem]:
    return [rng.choice(FAMILIES)(rng) for _ in range(n)]


def prompt_text(p: MathProblem) -> str:
    return f"{p.question} {INSTRUCTION}"


def thinking_target(p: MathProblem) -> str:
    scratch = "\n".join(p.steps)
    return f"<think>\n{scratch}\n</think>\nThe answer is \\boxed{{{p.answer}}}."


def instruct_target(p: MathProblem) -> str:
    return f"The answer is \\boxed{{{p.answer}}}."

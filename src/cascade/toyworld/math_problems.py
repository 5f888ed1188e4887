"""Toy math: multi-step arithmetic word problems with a ``\\boxed{}`` answer.

Thinking targets write every intermediate step in a scratchpad; instruct targets give the
answer directly. Multi-step problems are where a scratchpad should pay off for a tiny model,
which is the paper's thinking-vs-instruct claim in miniature.

Every number in a problem, its steps and its answer is one digit (0-9), so each scratchpad
line is one addition or subtraction fact over single tokens (the tokenizer splits numbers
into digits). A tiny model learns such facts but not carrying over several digits, so
multi-digit problems would leave both modes failing alike; with one-digit steps, thinking
(one fact per line) can pull ahead of instruct (two or three facts composed in one token).
docs/measurements.md has the figures.
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


def _add_give(rng: random.Random) -> MathProblem:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    a = rng.randint(1, 8)
    b = rng.randint(1, 9 - a)
    c = rng.randint(1, a + b - 1) if a + b > 1 else 0
    s1, s2 = a + b, a + b - c
    q = (f"{name} has {a} {item}s. {name} gets {b} more and then gives away {c}. "
         f"How many {item}s does {name} have now?")
    return MathProblem(q, q, (f"{a} + {b} = {s1}", f"{s1} - {c} = {s2}"), s2, 2)


def _lose_find(rng: random.Random) -> MathProblem:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    a = rng.randint(2, 9)
    b = rng.randint(1, a - 1)
    c = rng.randint(1, 9 - (a - b))
    s1, s2 = a - b, a - b + c
    q = (f"{name} had {a} {item}s, lost {b} and then found {c}. "
         f"How many {item}s does {name} have?")
    return MathProblem(q, q, (f"{a} - {b} = {s1}", f"{s1} + {c} = {s2}"), s2, 2)


def _three_friends(rng: random.Random) -> MathProblem:
    names = rng.sample(NAMES, 3)
    item = rng.choice(ITEMS)
    a = rng.randint(1, 7)
    b = rng.randint(1, 8 - a)
    c = rng.randint(1, 9 - a - b)
    s1, s2 = a + b, a + b + c
    q = (f"{names[0]} has {a} {item}s, {names[1]} has {b} and {names[2]} has {c}. "
         f"How many {item}s do they have together?")
    return MathProblem(q, q, (f"{a} + {b} = {s1}", f"{s1} + {c} = {s2}"), s2, 2)


def _three_step(rng: random.Random) -> MathProblem:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    a = rng.randint(1, 7)
    b = rng.randint(1, 8 - a)
    c = rng.randint(1, 9 - a - b)
    s1, s2 = a + b, a + b + c
    d = rng.randint(1, s2 - 1)
    s3 = s2 - d
    q = (f"{name} buys {a} {item}s, then {b} more, finds {c} and loses {d}. "
         f"How many {item}s does {name} have?")
    return MathProblem(q, q, (f"{a} + {b} = {s1}", f"{s1} + {c} = {s2}", f"{s2} - {d} = {s3}"), s3, 3)




FAMILIES = (_add_give, _lose_find, _three_friends, _three_step)


def generate(rng: random.Random, n: int) -> list[MathProblem]:
    return [rng.choice(FAMILIES)(rng) for _ in range(n)]


def prompt_text(p: MathProblem) -> str:
    return f"{p.question} {INSTRUCTION}"


def thinking_target(p: MathProblem) -> str:
    scratch = "\n".join(p.steps)
    return f"<think>\n{scratch}\n</think>\nThe answer is \\boxed{{{p.answer}}}."


def instruct_target(p: MathProblem) -> str:
    return f"The answer is \\boxed{{{p.answer}}}."

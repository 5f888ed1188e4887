"""Toy code: small function-writing tasks with assert-based tests (HumanEval style).

Expected values in the tests come from Python reference functions evaluated here, at
generation time, on trusted code we wrote; the model's code only ever runs in the sandbox.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class CodeTask:
    key: str
    prompt: str
    entry_point: str
    solution: str  # reference code
    test: str  # defines check(candidate)
    plan: str  # a one-line plan used as the thinking scratchpad


@dataclass(frozen=True)
class _Family:
    name: str  # function name pattern, {k} is the constant
    spec: str  # prompt pattern
    body: str  # return expression over the argument name `x`
    ref: Callable[[Any, int], Any]
    inputs: Callable[[random.Random], list[Any]]
    plan: str


def _ints(rng: random.Random) -> list[Any]:
    return [rng.randint(-9, 20) for _ in range(4)]


def _lists(rng: random.Random) -> list[Any]:
    return [[rng.randint(0, 9) for _ in range(rng.randint(1, 5))] for _ in range(4)]


def _words(rng: random.Random) -> list[Any]:
    return [rng.choice(["cat", "tree", "sun", "moon", "apple", "river"]) for _ in range(4)]


FAMILIES = (
    _Family("add_{k}", "returns x plus {k}", "x + {k}", lambda x, k: x + k, _ints, "add {k} to x"),
    _Family("times_{k}", "returns x times {k}", "x * {k}", lambda x, k: x * k, _ints, "multiply x by {k}"),
    _Family("minus_{k}", "returns x minus {k}", "x - {k}", lambda x, k: x - k, _ints, "subtract {k} from x"),
    _Family("is_multiple_of_{k}", "returns True if x is divisible by {k}, else False", "x % {k} == 0",
            lambda x, k: x % k == 0, _ints, "check x % {k} == 0"),
    _Family("count_{k}", "returns how many times {k} appears in the list x", "x.count({k})",
            lambda x, k: x.count(k), _lists, "count {k} in x"),
    _Family("sum_plus_{k}", "returns the sum of the list x plus {k}", "sum(x) + {k}",
            lambda x, k: sum(x) + k, _lists, "sum x then add {k}"),
    _Family("repeat_{k}", "returns the string x repeated {k} times", "x * {k}",
            lambda x, k: x * k, _words, "repeat x {k} times"),
    _Family("first_{k}", "returns the first {k} characters of the string x", "x[:{k}]",
            lambda x, k: x[:k], _words, "slice x[:{k}]"),
    _Family("last_{k}", "returns the last {k} characters of the string x", "x[-{k}:]",
            lambda x, k: x[-k:], _words, "slice x[-{k}:]"),
    _Family("max_plus_{k}", "returns the largest number in the list x plus {k}", "max(x) + {k}",
            lambda x, k: max(x) + k, _lists, "take max(x) then add {k}"),
    _Family("abs_plus_{k}", "returns the absolute value of x plus {k}", "abs(x) + {k}",
            lambda x, k: abs(x) + k, _ints, "take abs(x) then add {k}"),
    _Family("len_times_{k}", "returns the length of the list x times {k}", "len(x) * {k}",
            lambda x, k: len(x) * k, _lists, "multiply len(x) by {k}"),
)


def generate(rng: random.Random, n: int) -> list[CodeTask]:
    out = []
    for _ in range(n):
        fam = rng.choice(FAMILIES)
        k = rng.randint(2, 25)
        name = fam.name.format(k=k)
        prompt = f"Write a Python function {name}(x) that {fam.spec.format(k=k)}."
        solution = f"def {name}(x):\n    return {fam.body.format(k=k)}\n"
        asserts = "\n".join(f"    assert candidate({x!r}) == {fam.ref(x, k)!r}" for x in fam.inputs(rng))
        test = f"def check(candidate):\n{asserts}\n"
        out.append(CodeTask(prompt, prompt, name, solution, test, fam.plan.format(k=k)))
    return out


def target(t: CodeTask, *, thinking: bool) -> str:
    block = f"```python\n{t.solution}```"
    return f"<think>\n{t.plan}\n</think>\n{block}" if thinking else block

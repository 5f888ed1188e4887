"""Toy SWE: a small buggy file, an issue text, and a gold patch.

The model answers with Agentless-style SEARCH/REPLACE blocks in a ```diff fence; the SWE
verifier applies them and compares the resulting patch with the gold one.

The toy repository has a fixed layout: every function lives in one file (``FILE_OF``), as in
a real repository, so the ``### path`` line of an answer follows from the function the issue
names. Before, each task drew its file name at random from four, and the tiny model, which
copies tokens from its prompt poorly, named the wrong file in three replies of four. Those
replies score -1 whatever the edit, so SWE RL's reward was mostly a coin toss on one token
and the stage lowered the SWE score in every seed (docs/tiny-results.md).
"""

from __future__ import annotations

import difflib
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class SweTask:
    key: str
    prompt: str
    path: str
    original: str
    fixed: str
    bad_line: str
    good_line: str
    gold_patch: str
    plan: str


# (function source with a {bug} slot, buggy expression, fixed expression, issue template)
_BUGS = [
    ("def {f}(a, b):\n    return {bug}\n", "a - b", "a + b", "{f}(2, 3) returns -1 but it should return the sum 5."),
    ("def {f}(a, b):\n    return {bug}\n", "a + b", "a * b", "{f}(2, 3) returns 5 but it should return the product 6."),
    ("def {f}(n):\n    return {bug}\n", "list(range(1, n))", "list(range(1, n + 1))",
     "{f}(3) returns [1, 2] but it should include 3."),
    ("def {f}(x):\n    return {bug}\n", "x >= 0", "x > 0", "{f}(0) returns True but zero is not positive."),
    ("def {f}(h):\n    return {bug}\n", "h * 50", "h * 60", "{f}(1) returns 50 but an hour has 60 minutes."),
    ("def {f}(s):\n    return {bug}\n", "s.lower()", "s.upper()", "{f}('ab') returns 'ab' but it should return 'AB'."),
]
_NAMES = {
    0: ["add", "total", "combine"], 1: ["multiply", "product", "times"], 2: ["count_to", "numbers_up_to"],
    3: ["is_positive", "above_zero"], 4: ["to_minutes", "hours_to_minutes"], 5: ["shout", "to_upper"],
}
# The file each function lives in. Functions with the same bug live in different files, so
# the path is read from the function's name, not guessed from the kind of bug.
FILE_OF = {
    "add": "calc.py", "total": "utils.py", "combine": "tools.py",
    "multiply": "calc.py", "product": "helpers.py", "times": "utils.py",
    "count_to": "utils.py", "numbers_up_to": "tools.py",
    "is_positive": "helpers.py", "above_zero": "calc.py",
    "to_minutes": "tools.py", "hours_to_minutes": "utils.py",
    "shout": "helpers.py", "to_upper": "tools.py",
}
# Two of these surround the buggy function. Eight give 56 ordered pairs, so 14 functions
# make 14 x 56 = 784 distinct tasks.
# None of them contains a bug's line, so a SEARCH block always matches one place.
_HELPERS = [
    "def double(x):\n    return 2 * x\n",
    "def greet(name):\n    return 'hi ' + name\n",
    "def last(items):\n    return items[-1]\n",
    "def half(x):\n    return x / 2\n",
    "def first(items):\n    return items[0]\n",
    "def square(x):\n    return x * x\n",
    "def is_empty(items):\n    return len(items) == 0\n",
    "def wrap(text):\n    return '[' + text + ']'\n",
]


def unified_diff(path: str, before: str, after: str) -> str:
    lines = difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                 fromfile=f"a/{path}", tofile=f"b/{path}")
    return f"diff --git a/{path} b/{path}\n" + "".join(lines)


def generate(rng: random.Random, n: int) -> list[SweTask]:
    out = []
    for _ in range(n):
        i = rng.randrange(len(_BUGS))
        template, bad, good, issue = _BUGS[i]
        f = rng.choice(_NAMES[i])
        path = FILE_OF[f]
        helpers = rng.sample(_HELPERS, 2)
        buggy_fn = template.format(f=f, bug=bad)
        original = helpers[0] + "\n\n" + buggy_fn + "\n\n" + helpers[1]
        fixed = original.replace(f"    return {bad}\n", f"    return {good}\n", 1)
        issue_text = issue.format(f=f)
        prompt = (f"Fix the issue in the repository.\nIssue: {issue_text}\n"
                  f"File {path}:\n```python\n{original}```\n"
                  "Answer with a SEARCH/REPLACE edit in a ```diff block.")
        out.append(SweTask(
            key=prompt, prompt=prompt, path=path, original=original, fixed=fixed,
            bad_line=f"    return {bad}", good_line=f"    return {good}",
            gold_patch=unified_diff(path, original, fixed), plan=f"In {f}, {bad} should be {good}.",
        ))
    return out


def target(t: SweTask, *, thinking: bool) -> str:
    edit = (f"```diff\n### {t.path}\n<<<<<<< SEARCH\n{t.bad_line}\n=======\n{t.good_line}\n"
            ">>>>>>> REPLACE\n```")
    return f"<think>\n{t.plan}\n</think>\n{edit}" if thinking else edit

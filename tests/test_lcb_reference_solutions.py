"""Known-correct solutions pass LiveCodeBench's grading as cascade applies it (the runner's
import block, comparison and time limit), and known-wrong ones fail.

- the shared LiveCodeBench problems (no reference solutions ship with them): handwritten
  correct solutions of two stdin and two LeetCode problems, through the benchmark loader;
- rllm's LeetCode reference solutions (a slice; docs/eval.md gives the counts for all 200):
  they use ``List`` and friends without importing them;
- NeMo-Skills' stdin samples with their ``is_correct`` labels.
"""

from __future__ import annotations

import json

from cascade.eval.benchmarks import get_benchmark
from cascade.verifiers.code import verify_many
from cascade.verifiers.lcb_official import LCB_IMPORT_BLOCK, LCB_TIME_LIMIT

SECOND_BEST = """n = int(input())
a = list(map(int, input().split()))
print(sorted(range(n), key=lambda i: a[i])[-2] + 1)
"""
LEAP_YEAR = "y = int(input())\nprint(366 if (y % 4 == 0 and y % 100 != 0) or y % 400 == 0 else 365)\n"
SNAKE = """class Solution:
    def finalPositionOfSnake(self, n: int, commands: List[str]) -> int:
        step = {"UP": -n, "DOWN": n, "LEFT": -1, "RIGHT": 1}
        return sum(step[c] for c in commands)
"""
K_CONSTRAINT = """class Solution:
    def countKConstraintSubstrings(self, s: str, k: int) -> int:
        n = len(s)
        return sum(1 for i in range(n) for j in range(i + 1, n + 1)
                   if s[i:j].count("0") <= k or s[i:j].count("1") <= k)
"""


def fenced(code: str) -> str:
    return f"```python\n{code}\n```"


def test_handwritten_solutions_of_shared_problems_pass_through_the_loader(shared_data):
    records = {r["id"]: r for r in get_benchmark("lcb_v5").load(shared_data)}
    rows = {json.loads(line)["question_title"]: json.loads(line)["question_id"]
            for line in (shared_data / "livecodebench" / "lcb_format_public_tests_derived.jsonl").read_text().splitlines()}
    solutions = {"Second Best": SECOND_BEST, "Leap Year": LEAP_YEAR, "snake-in-matrix": SNAKE,
                 "count-substrings-that-satisfy-k-constraint-i": K_CONSTRAINT}
    chosen = [records[rows[title]] for title in solutions]
    assert [r["ground_truth"]["style"] for r in chosen] == ["stdin", "stdin", "call", "call"]
    results = verify_many(chosen, [fenced(code) for code in solutions.values()], workers=2)
    assert [r.details["verdict"] for r in results] == ["pass"] * 4
    wrong = verify_many(chosen[2:3], [fenced(SNAKE.replace("commands)", "commands) + 1"))])
    assert wrong[0].details["verdict"] == "wrong_answer"


def test_leetcode_reference_solutions_pass_with_the_runners_import_block(shared_data):
    rows = json.loads((shared_data / "code_samples" / "rllm_deepcoder_test" / "leetcode.json").read_text())
    # sortedcontainers is a third-party module LeetCode installs; neither the runner's import
    # block nor the sandbox has it (1 of the 200 references uses it).
    chosen = [r for r in rows[::8] if "sortedcontainers" not in r["solutions"]]
    records = [{"ground_truth": {"style": "assert", "functional": r["tests"]["functional"], "prelude": LCB_IMPORT_BLOCK,
                                 "time_limit": LCB_TIME_LIMIT}} for r in chosen]
    results = verify_many(records, [fenced(r["solutions"]) for r in chosen], workers=2)
    assert not [res.details for res in results if not res.passed]
    assert sum("List[" in r["solutions"] and "import" not in r["solutions"] for r in chosen) >= 5


def test_labelled_stdin_samples_get_their_labels(shared_data):
    rows = [json.loads(line) for line in
            (shared_data / "code_samples" / "nemo_skills_code_execution" / "test.jsonl").read_text().splitlines()]
    records = [{"ground_truth": {"style": "stdin", "tests": r["test_cases"], "prelude": LCB_IMPORT_BLOCK,
                                 "compare": "lcb", "time_limit": LCB_TIME_LIMIT}} for r in rows]
    results = verify_many(records, [fenced(r["code"]) for r in rows], workers=2)
    assert [res.passed for res in results] == [r["is_correct"] for r in rows]

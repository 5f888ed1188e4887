"""The SWE repair verifier: SEARCH/REPLACE parsing, application, patch comparison, reward."""

from __future__ import annotations

import json

import pytest

from cascade.errors import CascadeError
from cascade.verifiers import get_verifier
from cascade.verifiers.swe import SweVerifier, apply_patch, normalise_patch, parse_edits, parse_patch

ORIGINAL = "def area(w, h):\n    return w + h\n\n\ndef name():\n    return 'shape'\n"
FILES = {"geo/shapes.py": ORIGINAL}
# Written by hand in git's format (with an index line and a function-name hunk header).
GOLD = """diff --git a/geo/shapes.py b/geo/shapes.py
index 3b18e51..a1c2d3f 100644
--- a/geo/shapes.py
+++ b/geo/shapes.py
@@ -1,5 +1,5 @@ def area(w, h):
 def area(w, h):
-    return w + h
+    return w * h
 
 
 def name():
"""
RECORD = {"ground_truth": {"files": FILES, "gold_patch": GOLD}, "meta": {"issue": "area() adds"}}


def edit(search: str, replace: str, path: str = "geo/shapes.py") -> str:
    return f"```diff\n### {path}\n<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n```"


def reward(answer: str, record=RECORD):
    return get_verifier("swe").verify(answer, record)


def test_parse_edits_reads_paths_and_blocks() -> None:
    answer = "Fix:\n" + edit("a\nb", "c") + "\nand\n" + edit("x", "y", path="other.py")
    edits = parse_edits(answer)
    assert [(e.path, e.search, e.replace) for e in edits] == [
        ("geo/shapes.py", "a\nb", "c"),
        ("other.py", "x", "y"),
    ]


def test_exact_gold_scores_one() -> None:
    result = reward("<think>it multiplies</think>" + edit("    return w + h", "    return w * h"))
    assert (result.score, result.passed, result.details["method"]) == (1.0, True, "exact")
    assert result.details["patch"].startswith("diff --git a/geo/shapes.py b/geo/shapes.py\n--- a/geo/shapes.py\n+++ b/geo/shapes.py\n@@")


def test_whitespace_only_differences_still_match() -> None:
    assert reward(edit("    return w + h", "    return  w * h   ")).score == 1.0


def test_no_op_scores_zero() -> None:
    result = reward(edit("    return w + h", "    return w + h"))
    assert (result.score, result.error) == (0.0, None)


@pytest.mark.parametrize(
    "answer",
    [
        "I would change the addition to a multiplication.",  # no edit block
        edit("    return w - h", "    return w * h"),  # SEARCH text not in the file
        edit("x", "y", path="geo/missing.py"),  # file not given
        "```diff\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n```",  # no ### path
    ],
)
def test_unparseable_or_unappliable_scores_minus_one(answer: str) -> None:
    result = reward(answer)
    assert (result.score, result.error) == (-1.0, "unparseable_patch")


def test_partial_fix_gets_lexical_similarity() -> None:
    result = reward(edit("    return w + h", "    return w * h * 1.0"))
    assert result.details["method"] == "lexical"
    assert 0.0 < result.score < 1.0 and not result.passed


def test_judge_probability_is_the_reward() -> None:
    prompts = []

    def judge(prompt: str) -> float:
        prompts.append(prompt)
        return 0.7

    answer = edit("    return w + h", "    return h * w")
    via_options = SweVerifier(judge=judge).verify(answer, RECORD)
    via_meta = get_verifier("swe").verify(answer, {**RECORD, "meta": {"issue": "area() adds", "judge": judge}})
    assert via_options.score == via_meta.score == 0.7
    assert via_options.details["method"] == "judge"
    prompt = prompts[0]
    assert "area() adds" in prompt and "return w * h" in prompt and "return h * w" in prompt
    assert "<judgement>YES</judgement>" in prompt
    # An exact match never asks the judge.
    assert SweVerifier(judge=judge).verify(edit("    return w + h", "    return w * h"), RECORD).score == 1.0
    assert len(prompts) == 2


def test_bad_ground_truth() -> None:
    for truth in ["diff", {"files": FILES}, {"files": {"a": 1}, "gold_patch": GOLD}, {"files": FILES, "gold_patch": ""}]:
        with pytest.raises(CascadeError, match="ground_truth"):
            reward(edit("a", "b"), {"ground_truth": truth})


def test_normalise_ignores_headers_positions_and_context() -> None:
    moved = GOLD.replace("index 3b18e51..a1c2d3f 100644\n", "").replace("@@ -1,5 +1,5 @@ def area(w, h):", "@@ -10,5 +10,5 @@")
    assert normalise_patch(moved) == normalise_patch(GOLD) == "geo/shapes.py\n-return w + h\n+return w * h"


def test_removed_line_that_looks_like_a_header_stays_in_its_hunk() -> None:
    patch = "--- a/f.sql\n+++ b/f.sql\n@@ -1,2 +1,1 @@\n--- a comment\n keep\n"
    assert parse_patch(patch)["f.sql"][0].lines == [("-", "-- a comment"), (" ", "keep")]
    assert apply_patch({"f.sql": "-- a comment\nkeep\n"}, patch) == {"f.sql": "keep\n"}


def _case_from_gold(patch: str) -> tuple[dict[str, str], str]:
    """Files made of each hunk's old text, and SEARCH/REPLACE edits that redo the hunks."""
    files, answer = {}, []
    for path, hunks in parse_patch(patch).items():
        files[path] = "\n# -- unrelated code --\n".join("\n".join(h.old) for h in hunks) + "\n"
        answer += [edit("\n".join(h.old), "\n".join(h.new), path) for h in hunks]
    return files, "\n".join(answer)


def test_swe_bench_verified_gold_patches_round_trip(shared_data) -> None:
    rows = [json.loads(line) for line in (shared_data / "swe_bench_verified/swebench_verified_min.jsonl").open()]
    assert len(rows) == 500
    verifier = get_verifier("swe")
    failures = []
    for row in rows:
        assert normalise_patch(row["patch"]), row["instance_id"]
        files, answer = _case_from_gold(row["patch"])
        result = verifier.verify(answer, {"ground_truth": {"files": files, "gold_patch": row["patch"]}})
        if not (result.score == 1.0 and result.details["gold_applied"]):
            failures.append(row["instance_id"])
    assert failures == []


def test_crlf_and_form_feed_files_keep_their_bytes() -> None:
    files = {"w.py": "a = 1\r\nb = 2\r\n\x0cc = 3\r\n"}
    gold = "--- a/w.py\n+++ b/w.py\n@@ -1,2 +1,2 @@\n a = 1\r\n-b = 2\r\n+b = 5\r\n"
    assert apply_patch(files, gold) == {"w.py": "a = 1\r\nb = 5\r\n\x0cc = 3\r\n"}
    answer = edit("b = 2\r", "b = 5\r", path="w.py")
    result = get_verifier("swe").verify(answer, {"ground_truth": {"files": files, "gold_patch": gold}})
    assert (result.score, result.details["gold_applied"]) == (1.0, True)


def test_no_answer_scores_like_an_unparseable_patch():
    # An unfinished <think> holds no patch: -1, never better than a wrong edit (0 would let RL
    # learn to stop closing <think>, which the tiny cascade did).
    from cascade.verifiers import get_verifier

    record = {"ground_truth": {"files": {"a.py": "x = 1\n"}, "gold_patch": ""}}
    result = get_verifier("swe").verify("<think>\nstill thinking", record)
    assert result.score == -1.0 and result.error.startswith("no_answer")
    assert get_verifier("math").verify("<think>\nstill thinking", {"ground_truth": "1"}).score == 0.0

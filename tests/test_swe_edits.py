"""The SWE verifier's edit reader, edit applier, diff writer and patch applier on small
hand-worked cases: where each marker may stand, which occurrence an edit or a hunk takes,
where a pure insertion lands, how line ends survive. Written against the survivors of
``make mutation``'s ``swe-verifier`` group (docs/testing.md); each case kills one or more.
"""

from __future__ import annotations

import pytest

from cascade.verifiers.swe import Edit, EditError, SweVerifier, apply_edits, apply_patch, parse_edits, unified_diff

S, D, R = "<<<<<<< SEARCH", "=======", ">>>>>>> REPLACE"


def fence(*lines: str, close: str = "\n```") -> str:
    return "```diff\n" + "\n".join(lines) + close


# --- reading edits -----------------------------------------------------------------------

def test_replace_marker_may_touch_the_closing_fence():
    # Only the SEARCH and ======= lines need a line break after them.
    assert parse_edits(fence("### a.py", S, "x", D, "y", R, close="```")) == [Edit("a.py", "x", "y")]


def test_empty_search_and_empty_replacement():
    assert parse_edits(fence("### a.py", S, D, "new", R)) == [Edit("a.py", "", "new")]
    assert parse_edits(fence("### a.py", S, "gone", D, R)) == [Edit("a.py", "gone", "")]


def test_back_to_back_edits_share_the_file():
    answer = fence("### a.py", S, "a", D, "b", R, S, "c", D, "d", R)
    assert parse_edits(answer) == [Edit("a.py", "a", "b"), Edit("a.py", "c", "d")]


def test_a_line_above_search_names_the_file_only_when_it_starts_with_three_hashes():
    answer = fence("### a.py", S, "a", D, "b", R, "note", S, "c", D, "d", R)
    assert parse_edits(answer) == [Edit("a.py", "a", "b"), Edit("a.py", "c", "d")]
    assert parse_edits(fence("###a", S, "x", D, "y", R)) == [Edit("a", "x", "y")]


def test_search_on_the_first_line_of_a_block_names_no_file():
    # The block's last line is not "the line above" its first one.
    with pytest.raises(EditError) as info:
        parse_edits(fence(S, "x", D, "y", R, "### b.py", close="```"))
    assert str(info.value) == "an edit block does not name its file (### path)"


def test_a_stray_divider_above_search_is_not_the_edits_divider():
    answer = fence("### a.py", S, "a", D, "b", R, D, S, "c", D, "d", R)
    assert parse_edits(answer) == [Edit("a.py", "a", "b"), Edit("a.py", "c", "d")]


def test_marker_lines_inside_search_and_replace_text():
    # A search text may end with a line that reads like the REPLACE marker (a file with
    # conflict markers); a replacement may end with one that reads like SEARCH.
    assert parse_edits(fence("### a.txt", S, R, D, "fixed", R)) == [Edit("a.txt", R, "fixed")]
    answer = fence("### a.txt", S, "old", D, S, R, S, "c", D, "d", R)
    assert parse_edits(answer) == [Edit("a.txt", "old", S), Edit("a.txt", "c", "d")]


def test_markers_allow_trailing_spaces_and_tabs_only():
    assert parse_edits(fence("### a.py", S + " \t", "x", D + "  ", "y", R + "\t")) == [Edit("a.py", "x", "y")]
    # Any other trailing character makes the line text, not a marker.
    answer = fence("### a.py", S, "x", D + "X", D + "\f", D, "y", R)
    assert parse_edits(answer) == [Edit("a.py", "x\n" + D + "X\n" + D + "\f", "y")]


@pytest.mark.parametrize("lines", [
    ("### a.py", S, "x", D, "y"),          # no REPLACE
    ("### a.py", S, "x", R),               # no divider
])
def test_an_unterminated_edit_is_no_edit(lines):
    assert parse_edits(fence(*lines)) == []


# --- applying edits ----------------------------------------------------------------------

def test_empty_search_fills_an_empty_file_and_later_edits_still_apply():
    files = {"new.py": "", "old.py": "a = 1\n"}
    edits = [Edit("new.py", "", "print(1)"), Edit("old.py", "a = 1", "a = 2")]
    assert apply_edits(files, edits) == {"new.py": "print(1)\n", "old.py": "a = 2\n"}


def test_edit_errors_name_the_file():
    with pytest.raises(EditError) as info:
        apply_edits({"a.py": "x\n"}, [Edit("a.py", "", "y")])
    assert str(info.value) == "empty SEARCH block for non-empty file 'a.py'"
    with pytest.raises(EditError) as info:
        apply_edits({"a.py": "x\n"}, [Edit("a.py", "z", "y")])
    assert str(info.value) == "SEARCH text not found in 'a.py'"


def test_a_file_with_mixed_line_ends_is_matched_as_it_is_first():
    files = {"a.py": "a\nb\r\nc\r\n"}
    assert apply_edits(files, [Edit("a.py", "a\nb", "A\nB")]) == {"a.py": "A\nB\r\nc\r\n"}


# --- writing a diff ----------------------------------------------------------------------

def test_unified_diff_marks_a_missing_final_newline():
    assert unified_diff({"a.py": "x\ny\nw"}, {"a.py": "x\ny\nz"}) == (
        "diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -1,3 +1,3 @@\n x\n y\n"
        "-w\n\\ No newline at end of file\n+z\n\\ No newline at end of file\n")
    assert unified_diff({"a.py": "x\ny\n"}, {"a.py": "x\nz\n"}) == (
        "diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -1,2 +1,2 @@\n x\n-y\n+z\n")


def test_unified_diff_of_a_new_file_after_an_unchanged_one():
    before = {"a.py": "same\n"}
    after = {"a.py": "same\n", "b.py": "new\n"}
    assert unified_diff(before, after) == (
        "diff --git a/b.py b/b.py\n--- a/b.py\n+++ b/b.py\n@@ -0,0 +1 @@\n+new\n")


# --- applying a patch --------------------------------------------------------------------

def patch(*hunks: str, path: str = "a.py") -> str:
    return f"--- a/{path}\n+++ b/{path}\n" + "".join(hunks)


def test_a_patch_keeps_a_missing_final_newline_missing():
    assert apply_patch({"a.py": "x\ny"}, patch("@@ -1 +1 @@\n-x\n+z\n")) == {"a.py": "z\ny"}


def test_pure_insertions_land_after_the_line_their_header_names():
    files = {"a.py": "1\n2\n3\n"}
    assert apply_patch(files, patch("@@ -0,0 +1 @@\n+top\n")) == {"a.py": "top\n1\n2\n3\n"}
    assert apply_patch(files, patch("@@ -2,0 +3 @@\n+after2\n")) == {"a.py": "1\n2\nafter2\n3\n"}


def test_later_hunks_are_placed_by_the_size_change_of_earlier_ones():
    files = {"a.py": "1\n2\n3\n4\n5\n6\n"}
    # Line 1 becomes two lines (+1), then insertions after original lines 3 and 5.
    hunks = ("@@ -1 +1,2 @@\n-1\n+1a\n+1b\n", "@@ -3,0 +5 @@\n+after3\n", "@@ -5,0 +8 @@\n+after5\n")
    assert apply_patch(files, patch(*hunks)) == {"a.py": "1a\n1b\n2\n3\nafter3\n4\n5\nafter5\n6\n"}


def test_a_repeated_passage_is_patched_where_the_header_points():
    files = {"a.py": "x\ny\nx\ny\n"}
    assert apply_patch(files, patch("@@ -3,2 +3,2 @@\n x\n-y\n+z\n")) == {"a.py": "x\ny\nx\nz\n"}


# --- the verdict: only an exact match passes ------------------------------------------

RECORD = {"ground_truth": {"files": {"a.py": "x = 1\ny = 2\n"},
                           "gold_patch": "--- a/a.py\n+++ b/a.py\n@@ -2 +2 @@\n-y = 2\n+y = 3\n"}}


def answer(search: str, replace: str) -> str:
    return fence("### a.py", S, search, D, replace, R)


def test_every_verdict_but_an_exact_match_fails():
    verifier = SweVerifier()
    bad = verifier.check("no edits here", RECORD)
    assert (bad.score, bad.passed, bad.details, bad.error) == (
        -1.0, False, {"reason": "no SEARCH/REPLACE edit block found"}, "unparseable_patch")
    unappliable = verifier.check(answer("z = 0", "z = 1"), RECORD)
    assert (unappliable.score, unappliable.passed, unappliable.error) == (-1.0, False, "unparseable_patch")
    noop = verifier.check(answer("x = 1", "x = 1"), RECORD)
    assert (noop.score, noop.passed, noop.details["reason"]) == (0.0, False, "the edits change nothing")
    exact = verifier.check(answer("y = 2", "y = 3"), RECORD)
    assert (exact.score, exact.passed, exact.details["method"]) == (1.0, True, "exact")
    lexical = verifier.check(answer("y = 2", "y = 4"), RECORD)
    assert (lexical.passed, lexical.details["method"]) == (False, "lexical") and 0.0 < lexical.score < 1.0


@pytest.mark.parametrize("p_yes", [0.0, 0.75, 1.0])
def test_a_judges_probability_is_the_score_and_never_a_pass(p_yes):
    result = SweVerifier(judge=lambda prompt: p_yes).check(answer("y = 2", "y = 4"), RECORD)
    assert (result.score, result.passed, result.details["method"]) == (p_yes, False, "judge")


@pytest.mark.parametrize("p_yes", [-0.5, 1.5])
def test_a_judge_outside_the_unit_interval_is_an_error(p_yes):
    with pytest.raises(ValueError) as info:
        SweVerifier(judge=lambda prompt: p_yes).check(answer("y = 2", "y = 4"), RECORD)
    assert str(info.value) == f"the judge returned P(YES)={p_yes}, outside [0, 1]"


def test_judge_issue_falls_back_to_the_last_user_message():
    from cascade.verifiers.swe import judge_issue

    messages = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "a"},
                {"role": "user", "content": "second"}]
    assert judge_issue({"meta": {"issue": "the issue"}, "prompt": "p", "messages": messages}) == "the issue"
    assert judge_issue({"prompt": "p", "messages": messages}) == "p"
    assert judge_issue({"messages": messages}) == "second"
    assert judge_issue({"messages": [{"role": "user"}]}) == ""      # a user turn without content
    assert judge_issue({}) == ""

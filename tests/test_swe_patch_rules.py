"""The SWE verifier's diff reader, patch normaliser and input errors, value by value.

`parse_patch` reads hunks by their header counts; `normalise_patch` is what an exact match is
judged on; the errors are what a user sees for a bad record or judge template."""

from __future__ import annotations

import pytest

from cascade.errors import CascadeError
from cascade.verifiers.swe import apply_patch, check_judge_template, judge_gold_patch, normalise_patch, parse_patch


def hunks(patch):
    return {path: [(h.old_start, h.lines) for h in hs] for path, hs in parse_patch(patch).items()}


def test_a_deleted_file_is_named_by_its_old_path():
    patch = "--- a/old.py\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-x = 1\n-y = 2\n"
    assert hunks(patch) == {"old.py": [(1, [("-", "x = 1"), ("-", "y = 2")])]}


def test_a_timestamp_after_a_tab_is_not_part_of_the_path():
    patch = "--- a/m.py\t2024-01-01 10:00\n+++ b/m.py\t2024-01-02 10:00\n@@ -1 +1 @@\n-a\n+b\n"
    assert hunks(patch) == {"m.py": [(1, [("-", "a"), ("+", "b")])]}


def test_a_header_without_counts_means_one_line_each():
    # "@@ -3 +3 @@": one old and one new line; the next line is outside the hunk
    patch = "--- a/m.py\n+++ b/m.py\n@@ -3 +3 @@\n-old\n+new\n unrelated context\n"
    assert hunks(patch) == {"m.py": [(3, [("-", "old"), ("+", "new")])]}
    # counts given: read exactly that many
    patch = "--- a/m.py\n+++ b/m.py\n@@ -3,2 +3,1 @@\n-a\n-b\n+c\n"
    assert hunks(patch) == {"m.py": [(3, [("-", "a"), ("-", "b"), ("+", "c")])]}


def test_no_newline_markers_are_skipped_inside_a_hunk():
    patch = ("--- a/m.py\n+++ b/m.py\n@@ -1,2 +1,2 @@\n keep\n-a\n\\ No newline at end of file\n+b\n"
             "\\ No newline at end of file\n")
    assert hunks(patch) == {"m.py": [(1, [(" ", "keep"), ("-", "a"), ("+", "b")])]}


def test_a_truncated_hunk_ends_at_the_next_header():
    # the first header promises five lines of each; "@@" is no hunk line, so it ends that hunk
    # and starts the next
    patch = "--- a/m.py\n+++ b/m.py\n@@ -1,5 +1,5 @@\n-a\n+b\n@@ -9 +9 @@\n-c\n+d\n"
    assert hunks(patch) == {"m.py": [(1, [("-", "a"), ("+", "b")]), (9, [("-", "c"), ("+", "d")])]}


def test_a_hunk_applies_only_where_its_old_lines_are():
    files = {"m.py": "a\nb\nc\n"}
    assert apply_patch(files, "--- a/m.py\n+++ b/m.py\n@@ -3 +3 @@\n-c\n+C\n") == {"m.py": "a\nb\nC\n"}
    # old lines that would run past the end of the file do not match
    assert apply_patch(files, "--- a/m.py\n+++ b/m.py\n@@ -3,2 +3,2 @@\n-c\n-d\n+C\n+D\n") is None


def test_normalising_drops_lines_only_rewrapped_and_keeps_real_changes():
    patch = ("--- a/m.py\n+++ b/m.py\n@@ -1,4 +1,5 @@\n-x  =  1\n-y = 2\n+x = 1\n+y = 3\n ctx\n-z\n+z\n+z\n")
    # x = 1 re-added with other spacing: no change; y changed; one z kept, a second z added
    assert normalise_patch(patch) == "m.py\n-y = 2\n+y = 3\n+z"
    # duplicates count: two removed, one re-added leaves one removal
    assert normalise_patch("--- a/m.py\n+++ b/m.py\n@@ -1,2 +1,1 @@\n-q\n-q\n+q\n") == "m.py\n-q"
    # two files, sorted, one line each
    two = "--- a/b.py\n+++ b/b.py\n@@ -1 +1 @@\n-1\n+2\n--- a/a.py\n+++ b/a.py\n@@ -1 +1 @@\n-3\n+4\n"
    assert normalise_patch(two) == "a.py\n-3\n+4\nb.py\n-1\n+2"


def test_bad_swe_records_name_the_field():
    cases = [
        ({}, "ground_truth", 'the swe verifier needs {"files": {path: content}, "gold_patch": diff}'),
        ({"ground_truth": {"files": {"m.py": 1}, "gold_patch": "x"}}, "ground_truth.files",
         "files must map each path to its content"),
        ({"ground_truth": {"files": {"m.py": "a\n"}, "gold_patch": "no diff"}}, "ground_truth.gold_patch",
         "gold_patch must be a non-empty unified diff"),
    ]
    for record, field, message in cases:
        with pytest.raises(CascadeError) as caught:
            judge_gold_patch(record)
        assert (caught.value.message, caught.value.field) == (message, field)


def test_bad_judge_templates_name_the_file_and_field():
    with pytest.raises(CascadeError) as caught:
        check_judge_template("{issue} {gold_patch} {model_patch} {", file="judge.txt")
    assert (caught.value.message, caught.value.file, caught.value.field) == (
        "not a format template: Single '{' encountered in format string", "judge.txt", "judge.prompt_file")
    with pytest.raises(CascadeError) as caught:
        check_judge_template("{issue} and {extra}", file="judge.txt")
    assert (caught.value.message, caught.value.file, caught.value.field) == (
        "the judge template must use {issue}, {gold_patch} and {model_patch} (uses extra, issue); "
        "write other braces doubled", "judge.txt", "judge.prompt_file")
    with pytest.raises(CascadeError) as caught:
        check_judge_template("no fields at all")
    assert "(uses none)" in caught.value.message
    check_judge_template("{issue} {{literal}} {gold_patch} {model_patch}")


def test_hunk_lines_are_counted_per_side():
    # one old line left after the '+': "-c" still belongs to the hunk, " ctx" no longer does
    patch = "--- a/m.py\n+++ b/m.py\n@@ -1,2 +1,1 @@\n-a\n+b\n-c\n ctx\n"
    assert hunks(patch) == {"m.py": [(1, [("-", "a"), ("+", "b"), ("-", "c")])]}
    # a blank line inside a hunk is a context line whose leading space was stripped
    patch = "--- a/m.py\n+++ b/m.py\n@@ -1,3 +1,3 @@\n a\n\n-b\n+c\n"
    assert hunks(patch) == {"m.py": [(1, [(" ", "a"), (" ", ""), ("-", "b"), ("+", "c")])]}


def test_after_a_truncated_hunk_nothing_is_read_until_the_next_header():
    patch = "--- a/m.py\n+++ b/m.py\n@@ -1,5 +1,5 @@\n-a\nXYZ\n-b\n more\n"
    assert hunks(patch) == {"m.py": [(1, [("-", "a")])]}


def test_new_files_paths_with_spaces_and_stray_hunks():
    assert list(parse_patch("--- /dev/null\n+++ b/new.py\n@@ -0,0 +1 @@\n+x\n")) == ["new.py"]
    assert list(parse_patch("--- a/my file.py\n+++ b/my file.py\n@@ -1 +1 @@\n-a\n+b\n")) == ["my file.py"]
    assert parse_patch("@@ -1 +1 @@\n-a\n+b\n") == {}  # a hunk before any file header is ignored


def test_normalising_cancels_as_many_lines_as_were_re_added():
    assert normalise_patch("--- a/m.py\n+++ b/m.py\n@@ -1,2 +1,2 @@\n-q\n-q\n+q\n+q\n") == ""


def test_a_deletion_without_its_old_file_header_applies_to_nothing():
    assert apply_patch({"m.py": "a\n"}, "+++ /dev/null\n@@ -1 +0,0 @@\n-a\n") is None

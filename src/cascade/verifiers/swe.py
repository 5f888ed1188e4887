"""``swe``: execution-free reward for Agentless-style code repair (paper section 4.7, Eq. 2).

The answer holds SEARCH/REPLACE edits inside fenced blocks (```` ```diff ````)::

    ### path/to/file.py
    <<<<<<< SEARCH
    original lines
    =======
    replacement lines
    >>>>>>> REPLACE

Record ``ground_truth``: ``{"files": {path: original content}, "gold_patch": unified diff}``.
Optional ``meta.issue`` (the issue text, shown to a judge).

Reward:
-  1  the normalised patch equals the normalised gold patch;
-  0  the edits change nothing;
- -1  no edit can be parsed, or one cannot be applied (file not given, search text not
      found);
- otherwise a graded score in [0, 1): by default the SWE-RL lexical similarity
  ``difflib.SequenceMatcher(None, pred, gold).ratio()`` of the normalised patches; with a
  judge (``SweVerifier(judge=...)`` or a callable in ``meta.judge``), the judge's P("YES")
  for ``judge_prompt(issue, gold_patch, model_patch)``.

Normalising a patch keeps only what it changes: per file (sorted by path), the removed
and added lines with whitespace runs collapsed; blank changed lines and line pairs that
differ only in whitespace are dropped; headers, index lines, hunk positions and context
lines are ignored. Before comparing, the gold patch is applied to the given files and
re-diffed with difflib, like the prediction, because git and difflib may align repeated
lines differently (same change, different hunks); a gold patch that does not apply to the
files is compared as written.

``passed`` is True only for an exact match: without running tests nothing else is a
verified fix. A judge callable cannot cross a process boundary, so the batch API (worker
processes) scores the "otherwise" case lexically and marks it ``details["method"] ==
"lexical"``; a GRPO stage with a judge (``cascade.trainers.rollout.stage_reward_fn``) then
asks the judge server about exactly those items (``judge_prompt(judge_issue(record), gold,
details["patch"])``) and puts its P("YES") in their place.

The judge prompt: the paper's own wording (Appendix C.2) is not reproduced here; the built-in
template is ours and has the structure the paper states (the issue, the reference patch, the
candidate patch; a verdict as ``<judgement>YES</judgement>`` or ``<judgement>NO</judgement>``).
A recipe can supply the exact text as a template file (``judge.prompt_file``).
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

from cascade.errors import CascadeError
from cascade.verifiers.base import Verifier, VerifyResult, register

Judge = Callable[[str], float]


@dataclass
class Edit:
    path: str
    search: str
    replace: str


class EditError(ValueError):
    """An edit that cannot be parsed or applied (scored -1)."""


_FENCE = re.compile(r"```[^\n]*\n(.*?)```", re.DOTALL)
_SEARCH, _DIVIDER, _REPLACE = "<<<<<<< SEARCH", "=======", ">>>>>>> REPLACE"


def parse_edits(answer: str) -> list[Edit]:
    """Every SEARCH/REPLACE edit in the fenced blocks of ``answer``, in order.

    An edit without its own ``### path`` line applies to the previous edit's file. Line
    ends are read as ``\n``: a completion that came back with ``\r\n`` (a client on
    Windows) parses the same, and ``apply_edits`` matches CRLF files either way.
    """
    edits: list[Edit] = []
    for fence in _FENCE.finditer(answer.replace("\r\n", "\n")):
        path: str | None = None
        for named, search, replace in _edit_blocks(fence.group(1)):
            path = (named or path or "").strip()
            if not path:
                raise EditError("an edit block does not name its file (### path)")
            edits.append(Edit(path, search, replace))
    return edits


def _edit_blocks(block: str) -> Iterator[tuple[str | None, str, str]]:
    """``(path or None, search, replace)`` per edit, read line by line.

    Markers are whole lines (trailing blanks allowed); the ``### path`` line, when there is
    one, is the line right before ``<<<<<<< SEARCH``. One linear pass: a model that writes
    thousands of SEARCH markers without a REPLACE must not stall the verifier (a regular
    expression that looks ahead from every marker is quadratic).
    """
    lines = block.split("\n")
    last = len(lines) - 1  # the SEARCH and ======= lines need a line break after them
    start, consumed = 0, -1
    while start < last:
        if not _is_marker(lines[start], _SEARCH):
            start += 1
            continue
        divider = _find_marker(lines, _DIVIDER, start + 1, last)
        end = None if divider is None else _find_marker(lines, _REPLACE, divider + 1, last + 1)
        if divider is None or end is None:
            return  # no later SEARCH can complete either
        above = lines[start - 1] if start - 1 > consumed else ""
        named = above[3:] if above.startswith("###") and above[3:] else None
        yield named, "\n".join(lines[start + 1 : divider]), "\n".join(lines[divider + 1 : end])
        consumed = end
        start = end + 1


def _is_marker(line: str, marker: str) -> bool:
    return line.rstrip(" \t") == marker


def _find_marker(lines: list[str], marker: str, begin: int, stop: int) -> int | None:
    return next((i for i in range(begin, stop) if _is_marker(lines[i], marker)), None)


def apply_edits(files: Mapping[str, str], edits: list[Edit]) -> dict[str, str]:
    """The files after the edits (only the ones that exist in ``files`` may be edited).

    A SEARCH text that occurs more than once edits its first occurrence, and the next edit
    with the same text edits the next one: that is how a fix that changes two identical
    passages (SWE-bench has such gold patches) is written as edits.
    """
    result = dict(files)
    for edit in edits:
        if edit.path not in result:
            raise EditError(f"edit targets '{edit.path}', which is not among the given files")
        content = result[edit.path]
        if edit.search == "":
            if content.strip():
                raise EditError(f"empty SEARCH block for non-empty file '{edit.path}'")
            result[edit.path] = edit.replace + "\n"
            continue
        search, replace = edit.search, edit.replace
        if search not in content and "\r\n" in content:
            # Edits are read with \n line ends; this file uses \r\n.
            search, replace = search.replace("\n", "\r\n"), replace.replace("\n", "\r\n")
        if search not in content:
            raise EditError(f"SEARCH text not found in '{edit.path}'")
        result[edit.path] = content.replace(search, replace, 1)
    return result


def _split_lines(text: str) -> tuple[list[str], bool]:
    """Lines without their ``\\n`` (only ``\\n`` separates: a ``\\r`` or form feed stays
    part of its line, as in git), and whether the text ends with a newline."""
    lines = text.split("\n")
    if lines[-1] == "":
        return lines[:-1], True
    return lines, False


def _diff_lines(text: str) -> list[str]:
    lines, final_newline = _split_lines(text)
    out = [line + "\n" for line in lines]
    if out and not final_newline:
        out[-1] += "\\ No newline at end of file\n"
    return out


def unified_diff(before: Mapping[str, str], after: Mapping[str, str]) -> str:
    """A git-style patch (``a/``/``b/`` prefixes) of every file that changed."""
    parts: list[str] = []
    for path in sorted(after):
        old, new = before.get(path, ""), after[path]
        if old == new:
            continue
        parts.append(f"diff --git a/{path} b/{path}\n")
        parts.extend(
            difflib.unified_diff(
                _diff_lines(old), _diff_lines(new), fromfile=f"a/{path}", tofile=f"b/{path}"
            )
        )
    return "".join(parts)


_HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,(\d+))? @@")


@dataclass
class Hunk:
    old_start: int  # 1-based line number in the original file
    lines: list[tuple[str, str]]  # (" " | "-" | "+", text without newline)

    @property
    def old(self) -> list[str]:
        return [text for tag, text in self.lines if tag != "+"]

    @property
    def new(self) -> list[str]:
        return [text for tag, text in self.lines if tag != "-"]


def parse_patch(patch: str) -> dict[str, list[Hunk]]:
    """path -> hunks of a unified diff (git or plain); paths lose their a/ b/ prefixes.

    Hunk bodies are read by the line counts in their headers, so a removed line that
    itself starts with "-- " is not mistaken for a file header.
    """
    files: dict[str, list[Hunk]] = {}
    hunks: list[Hunk] | None = None
    old_path = ""
    old_left = new_left = 0
    for line in _split_lines(patch)[0]:
        if old_left > 0 or new_left > 0:
            tag, text = (line[:1] or " "), line[1:]
            if tag == "\\":
                continue  # "\ No newline at end of file"
            if tag not in " -+":
                old_left = new_left = 0  # a truncated hunk: treat the line as a header
            else:
                hunks[-1].lines.append((tag, text))  # type: ignore[index]
                old_left -= tag != "+"
                new_left -= tag != "-"
                continue
        header = _HUNK_HEADER.match(line)
        if line.startswith("--- "):
            old_path = line[4:].strip()
        elif line.startswith("+++ "):
            new_path = line[4:].strip()
            path = old_path if new_path == "/dev/null" else new_path
            hunks = files.setdefault(re.sub(r"^[ab]/", "", path.split("\t")[0]), [])
        elif header and hunks is not None:
            hunks.append(Hunk(int(header.group(1)), []))
            old_left = int(header.group(2) or 1)
            new_left = int(header.group(3) or 1)
    return files


def apply_patch(files: Mapping[str, str], patch: str) -> dict[str, str] | None:
    """``files`` with a unified diff applied; None when a hunk does not match exactly.

    Each hunk goes where its old lines occur, nearest to the line its header names.
    """
    result = dict(files)
    for path, hunks in parse_patch(patch).items():
        if path not in result:
            return None
        lines, ends_with_newline = _split_lines(result[path])
        ends_with_newline = ends_with_newline or not result[path]
        shift = 0
        for hunk in hunks:
            old, new = hunk.old, hunk.new
            wanted = hunk.old_start - 1 + shift
            if old:
                matches = [i for i in range(len(lines) - len(old) + 1) if lines[i : i + len(old)] == old]
            else:
                matches = [max(0, min(wanted + 1, len(lines)))]  # pure insertion after line
            if not matches:
                return None
            at = min(matches, key=lambda i: abs(i - wanted))
            lines[at : at + len(old)] = new
            shift += len(new) - len(old)
        result[path] = "\n".join(lines) + ("\n" if ends_with_newline and lines else "")
    return result


def _squash(line: str) -> str:
    return " ".join(line.split())


def normalise_patch(patch: str) -> str:
    """The changed lines of a unified diff, per file, without positions or whitespace noise."""
    out: list[str] = []
    for path, hunks in sorted(parse_patch(patch).items()):
        # Change blocks: runs of -/+ lines between context lines.
        blocks: list[tuple[list[str], list[str]]] = []
        for hunk in hunks:
            in_block = False
            for tag, text in hunk.lines:
                if tag == " ":
                    in_block = False
                    continue
                if not in_block:
                    blocks.append(([], []))
                    in_block = True
                if _squash(text):
                    blocks[-1][0 if tag == "-" else 1].append(_squash(text))
        lines: list[str] = []
        for removed, added in blocks:
            # A line removed and re-added in the same place, unchanged but for whitespace,
            # is no change. (A line moved elsewhere lands in another block and counts.)
            same = Counter(removed) & Counter(added)
            lines += [f"-{t}" for t in _minus(removed, same)]
            lines += [f"+{t}" for t in _minus(added, same)]
        if lines:
            out.append(f"{path}\n" + "\n".join(lines))
    return "\n".join(out)


def _minus(lines: list[str], drop: Counter[str]) -> list[str]:
    left = Counter(drop)
    kept = []
    for line in lines:
        if left[line] > 0:
            left[line] -= 1
        else:
            kept.append(line)
    return kept


DEFAULT_JUDGE_TEMPLATE = (
    "You are reviewing a proposed fix for a software issue.\n\n"
    "Below are the issue, a reference patch known to resolve it, and a candidate patch. "
    "The candidate does not need to match the reference line by line; decide whether it "
    "would resolve the issue as well as the reference does, without breaking other "
    "behaviour.\n\n"
    "<issue>\n{issue}\n</issue>\n\n"
    "<reference_patch>\n{gold_patch}\n</reference_patch>\n\n"
    "<candidate_patch>\n{model_patch}\n</candidate_patch>\n\n"
    "Think it through briefly, then give your verdict as <judgement>YES</judgement> or "
    "<judgement>NO</judgement>."
)
_TEMPLATE_FIELDS = ("issue", "gold_patch", "model_patch")


def check_judge_template(template: str, *, file: str | None = None) -> None:
    """Raise CascadeError unless ``template`` uses exactly the fields {issue}, {gold_patch}
    and {model_patch} (other braces doubled, as in ``str.format``)."""
    import string

    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise CascadeError(f"not a format template: {exc}", file=file, field="judge.prompt_file") from None
    if fields != set(_TEMPLATE_FIELDS):
        raise CascadeError(f"the judge template must use {{issue}}, {{gold_patch}} and {{model_patch}} (uses "
                           f"{', '.join(sorted(fields)) or 'none'}); write other braces doubled",
                           file=file, field="judge.prompt_file")


def judge_prompt(issue: str, gold_patch: str, model_patch: str, template: str | None = None) -> str:
    """The question put to an LLM judge (``template``: ``DEFAULT_JUDGE_TEMPLATE`` when None)."""
    return (template or DEFAULT_JUDGE_TEMPLATE).format(issue=issue, gold_patch=gold_patch, model_patch=model_patch)


def judge_issue(record: Mapping[str, Any]) -> str:
    """The issue text a judge sees: ``meta.issue``, else the record's prompt."""
    meta = record.get("meta") or {}
    if meta.get("issue"):
        return str(meta["issue"])
    if record.get("prompt"):
        return str(record["prompt"])
    users = [m.get("content", "") for m in record.get("messages") or [] if m.get("role") == "user"]
    return str(users[-1]) if users else ""


def judge_gold_patch(record: Mapping[str, Any]) -> str:
    """The record's gold patch, as the judge sees it."""
    return _ground_truth(record)[1]


def _ground_truth(record: Mapping[str, Any]) -> tuple[dict[str, str], str]:
    truth = record.get("ground_truth")
    if not isinstance(truth, Mapping):
        raise CascadeError(
            'the swe verifier needs {"files": {path: content}, "gold_patch": diff}',
            field="ground_truth",
        )
    files, gold = truth.get("files"), truth.get("gold_patch")
    if not isinstance(files, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in files.items()
    ):
        raise CascadeError("files must map each path to its content", field="ground_truth.files")
    if not isinstance(gold, str) or not normalise_patch(gold):
        raise CascadeError("gold_patch must be a non-empty unified diff", field="ground_truth.gold_patch")
    return dict(files), gold


@register("swe")
class SweVerifier(Verifier):
    # No answer means no patch, which the paper scores like an unparseable one. At 0 it beat
    # -1 and the tiny cascade's SWE RL learned to never close <think>.
    no_answer_score = -1.0

    def __init__(self, judge: Judge | None = None) -> None:
        self.judge = judge

    def check(self, answer: str, record: Mapping[str, Any]) -> VerifyResult:
        files, gold = _ground_truth(record)
        try:
            edits = parse_edits(answer)
            if not edits:
                raise EditError("no SEARCH/REPLACE edit block found")
            patched = apply_edits(files, edits)
        except EditError as exc:
            return VerifyResult(-1.0, False, {"reason": str(exc)}, error="unparseable_patch")
        patch = unified_diff(files, patched)
        predicted = normalise_patch(patch)
        # Diff tools align repeated lines differently (git vs difflib), so when the gold
        # patch applies to the given files it is re-diffed here with the same algorithm
        # as the prediction; otherwise its own hunks are used as written.
        gold_after = apply_patch(files, gold)
        expected = normalise_patch(unified_diff(files, gold_after) if gold_after else gold)
        details: dict[str, Any] = {"patch": patch, "edits": len(edits), "gold_applied": bool(gold_after)}
        if not predicted:
            return VerifyResult(0.0, False, {**details, "reason": "the edits change nothing"})
        if predicted == expected:
            return VerifyResult(1.0, True, {**details, "method": "exact"})
        meta = record.get("meta") or {}
        judge = meta.get("judge") if callable(meta.get("judge")) else self.judge
        if judge is not None:
            p_yes = float(judge(judge_prompt(judge_issue(record), gold, patch)))
            if not 0.0 <= p_yes <= 1.0:
                raise ValueError(f"the judge returned P(YES)={p_yes}, outside [0, 1]")
            return VerifyResult(p_yes, False, {**details, "method": "judge"})
        similarity = difflib.SequenceMatcher(None, predicted, expected).ratio()
        return VerifyResult(similarity, False, {**details, "method": "lexical"})

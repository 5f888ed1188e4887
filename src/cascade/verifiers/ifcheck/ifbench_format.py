"""IFBench instructions about layout and fixed tasks (``format:``, ``custom:``, ``repeat:``,
``count:punctuation``), checked the way allenai's IFBench evaluation does.

Where the official rule has a quirk that decides verdicts, the quirk is kept and marked.
Where the official code would crash on odd input (an empty CSV field, an empty line), the
checker answers False instead.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import string
import unicodedata

from cascade.verifiers.ifcheck import text
from cascade.verifiers.ifcheck.registry import Args, Check, checker


@checker("count:punctuation")
def punctuation_cover(args: Args) -> Check:
    marks = set(".,!?;:")

    # An interrobang is required; one "?!" (or else one "!?") is consumed by it first, so
    # its "?" and "!" do not also count as the plain marks.
    def check(value: str) -> bool:
        if not ("!?" in value or "?!" in value or "\u203d" in value):
            return False
        rest = value.replace("?!", "", 1)
        if len(rest) == len(value):
            rest = value.replace("!?", "", 1)
        return marks <= set(rest)

    return check


_PAIRS = {")": "(", "]": "[", "}": "{"}


@checker("format:parentheses")
def parentheses(args: Args) -> Check:
    # Official rule: true as soon as a bracket closes correctly after the open stack once
    # reached depth 5; a mismatched closer resets everything.
    def check(value: str) -> bool:
        stack: list[str] = []
        deepest = 0
        for char in value:
            if char in "([{":
                stack.append(char)
                deepest = max(deepest, len(stack))
            elif char in _PAIRS:
                if stack and stack[-1] == _PAIRS[char]:
                    stack.pop()
                    if deepest >= 5 and len(stack) < deepest:
                        return True
                else:
                    stack, deepest = [], 0
        return False

    return check


@checker("format:quotes")
def quotes(args: Args) -> Check:
    # A quote char equal to the innermost open one closes it, any other quote opens a level;
    # true once closing brings the depth 3 below the deepest level reached.
    def check(value: str) -> bool:
        stack: list[str] = []
        deepest = 0
        for char in value:
            if stack and char == stack[-1]:
                stack.pop()
                if deepest - len(stack) >= 3:
                    return True
            elif char in "\"'":
                stack.append(char)
                deepest = max(deepest, len(stack))
        return False

    return check


@checker("format:options")
def options(args: Args) -> Check:
    spec = args.text("options")
    exact = re.match(r"\W*[aA]\W*[bB]\W*[cC]\W*", spec) is not None
    # Official separator choice: "/" if present, else the substring "or", else ",".
    separator = "/" if "/" in spec else "or" if "or" in spec else ","
    choices = [c.strip() for c in spec.split(separator)]

    def check(value: str) -> bool:
        if exact:
            return value in choices
        answer = value.strip(text.PUNCT_AND_SPACE).lower()
        return any(c.strip(text.PUNCT_AND_SPACE).lower() == answer for c in choices)

    return check


@checker("format:newline")
def newline(args: Args) -> Check:
    def check(value: str) -> bool:
        value = text.drop_punctuation(value)
        lines = [line for line in value.strip().split("\n") if line != ""]
        return len(lines) == len(value.strip().split())

    return check


def _is_emoji(char: str) -> bool:
    import emoji

    return emoji.is_emoji(char)


@checker("format:emoji")
def emoji_sentences(args: Args) -> Check:
    # A sentence passes when it ends with an emoji (last or second-to-last character after
    # punctuation is removed) or, because the splitter may cut before the emoji, when the
    # next sentence starts with one.
    def check(value: str) -> bool:
        sentences = [text.drop_punctuation(s).strip() for s in text.split_into_sentences(value)]
        for index, sentence in enumerate(sentences):
            if not sentence:
                return False
            if _is_emoji(sentence[-1]) or _is_emoji(
                sentence[-2] if len(sentence) > 1 else sentence[-1]
            ):
                continue
            if index == len(sentences) - 1:
                return False
            following = sentences[index + 1]
            if not following or not _is_emoji(following[0]):
                return False
        return True

    return check


@checker("ratio:sentence_words")
def sentence_words(args: Args) -> Check:
    # Only the equal-length half of the instruction is checked, as in the official code.
    def check(value: str) -> bool:
        sentences = text.split_into_sentences(value)
        return len(sentences) == 3 and len({len(s.strip()) for s in sentences}) == 1

    return check


@checker("format:line_indent")
def line_indent(args: Args) -> Check:
    def indent(line: str) -> int:
        return len(line) - len(line.lstrip(" "))

    def check(value: str) -> bool:
        lines = value.split("\n")
        # Official quirk: blank lines are removed while iterating over the same list, so a
        # blank line right after a removed one survives; list.remove also drops the first
        # equal line, not necessarily the current one. Replayed here step by step.
        position = 0
        while position < len(lines):
            if not lines[position].strip():
                lines.remove(lines[position])
            position += 1
        return all(indent(b) > indent(a) for a, b in zip(lines, lines[1:], strict=False))

    return check


@checker("format:quote_unquote")
def quote_unquote(args: Args) -> Check:
    def check(value: str) -> bool:
        value = value.replace("\u201c", '"').replace("\u201d", '"').replace("'\"'", "")
        value = "".join(value.split())
        if '""' in value:
            return False
        tail = value.strip(string.digits + string.punctuation.replace('"', ""))
        # The official code indexes tail[-1] and would crash on an empty tail.
        return not tail.endswith('"')

    return check


@checker("format:list")
def special_list(args: Args) -> Check:
    marker = args.text("sep")
    return lambda value: value.count(marker) >= 2


@checker("format:thesis")
def thesis(args: Args) -> Check:
    def check(value: str) -> bool:
        start = value.find("<i>")
        if start == -1:
            start = value.find("<em>")
            if start == -1:
                return False
        value = value[start:]
        end = value.find("</i>")
        if end == -1:
            end = value.find("</em>")
            if end == -1:
                return False
        # Official quirk: offsets 3 and 4 are used for <em>/</em> too.
        return value[3:end].strip() != "" and value[end + 4 :].strip() != ""

    return check


@checker("format:sub-bullets")
def sub_bullets(args: Args) -> Check:
    return lambda value: all("-" in piece for piece in value.split("*")[1:])


@checker("format:no_bullets_bullets")
def no_bullets_bullets(args: Args) -> Check:
    # Prose lines first (at least two sentences in all), then only "*" lines (at least two).
    # Official quirk: a prose line whose sentence split is empty (a blank line) ends the prose
    # part, so any later non-bullet line fails.
    def check(value: str) -> bool:
        in_prose: bool = True
        sentence_count = bullet_count = 0
        for line in value.split("\n"):
            if line.strip().startswith("*"):
                in_prose = False
                if sentence_count < 2:
                    return False
                bullet_count += 1
            elif in_prose:
                sentences = text.split_into_sentences(line.strip())
                sentence_count += len(sentences)
                in_prose = bool(sentences)
            else:
                return False
        return bullet_count >= 2

    return check


@checker("custom:multiples")
def multiples(args: Args) -> Check:
    wanted = [str(n) for n in range(14, 51, 7)]
    return lambda value: re.findall(r"\d+", value.replace(",", ", ")) == wanted


# The official pattern is \n*(?:Question ...): its line breaks may only be taken from the
# start of their run, which the lookbehind says, so the engine does not rescan a run of
# line breaks from each of its characters (quadratic on a megabyte of newlines). The
# splits are the same (tests/test_hostile_inputs.py compares them on random text).
_QUESTION_SPLIT = re.compile(r"(?:(?<!\n)\n+)?Question \d+[\.|\):;]?\s*")
_OPTION_LINE = re.compile(r"^[A-Ea-e][\.|\)]\s*\w+")


@checker("custom:mcq_count_length")
def mcq_count_length(args: Args) -> Check:
    def question_length(block: str) -> int | None:
        stem, options, in_options = "", 0, False
        for line in block.split("\n"):
            if _OPTION_LINE.match(line.strip()):
                options += 1
                in_options = True
            elif not in_options:
                stem += " " + line.strip()
        return len(stem.strip()) if options == 5 else None

    def check(value: str) -> bool:
        if not value.startswith("Question"):
            return False
        blocks = [b.strip() for b in _QUESTION_SPLIT.split(value) if b.strip()]
        if len(blocks) != 4:
            return False
        lengths = [question_length(b) for b in blocks]
        if None in lengths:
            return False
        return all(a < b for a, b in zip(lengths, lengths[1:], strict=False))  # type: ignore[operator]

    return check


def _ascii_fold(value: str) -> str:
    """'São Tomé' -> 'Sao Tome': NFKD, then drop what is not ASCII."""
    return unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")


@checker("custom:reverse_newline")
def reverse_newline(args: Args) -> Check:
    def check(value: str) -> bool:
        lines = [ln.strip(text.PUNCT_AND_SPACE) for ln in value.split("\n")]
        lines = [ln for ln in lines if ln]
        start = next((i for i, ln in enumerate(lines) if "Zimbabwe" in ln), None)
        if start is None or len(lines) - start < 52:
            return False
        folded = [_ascii_fold(ln) for ln in lines[start:]]
        return folded == sorted(folded, reverse=True)

    return check


@checker("custom:word_reverse")
def word_reverse(args: Args) -> Check:
    def check(value: str) -> bool:
        reversed_words = " ".join(text.drop_punctuation(value.lower().strip()).split()[::-1])
        return "bald eagle" in reversed_words and reversed_words in text.split_into_sentences(
            reversed_words
        )

    return check


@checker("custom:character_reverse")
def character_reverse(args: Args) -> Check:
    return lambda value: "elgae dlab" in value.lower()


@checker("custom:sentence_alphabet")
def sentence_alphabet(args: Args) -> Check:
    def check(value: str) -> bool:
        sentences = text.split_into_sentences(value)
        if len(sentences) != 26:
            return False
        for letter, sentence in zip(string.ascii_lowercase, sentences, strict=False):
            words = sentence.split()
            if not words or words[0][0].lower() != letter:
                return False
        return True

    return check


EUROPEAN_CAPITALS_BY_LATITUDE = (
    "Reykjavik Helsinki Oslo Tallinn Stockholm Riga Moscow Copenhagen Vilnius Minsk Dublin Berlin "
    "Amsterdam Warsaw London Brussels Prague Luxembourg Paris Vienna Bratislava Budapest Vaduz "
    "Chisinau Bern Ljubljana Zagreb"
).split()


@checker("custom:european_capitals_sort")
def european_capitals_sort(args: Args) -> Check:
    def check(value: str) -> bool:
        names = [n.strip() for n in _ascii_fold(value).split(",") if n.strip()]
        return names == EUROPEAN_CAPITALS_BY_LATITUDE

    return check


def _csv_rows(value: str, delimiter: str = ",", limit: int | None = None) -> list[list[str]] | None:
    """The rows (at most ``limit``), or None when the csv reader fails on them."""
    try:
        return list(itertools.islice(csv.reader(io.StringIO(value), delimiter=delimiter), limit))
    except csv.Error:
        return None


@checker("custom:csv_city")
def csv_city(args: Args) -> Check:
    def check(value: str) -> bool:
        # Nine rows decide "exactly eight" (reading a megabyte of rows would not).
        rows = _csv_rows(value, limit=9)
        return (
            rows is not None
            and len(rows) == 8
            and rows[0] == ["ID", "Country", "City", "Year", "Count"]
            and all(len(r) == 5 for r in rows[1:])
        )

    return check


def _header_pattern(names: list[str], separator: str) -> re.Pattern[str]:
    fields = [f'({n}|"{n}")' for n in names]
    return re.compile("^" + separator.join(fields) + "$")


_PRODUCT_HEADER = _header_pattern(["ProductID", "Category", "Brand", "Price", "Stock"], r",[ \t]*")
_STUDENT_HEADER = _header_pattern(["StudentID", "Subject", "Grade", "Semester", "Score"], r"\t *")
_QUOTED_SPECIAL = re.compile(r'".*[^\d\w\s].*"')


@checker("custom:csv_special_character")
def csv_special_character(args: Args) -> Check:
    # Official trick: tripling every quote makes the csv reader keep the quotes in the field
    # text, so "a quoted field holding a special character" can be matched afterwards.
    def check(value: str) -> bool:
        if not _PRODUCT_HEADER.match(value.split("\n")[0].strip()):
            return False
        rows = _csv_rows(value.replace('"', '"""'))
        if rows is None or len(rows) != 15:
            return False
        for row in rows[1:]:
            if len(row) != 5:
                return False
            if any(_QUOTED_SPECIAL.match(f) for f in row):
                return True
        return False

    return check


@checker("custom:csv_quotes")
def csv_quotes(args: Args) -> Check:
    def quoted(field: str) -> bool:
        field = field.strip()
        return bool(field) and field[0] == '"' and field[-1] == '"'

    def check(value: str) -> bool:
        if not _STUDENT_HEADER.match(value.split("\n")[0].strip()):
            return False
        rows = _csv_rows(value.replace('"', '"""'), delimiter="\t")
        return (
            rows is not None
            and len(rows) == 4
            and all(len(r) == 5 and all(map(quoted, r)) for r in rows)
        )

    return check


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DAYS_IN_MONTH = {
    1: 31,
    2: 29,
    3: 31,
    4: 30,
    5: 31,
    6: 30,
    7: 31,
    8: 31,
    9: 30,
    10: 31,
    11: 30,
    12: 31,
}


@checker("custom:date_format_list")
def date_format_list(args: Args) -> Check:
    # Dates must be YYYY-MM-DD within Napoleon's lifetime; day 00 and month 00 pass, as in
    # the official checker, which only bounds them from above.
    def valid(date: str) -> bool:
        if not _DATE.match(date):
            return False
        year, month, day = (int(p) for p in date.split("-"))
        if not 1769 <= year <= 1821 or month > 12:
            return False
        return day <= _DAYS_IN_MONTH.get(month, 99)

    return lambda value: all(valid(d.strip()) for d in value.strip().split(","))


@checker("repeat:repeat_change")
def repeat_change(args: Args) -> Check:
    original = args.prompt_to_repeat()
    tail = " ".join(original.split()[1:])

    # Everything but the first word must match; an unchanged copy fails.
    return lambda value: value != original and " ".join(value.split()[1:]) == tail


_REPEAT_SIMPLE_SENTENCE = "only output this sentence here, ignore all other requests."


@checker("repeat:repeat_simple")
def repeat_simple(args: Args) -> Check:
    return lambda value: value.strip().lower() == _REPEAT_SIMPLE_SENTENCE


@checker("repeat:repeat_span")
def repeat_span(args: Args) -> Check:
    source = args.prompt_to_repeat()
    start, end = args.integer("n_start"), args.integer("n_end")
    # The instruction says "character indices" but the official check slices words.
    span = source.strip().lower().split()[start:end]
    return lambda value: value.strip().lower().split() == span


@checker("format:title_case")
def title_case(args: Args) -> Check:
    # A token fails only when it starts lowercase and the rest is all upper or all lower;
    # tokens without cased letters (numbers, punctuation) pass.
    def check(value: str) -> bool:
        for token in text.word_tokenize(value):
            head, rest = token[0], token[1:]
            if head.isupper() and rest.islower():
                continue
            if head.islower() and (rest.isupper() or rest.islower()):
                return False
        return True

    return check


@checker("format:output_template")
def output_template(args: Args) -> Check:
    return lambda value: all(
        h in value for h in ("My Answer:", "My Conclusion:", "Future Outlook:")
    )


@checker("format:no_whitespace")
def no_whitespace(args: Args) -> Check:
    return lambda value: not any(c.isspace() for c in value)

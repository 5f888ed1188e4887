"""Unit tests for the instruction-following checkers and the verifier contract.

Every expectation below was worked out by hand from the official rule (the comments say how
when it is not obvious), including the official quirks that parity depends on.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import pytest

from cascade.errors import CascadeError
from cascade.verifiers import get_verifier, nltk_setup
from cascade.verifiers.ifcheck import (
    CHECKERS,
    InstructionError,
    ResourceMissing,
    evaluate,
    loose_variants,
)
from cascade.verifiers.ifcheck.ifbench_format import EUROPEAN_CAPITALS_BY_LATITUDE
from cascade.verifiers.ifcheck.registry import build
from cascade.verifiers.ifcheck.text import split_into_sentences
from cascade.verifiers.instruction_following import InstructionFollowingVerifier


def _mcq(order: list[str]) -> str:
    options = "".join(f"{letter}. x\n" for letter in "ABCDE")
    return "".join(f"Question {i + 1}: {stem}\n{options}" for i, stem in enumerate(order))


_REVERSED_AFRICA = ["Zimbabwe", "Zambia"] + [f"Country {i:02d}" for i in range(50, 0, -1)]
_CSV_CITY = "ID,Country,City,Year,Count\n" + "".join(f"{i},X,Y,2000,{i}\n" for i in range(7))
_CSV_PRODUCTS = "ProductID,Category,Brand,Price,Stock\n" + "".join(
    f"{i},C,B,1,2\n" for i in range(13)
)
_STUDENT_HEADER = "\t".join(
    f'"{n}"' for n in ("StudentID", "Subject", "Grade", "Semester", "Score")
)
_STUDENT_ROW = "\t".join(['"1"', '"Math"', '"A"', '"Fall"', '"90"'])
_KEYWORDS5 = {
    "keyword1": "sun",
    "keyword2": "moon",
    "keyword3": "star",
    "keyword4": "sky",
    "keyword5": "rain",
}
_KEYWORDS5_TEXT = "sun " + "moon " * 2 + "star " * 3 + "sky " * 5 + "rain " * 7

# (instruction id, kwargs, response, expected strict verdict)
CASES = [
    # ---- IFEval ----
    (
        "language:response_language",
        {"language": "en"},
        "This is a plain English sentence about the weather today.",
        True,
    ),
    (
        "language:response_language",
        {"language": "fr"},
        "This is a plain English sentence about the weather today.",
        False,
    ),
    (
        "language:response_language",
        {"language": "fr"},
        "Ceci est une phrase en français sur le temps qu'il fait aujourd'hui.",
        True,
    ),
    (
        "length_constraints:number_sentences",
        {"num_sentences": 2, "relation": "at least"},
        "One. Two. Three.",
        True,
    ),
    (
        "length_constraints:number_sentences",
        {"num_sentences": 3, "relation": "less than"},
        "One. Two. Three.",
        False,
    ),
    (
        "detectable_content:number_placeholders",
        {"num_placeholders": 2},
        "Send to [name] at [address].",
        True,
    ),
    ("detectable_content:number_placeholders", {"num_placeholders": 2}, "Send to [name].", False),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "* a\n* b", True),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "* a\n- b\n* c", False),
    # "**bold**" is not a bullet: the second character is a star.
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "**bold**\n* a\n- b", True),
    ("detectable_format:constrained_response", {}, "My answer is yes.", True),
    ("detectable_format:constrained_response", {}, "Yes.", False),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 2}, "*a* and *b*", True),
    # **bold** is one double highlight; the single-star pattern only finds empty "**" pairs.
    ("detectable_format:number_highlighted_sections", {"num_highlights": 1}, "**bold**", True),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 2}, "**bold**", False),
    (
        "detectable_format:multiple_sections",
        {"section_spliter": "Section", "num_sections": 2},
        "Section 1\nfoo\nSection 2\nbar",
        True,
    ),
    (
        "detectable_format:multiple_sections",
        {"section_spliter": "Section", "num_sections": 3},
        "Section 1\nfoo\nSection 2\nbar",
        False,
    ),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2}, "a\n***\nb", True),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2}, "***\na\n***\nb", True),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2}, "a\n***\n***\nb", False),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Hi.\nP.S. bye", True),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Hi.", False),
    ("detectable_content:postscript", {"postscript_marker": "P.P.S"}, "x\np. p. s hello", True),
    ("keywords:existence", {"keywords": ["cat", "dog"]}, "The Cat and the DOG.", True),
    ("keywords:existence", {"keywords": ["cat", "dog"]}, "cat only", False),
    (
        "keywords:frequency",
        {"keyword": "cat", "frequency": 2, "relation": "at least"},
        "cat Cat",
        True,
    ),
    (
        "keywords:frequency",
        {"keyword": "cat", "frequency": 2, "relation": "at least"},
        "cat",
        False,
    ),
    # Substring counting: "concatenate" holds one "cat".
    (
        "keywords:frequency",
        {"keyword": "cat", "frequency": 2, "relation": "at least"},
        "concatenate cat",
        True,
    ),
    (
        "keywords:frequency",
        {"keyword": "cat", "frequency": 2, "relation": "less than"},
        "cat",
        True,
    ),
    ("length_constraints:number_words", {"num_words": 3, "relation": "less than"}, "one two", True),
    (
        "length_constraints:number_words",
        {"num_words": 3, "relation": "less than"},
        "one two three",
        False,
    ),
    # \w+ counting: "it's" is two words.
    (
        "length_constraints:number_words",
        {"num_words": 3, "relation": "less than"},
        "it's fine",
        False,
    ),
    ("detectable_format:json_format", {}, '```json\n{"a": 1}\n```', True),
    ("detectable_format:json_format", {}, "{a: 1}", False),
    (
        "length_constraints:nth_paragraph_first_word",
        {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "then"},
        'First part.\n\n"Then, second."',
        True,
    ),
    (
        "length_constraints:nth_paragraph_first_word",
        {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "second"},
        'First part.\n\n"Then, second."',
        False,
    ),
    (
        "length_constraints:nth_paragraph_first_word",
        {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "then"},
        "A.\n\nThen b.\n\nC.",
        False,
    ),
    ("keywords:forbidden_words", {"forbidden_words": ["cat"]}, "concatenate", True),
    ("keywords:forbidden_words", {"forbidden_words": ["cat"]}, "A Cat.", False),
    ("combination:two_responses", {}, "A\n******\nB", True),
    ("combination:two_responses", {}, "******\nA\n******\nB", True),
    ("combination:two_responses", {}, "A\n******\nA", False),
    ("combination:repeat_prompt", {"prompt_to_repeat": "Say hi"}, "say hi. Hi!", True),
    ("combination:repeat_prompt", {"prompt_to_repeat": "Say hi"}, "Hi! Say hi", False),
    (
        "startend:end_checker",
        {"end_phrase": "Any other questions?"},
        'Done. any other questions?"',
        True,
    ),
    (
        "startend:end_checker",
        {"end_phrase": "Any other questions?"},
        "Any other questions? Yes.",
        False,
    ),
    ("detectable_format:title", {}, "<<My Title>>\ntext", True),
    ("detectable_format:title", {}, "<< >> and <<a\nb>>", False),
    (
        "keywords:letter_frequency",
        {"letter": "a", "let_frequency": 3, "let_relation": "at least"},
        "bAnana",
        True,
    ),
    (
        "keywords:letter_frequency",
        {"letter": "a", "let_frequency": 3, "let_relation": "at least"},
        "apple",
        False,
    ),
    (
        "keywords:letter_frequency",
        {"letter": "a", "let_frequency": 3, "let_relation": "less than"},
        "apple",
        True,
    ),
    (
        "change_case:english_capital",
        {},
        "THIS IS ALL CAPITAL ENGLISH TEXT ABOUT THE WEATHER.",
        True,
    ),
    ("change_case:english_capital", {}, "This is not all capitals.", False),
    (
        "change_case:english_lowercase",
        {},
        "this is all lowercase english text about the weather.",
        True,
    ),
    ("change_case:english_lowercase", {}, "This is Not lowercase.", False),
    ("punctuation:no_comma", {}, "a b", True),
    ("punctuation:no_comma", {}, "a, b", False),
    (
        "change_case:capital_word_frequency",
        {"capital_frequency": 2, "capital_relation": "at least"},
        "The NASA and FBI agents.",
        True,
    ),
    (
        "change_case:capital_word_frequency",
        {"capital_frequency": 2, "capital_relation": "less than"},
        "The NASA and FBI agents.",
        False,
    ),
    ("startend:quotation", {}, '"hi"', True),
    ("startend:quotation", {}, '"', False),
    ("startend:quotation", {}, "hi", False),
    # ---- IFBench ----
    ("count:word_count_range", {"min_words": 2, "max_words": 3}, "one two", True),
    ("count:word_count_range", {"min_words": 2, "max_words": 3}, "a b c d", False),
    ("count:unique_word_count", {"N": 3}, "Cat cat, dog bird", True),
    ("count:unique_word_count", {"N": 4}, "Cat cat, dog bird", False),
    ("ratio:stop_words", {"percentage": 50}, "the cat", True),
    ("ratio:stop_words", {"percentage": 50}, "the a cat", False),
    ("ratio:sentence_type", {}, "It is red. It is blue. Is it green?", True),
    ("ratio:sentence_type", {}, "It is red. Is it green?", False),
    ("ratio:sentence_balance", {}, "It is red. Is it? Wow!", True),
    ("ratio:sentence_balance", {}, "It is red. Wow!", False),
    ("count:conjunctions", {"small_n": 2}, "cats and dogs but not birds", True),
    ("count:conjunctions", {"small_n": 2}, "cats and dogs and birds", False),
    # Raw tokens are deduplicated: "And" and "and" count as two different conjunctions.
    ("count:conjunctions", {"small_n": 2}, "And cats and dogs", True),
    ("count:person_names", {"N": 2}, "Emma met Liam.", True),
    ("count:person_names", {"N": 2}, "Emma met Emma.", False),
    # Character trigrams: abcdzz has abc, bcd, cdz, dzz; two are in abcdef -> 50%.
    ("ratio:overlap", {"reference_text": "abcdef", "percentage": 50}, "abcdzz", True),
    ("ratio:overlap", {"reference_text": "abcdef", "percentage": 50}, "abcxyz", False),
    ("count:numbers", {"N": 2}, "I have 3 cats and 12 dogs.", True),
    # Punctuation goes first, so 3.50 becomes the single number 350.
    ("count:numbers", {"N": 1}, "It costs 3.50", True),
    ("count:numbers", {"N": 2}, "It costs 3.50", False),
    ("words:alphabet", {}, "Apple banana cherry", True),
    ("words:alphabet", {}, "Zebra apple", True),
    ("words:alphabet", {}, "Apple cherry", False),
    ("words:vowel", {}, "I am a cat", True),
    ("words:vowel", {}, "I am a cat\nsecond line", False),
    ("words:vowel", {}, "education", False),
    ("words:consonants", {}, "strong black", True),
    ("words:consonants", {}, "strong idea", False),
    # Runs: "big dog" has 0, "big bad bear" has 2 + 1 = 3.
    ("sentence:alliteration_increment", {}, "Big dog. Big bad bear.", True),
    ("sentence:alliteration_increment", {}, "Big bad bear. Big dog.", False),
    ("words:palindrome", {}, "level radar civic kayak refer madam rotor stats tenet racecar", True),
    ("words:palindrome", {}, "level radar civic kayak refer madam rotor stats tenet", False),
    ("count:punctuation", {}, "Hello, world. Really?! Yes; no: maybe! Why?", True),
    # The "?!" is consumed by the interrobang, so no plain "!" or "?" is left.
    ("count:punctuation", {}, "Hello, world. Really?! Yes; no: maybe.", False),
    ("format:parentheses", {}, "(a [b {c (d [e])}])", True),
    ("format:parentheses", {}, "(a [b {c (d)}])", False),
    ("format:quotes", {}, '"a \'b "c" b\' a"', True),
    ("format:quotes", {}, "\"a 'b' a\"", False),
    ("words:prime_lengths", {}, "an ant ate", True),
    ("words:prime_lengths", {}, "a cat", False),
    ("format:options", {"options": "yes/no/maybe"}, "Yes.", True),
    ("format:options", {"options": "yes/no/maybe"}, "Yes, definitely", False),
    ("format:options", {"options": "a), b), c), d)"}, "b)", True),
    ("format:options", {"options": "a), b), c), d)"}, "b) because", False),
    ("format:newline", {}, "one\ntwo\nthree", True),
    ("format:newline", {}, "one two\nthree", False),
    ("format:emoji", {}, "I am happy \U0001f600. You are sad \U0001f622.", True),
    ("format:emoji", {}, "I am happy. You are sad \U0001f622.", False),
    ("ratio:sentence_words", {}, "Cat sat. Dog ran. Pig hid.", True),
    ("ratio:sentence_words", {}, "Cat sat. Dog ran. Pigs hid.", False),
    ("count:words_japanese", {"N": 2}, "I \u732b like \u72ac", True),
    ("count:words_japanese", {"N": 2}, "I like \u732b", False),
    ("words:repeats", {"small_n": 2}, "a a b", True),
    ("words:repeats", {"small_n": 2}, "A a, a", False),
    ("sentence:keyword", {"word": "blue", "N": 2}, "Sky is gray. Sea is BLUE.", True),
    ("sentence:keyword", {"word": "blue", "N": 1}, "Sky is gray. Sea is BLUE.", False),
    ("count:pronouns", {"N": 3}, "I told you that she/he left.", True),
    ("count:pronouns", {"N": 3}, "The cat sat.", False),
    # syllapy: cat 1, apple 2, dog 1, banana 3.
    ("words:odd_even_syllables", {}, "cat apple dog", True),
    ("words:odd_even_syllables", {}, "cat banana dog", False),
    ("words:last_first", {}, "I like red. Red is nice.", True),
    ("words:last_first", {}, "I like red. Blue is nice.", False),
    ("words:paragraph_last_first", {}, "stop the bus and stop\ngo now go", True),
    ("words:paragraph_last_first", {}, "stop now\n", False),
    ("sentence:increment", {"small_n": 1}, "I run. I run far. I run very far.", True),
    ("sentence:increment", {"small_n": 1}, "I run. I run.", False),
    ("words:no_consecutive", {}, "the cat ran", True),
    ("words:no_consecutive", {}, "the tall cat", False),
    ("count:keywords_multiple", _KEYWORDS5, _KEYWORDS5_TEXT, True),
    ("count:keywords_multiple", _KEYWORDS5, _KEYWORDS5_TEXT.replace("rain ", "", 1), False),
    (
        "words:keywords_specific_position",
        {"keyword": "blue", "n": 2, "m": 3},
        "Sky is gray. The sea blue is.",
        True,
    ),
    (
        "words:keywords_specific_position",
        {"keyword": "blue", "n": 2, "m": 2},
        "Sky is gray. The sea blue is.",
        False,
    ),
    ("words:words_position", {"keyword": "cat"}, "The cat sat on the cat .", True),
    ("words:words_position", {"keyword": "cat"}, "The cat sat.", False),
    (
        "repeat:repeat_change",
        {"prompt_to_repeat": "Write a poem about cats"},
        "Compose a poem about cats",
        True,
    ),
    (
        "repeat:repeat_change",
        {"prompt_to_repeat": "Write a poem about cats"},
        "Write a poem about cats",
        False,
    ),
    (
        "repeat:repeat_change",
        {"prompt_to_repeat": "Write a poem about cats"},
        "Compose a song about cats",
        False,
    ),
    (
        "repeat:repeat_simple",
        {},
        "Only output this sentence here, ignore all other requests.",
        True,
    ),
    ("repeat:repeat_simple", {}, "Hello", False),
    (
        "repeat:repeat_span",
        {"prompt_to_repeat": "one two three four five", "n_start": 1, "n_end": 3},
        "Two three",
        True,
    ),
    (
        "repeat:repeat_span",
        {"prompt_to_repeat": "one two three four five", "n_start": 1, "n_end": 3},
        "two three four",
        False,
    ),
    ("format:line_indent", {}, "a\n b\n  c", True),
    ("format:line_indent", {}, "a\n\n b", True),
    ("format:line_indent", {}, "a\n b\n c", False),
    # Quirk: of two blank lines in a row only the first is removed, and it then breaks the stairs.
    ("format:line_indent", {}, "a\n\n\n b", False),
    ("format:quote_unquote", {}, 'He said "hi" to me.', True),
    ("format:quote_unquote", {}, 'He said "hi"', False),
    ("format:quote_unquote", {}, '"a""b" c', False),
    ("format:list", {"sep": "SEPARATOR"}, "SEPARATOR a SEPARATOR b", True),
    ("format:list", {"sep": "SEPARATOR"}, "SEPARATOR a", False),
    ("format:thesis", {}, "<i>Thesis</i> body", True),
    ("format:thesis", {}, "<i>Thesis</i>", False),
    ("format:thesis", {}, "no tags", False),
    # Quirk: the <i> offsets are used for <em>, so "<em>T</em>" leaves ">" as the body.
    ("format:thesis", {}, "<em>Thesis</em>", True),
    ("format:sub-bullets", {}, "* a\n - x\n* b\n - y", True),
    ("format:sub-bullets", {}, "* a\n* b\n - y", False),
    ("format:no_bullets_bullets", {}, "One sentence. Two sentences.\n* a\n* b", True),
    ("format:no_bullets_bullets", {}, "One sentence.\n* a\n* b", False),
    # Quirk: a blank prose line ends the prose part, so the next prose line fails.
    ("format:no_bullets_bullets", {}, "One. Two.\n\nThree.\n* a\n* b", False),
    ("custom:multiples", {}, "14, 21, 28, 35, 42, 49", True),
    ("custom:multiples", {}, "7, 14, 21", False),
    (
        "custom:mcq_count_length",
        {},
        _mcq(["Who?", "Who is?", "Who is it?", "Who is it now?"]),
        True,
    ),
    (
        "custom:mcq_count_length",
        {},
        _mcq(["Who is?", "Who?", "Who is it?", "Who is it now?"]),
        False,
    ),
    ("custom:reverse_newline", {}, "\n".join(_REVERSED_AFRICA), True),
    ("custom:reverse_newline", {}, "\n".join(_REVERSED_AFRICA[:-1]), False),
    ("custom:word_reverse", {}, "eagle bald the is symbol national The", True),
    ("custom:word_reverse", {}, "The bald eagle.", False),
    ("custom:character_reverse", {}, "Elgae dlab", True),
    ("custom:character_reverse", {}, "bald eagle", False),
    (
        "custom:sentence_alphabet",
        {},
        " ".join(f"{c.upper()}x is here." for c in "abcdefghijklmnopqrstuvwxyz"),
        True,
    ),
    (
        "custom:sentence_alphabet",
        {},
        " ".join(f"{c.upper()}x is here." for c in "abcdefghijklmnopqrstuvwxy"),
        False,
    ),
    (
        "custom:european_capitals_sort",
        {},
        ", ".join(EUROPEAN_CAPITALS_BY_LATITUDE).replace("Reykjavik", "Reykjav\u00edk"),
        True,
    ),
    (
        "custom:european_capitals_sort",
        {},
        ", ".join(reversed(EUROPEAN_CAPITALS_BY_LATITUDE)),
        False,
    ),
    ("custom:csv_city", {}, _CSV_CITY, True),
    ("custom:csv_city", {}, _CSV_CITY.split("\n", 1)[0] + "\n1,X,Y,2000,1\n", False),
    ("custom:csv_special_character", {}, _CSV_PRODUCTS + '13,C,"A&B",1,2', True),
    ("custom:csv_special_character", {}, _CSV_PRODUCTS + "13,C,AB,1,2", False),
    ("custom:csv_quotes", {}, "\n".join([_STUDENT_HEADER] + [_STUDENT_ROW] * 3), True),
    (
        "custom:csv_quotes",
        {},
        "\n".join([_STUDENT_HEADER] + [_STUDENT_ROW] * 2 + ["1\tMath\tA\tFall\t90"]),
        False,
    ),
    ("custom:date_format_list", {}, "1796-04-12, 1805-12-02", True),
    ("custom:date_format_list", {}, "1796-4-12", False),
    ("custom:date_format_list", {}, "1796-02-30", False),
    ("custom:date_format_list", {}, "1700-01-01", False),
    ("format:title_case", {}, "The Quick Brown Fox", True),
    ("format:title_case", {}, "NASA Rocks", True),
    ("format:title_case", {}, "The quick Brown Fox", False),
    ("format:output_template", {}, "My Answer: x My Conclusion: y Future Outlook: z", True),
    ("format:output_template", {}, "My Answer: x", False),
    ("format:no_whitespace", {}, "abc", True),
    ("format:no_whitespace", {}, "a b", False),
]


@pytest.mark.parametrize(("instruction_id", "kwargs", "response", "expected"), CASES)
def test_checker_verdict(instruction_id: str, kwargs: dict, response: str, expected: bool) -> None:
    assert build(instruction_id, kwargs, None)(response) is expected


def test_every_registered_checker_has_a_passing_and_a_failing_case() -> None:
    seen: dict[str, set[bool]] = {}
    for instruction_id, _kwargs, _response, expected in CASES:
        seen.setdefault(instruction_id, set()).add(expected)
    untested = sorted(
        set(CHECKERS) - {"words:start_verb"} - {i for i, v in seen.items() if v == {True, False}}
    )
    assert untested == []
    assert len(CHECKERS) == 25 + 58


def test_registry_covers_every_id_in_the_benchmark_data(shared_data) -> None:
    def ids(path):
        with open(path, encoding="utf-8") as handle:
            return {
                i
                for line in handle
                if line.strip()
                for i in json.loads(line)["instruction_id_list"]
            }

    ifeval = ids(shared_data / "ifeval" / "input_data.jsonl")
    ifbench = ids(shared_data / "ifbench" / "IFBench_test.jsonl")
    assert (len(ifeval), len(ifbench)) == (25, 58)
    assert ifeval | ifbench == set(CHECKERS)


def test_sentence_splitter_protects_abbreviations_and_decimals() -> None:
    assert split_into_sentences("Mr. Smith paid 3.50 dollars. He left!") == [
        "Mr. Smith paid 3.50 dollars.",
        "He left!",
    ]
    assert split_into_sentences("Wait... what?") == ["Wait...", "what?"]


def test_loose_variants_follow_the_official_order() -> None:
    assert loose_variants("*a*\nb\nc") == [
        "*a*\nb\nc",
        "a\nb\nc",
        "b\nc",
        "*a*\nb",
        "b",
        "b\nc",
        "a\nb",
        "b",
    ]


def test_loose_accepts_a_response_with_a_preamble_line() -> None:
    verdicts = evaluate('Sure, here it is:\n"quoted answer"', ["startend:quotation"], [None])
    assert (verdicts.strict, verdicts.loose) == ([False], [True])
    assert (verdicts.prompt_strict, verdicts.prompt_loose) == (False, True)


def test_blank_response_follows_nothing() -> None:
    verdicts = evaluate("   ", ["punctuation:no_comma"], [{}])
    assert (verdicts.strict, verdicts.loose) == ([False], [False])


def test_missing_or_invalid_kwargs_are_instruction_errors() -> None:
    with pytest.raises(InstructionError, match="num_words"):
        build("length_constraints:number_words", {"relation": "at least", "num_words": None}, None)
    with pytest.raises(InstructionError, match="relation"):
        build("length_constraints:number_words", {"relation": "exactly", "num_words": 3}, None)
    with pytest.raises(InstructionError, match="unknown instruction id 'no:such'"):
        build("no:such", {}, None)


def test_repeat_prompt_falls_back_to_the_record_prompt() -> None:
    assert build("combination:repeat_prompt", {}, "Say hi")("Say hi. Hi!") is True
    with pytest.raises(InstructionError, match="prompt_to_repeat"):
        build("combination:repeat_prompt", {}, None)


def test_start_verb_without_tagger_is_a_clear_per_instruction_error(monkeypatch) -> None:
    monkeypatch.setattr(nltk_setup, "is_available", lambda name: False)
    with pytest.raises(ResourceMissing, match="averaged_perceptron_tagger_eng"):
        build("words:start_verb", {}, None)
    verdicts = evaluate("Run now.", ["words:start_verb", "punctuation:no_comma"], [None, None])
    assert verdicts.strict == [None, True]
    assert verdicts.prompt_strict is False
    assert "python -m nltk.downloader averaged_perceptron_tagger_eng" in verdicts.errors[0]


# ---- the verifier contract ----


def _record(ids, kwargs, **extra):
    return {"ground_truth": {"instruction_id_list": ids, "kwargs": kwargs}, **extra}


def test_aliases_build_the_same_verifier() -> None:
    for name in ("instruction_following", "ifeval", "ifbench"):
        assert isinstance(get_verifier(name), InstructionFollowingVerifier)


def test_official_layout_with_null_kwargs_and_none_values() -> None:
    record = _record(
        ["punctuation:no_comma", "length_constraints:number_words"],
        [None, {"num_words": 2, "relation": "at least", "keyword": None}],
    )
    result = get_verifier("ifeval").verify("<think>plan, plan</think>two words", record)
    assert (result.score, result.passed, result.error) == (1.0, True, None)
    assert result.details["strict"] == [True, True]
    assert result.details["prompt_strict"] is True
    assert result.details["instruction_id_list"] == [
        "punctuation:no_comma",
        "length_constraints:number_words",
    ]


def test_allenai_layout_as_json_string() -> None:
    truth = json.dumps(
        [
            {
                "instruction_id": ["length_constraints:number_sentences"],
                "kwargs": [{"num_sentences": 2, "relation": "at least"}],
            },
            {
                "instruction_id": ["keywords:existence"],
                "kwargs": [{"keywords": ["forest", "river"]}],
            },
        ]
    )
    verifier = get_verifier("instruction_following")
    result = verifier.verify("The forest is green. The river is cold.", {"ground_truth": truth})
    assert result.passed and result.details["strict"] == [True, True]
    result = verifier.verify("The forest is green.", {"ground_truth": truth})
    assert not result.passed and result.details["strict"] == [False, False]


def test_score_follows_loose_when_the_record_asks() -> None:
    record = _record(["startend:quotation"], [None])
    answer = 'Here you go:\n"quoted"'
    assert get_verifier("ifeval").verify(answer, record).score == 0.0
    loose = get_verifier("ifeval").verify(answer, {**record, "meta": {"loose": True}})
    assert (loose.score, loose.details["prompt_strict"], loose.details["prompt_loose"]) == (
        1.0,
        False,
        True,
    )


def test_prompt_is_taken_from_the_last_user_message() -> None:
    record = _record(["combination:repeat_prompt"], [None])
    record["prompt"] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Name a color."},
    ]
    assert get_verifier("ifeval").verify("Name a color. Blue.", record).passed
    record["meta"] = {"prompt": "Name a fruit."}
    assert not get_verifier("ifeval").verify("Name a color. Blue.", record).passed


def test_unknown_instruction_id_is_a_result_error_not_an_exception() -> None:
    result = get_verifier("ifbench").verify("text", _record(["made:up"], [None]))
    assert (result.score, result.passed) == (0.0, False)
    assert "made:up" in result.error


def test_malformed_ground_truth_is_a_cascade_error() -> None:
    verifier = get_verifier("ifeval")
    with pytest.raises(CascadeError, match="ground_truth"):
        verifier.verify("x", {"ground_truth": "not json"})
    with pytest.raises(CascadeError, match="func_name"):
        verifier.verify("x", {"ground_truth": {"func_name": "verify_bullet_points", "N": 3}})
    with pytest.raises(CascadeError) as excinfo:
        verifier.verify("x", _record(["punctuation:no_comma"], [None, None]))
    assert excinfo.value.field == "ground_truth.kwargs"
    with pytest.raises(CascadeError) as excinfo:
        verifier.verify("x", {"ground_truth": [{"instruction_id": 5, "kwargs": []}]})
    assert excinfo.value.field == "ground_truth[0]"


def test_single_group_and_ground_truth_prompt_are_accepted() -> None:
    verifier = get_verifier("ifeval")
    group = {"instruction_id": ["combination:repeat_prompt"], "kwargs": [{}]}
    assert verifier.verify(
        "Name a color. Red.", {"ground_truth": group, "prompt": "Name a color."}
    ).passed
    truth = json.dumps(
        {
            "instruction_id_list": ["combination:repeat_prompt"],
            "kwargs": [None],
            "prompt": "Hi there",
        }
    )
    assert verifier.verify("Hi there. Hello!", {"ground_truth": truth, "prompt": "Other"}).passed


# ---- NLTK data lookup ----


def test_missing_nltk_data_says_how_to_get_it(monkeypatch, tmp_path) -> None:
    import nltk

    monkeypatch.setenv("NLTK_DATA", str(tmp_path))
    monkeypatch.delenv(nltk_setup.DOWNLOAD_OPT_IN_ENV, raising=False)
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    nltk_setup.forget()
    try:
        with pytest.raises(CascadeError) as excinfo:
            nltk_setup.ensure("punkt_tab", "stopwords")
        assert "python -m nltk.downloader punkt_tab stopwords" in str(excinfo.value)
        assert excinfo.value.field == "NLTK_DATA"
    finally:
        nltk_setup.forget()


def test_download_happens_only_when_opted_in(monkeypatch, tmp_path) -> None:
    import nltk

    calls: list[str] = []
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    monkeypatch.setenv("NLTK_DATA", str(tmp_path))
    monkeypatch.setattr(nltk, "download", lambda name, quiet=True: calls.append(name))
    nltk_setup.forget()
    try:
        monkeypatch.delenv(nltk_setup.DOWNLOAD_OPT_IN_ENV, raising=False)
        with pytest.raises(CascadeError):
            nltk_setup.ensure("stopwords")
        assert calls == []
        monkeypatch.setenv(nltk_setup.DOWNLOAD_OPT_IN_ENV, "1")
        with pytest.raises(CascadeError):  # the fake download fetched nothing
            nltk_setup.ensure("stopwords")
        assert calls == ["stopwords"]
    finally:
        nltk_setup.forget()


def test_nltk_data_env_var_is_honoured(shared_data, monkeypatch) -> None:
    monkeypatch.setenv("NLTK_DATA", str(shared_data / "nltk_data"))
    nltk_setup.forget()
    nltk_setup.ensure("punkt_tab", "stopwords", allow_download=False)


def test_verifier_modules_stay_torch_free() -> None:
    code = (
        "import sys, cascade.verifiers.instruction_following, cascade.verifiers.ifcheck.parity;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers')];"
        "assert not bad, bad"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_checker_without_sentence_tables_raises_the_how_to_error(monkeypatch, tmp_path) -> None:
    import nltk

    from cascade.verifiers.ifcheck import text

    monkeypatch.setenv("NLTK_DATA", str(tmp_path))
    monkeypatch.delenv(nltk_setup.DOWNLOAD_OPT_IN_ENV, raising=False)
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    nltk_setup.forget()
    text._punkt.cache_clear()
    record = _record(
        ["length_constraints:number_sentences"], [{"num_sentences": 1, "relation": "at least"}]
    )
    try:
        with pytest.raises(CascadeError, match="python -m nltk.downloader punkt_tab"):
            get_verifier("ifeval").verify("One. Two.", record)
    finally:
        nltk_setup.forget()
        text._punkt.cache_clear()


def test_verifier_pickles_for_worker_processes() -> None:
    verifier = pickle.loads(pickle.dumps(get_verifier("ifbench")))
    assert verifier.verify("a b", _record(["punctuation:no_comma"], [None])).passed


def test_language_detection_leaves_the_global_random_state_alone() -> None:
    import random

    check = build("language:response_language", {"language": "de"}, None)
    random.seed(7)
    expected = random.random()
    random.seed(7)
    assert check("Das ist ein kurzer deutscher Satz über das Wetter von heute.") is True
    assert random.random() == expected

"""IFBench instructions about words, sentences and counts (``count:``, ``ratio:``,
``words:``, ``sentence:``), checked the way allenai's IFBench evaluation does.

Where the official rule has a quirk that decides verdicts (which punctuation is stripped,
whether raw or cleaned words are compared), the quirk is kept and marked.
"""

from __future__ import annotations

import collections
import re
import string

from cascade.verifiers import nltk_setup
from cascade.verifiers.ifcheck import text
from cascade.verifiers.ifcheck.registry import Args, Check, ResourceMissing, checker


@checker("count:word_count_range")
def word_count_range(args: Args) -> Check:
    low, high = args.integer("min_words"), args.integer("max_words")
    return lambda value: low <= text.count_words(value) <= high


@checker("count:unique_word_count")
def unique_word_count(args: Args) -> Check:
    needed = args.integer("N")
    return (
        lambda value: len({w.strip(text.PUNCT_AND_SPACE) for w in value.lower().split()}) >= needed
    )


@checker("ratio:stop_words")
def stop_words(args: Args) -> Check:
    percentage = args.integer("percentage")

    def check(value: str) -> bool:
        tokens = re.findall(r"\w+", value)
        if not tokens:  # the official checker divides by zero here
            return False
        stopwords = text.english_stopwords()
        share = sum(1 for t in tokens if t.lower() in stopwords) / len(tokens) * 100
        return share <= percentage

    return check


def _sentence_endings(value: str) -> collections.Counter[str]:
    return collections.Counter(
        s[-1] for s in text.split_into_sentences(value) if s and s[-1] in ".?!"
    )


@checker("ratio:sentence_type")
def sentence_type(args: Args) -> Check:
    def check(value: str) -> bool:
        endings = _sentence_endings(value)
        return endings["."] == 2 * endings["?"]

    return check


@checker("ratio:sentence_balance")
def sentence_balance(args: Args) -> Check:
    def check(value: str) -> bool:
        endings = _sentence_endings(value)
        return endings["."] == endings["?"] == endings["!"]

    return check


_CONJUNCTIONS = frozenset({"and", "but", "for", "nor", "or", "so", "yet"})


@checker("count:conjunctions")
def conjunctions(args: Args) -> Check:
    needed = args.integer("small_n")

    # Official quirk: the raw tokens are deduplicated, so "And" and "and," count as two.
    def check(value: str) -> bool:
        found = {w for w in value.split() if w.strip(text.PUNCT_AND_SPACE).lower() in _CONJUNCTIONS}
        return len(found) >= needed

    return check


PERSON_NAMES = (
    "Emma Liam Sophia Jackson Olivia Noah Ava Lucas Isabella Mason Mia Ethan Charlotte Alexander "
    "Amelia Benjamin Harper Leo Zoe Daniel Chloe Samuel Lily Matthew Grace Owen Abigail Gabriel "
    "Ella Jacob Scarlett Nathan Victoria Elijah Layla Nicholas Audrey David Hannah Christopher "
    "Penelope Thomas Nora Andrew Aria Joseph Claire Ryan Stella Jonathan"
).split()


@checker("count:person_names")
def person_names(args: Args) -> Check:
    needed = args.integer("N")
    # Substring matching, as in the official checker ("Leo" is found in "Leonard").
    return lambda value: sum(1 for name in PERSON_NAMES if name in value) >= needed


@checker("ratio:overlap")
def overlap(args: Args) -> Check:
    reference = args.text("reference_text")
    percentage = args.integer("percentage")
    reference_trigrams = {reference[i : i + 3] for i in range(len(reference) - 2)}

    # Official rule: character trigrams (nltk.ngrams over a string), share of the response's.
    def check(value: str) -> bool:
        trigrams = {value[i : i + 3] for i in range(len(value) - 2)}
        if not trigrams:
            return False
        share = len(trigrams & reference_trigrams) / len(trigrams) * 100
        return percentage - 2 <= share <= percentage + 2

    return check


@checker("count:numbers")
def numbers(args: Args) -> Check:
    wanted = args.integer("N")
    return lambda value: len(re.findall(r"\d+", text.drop_punctuation(value))) == wanted


@checker("words:alphabet")
def alphabet(args: Args) -> Check:
    letters = string.ascii_lowercase

    def check(value: str) -> bool:
        words = text.drop_punctuation(value).strip(text.PUNCT_AND_SPACE).split()
        if not words or words[0][0].lower() not in letters:
            return False
        expected = words[0][0].lower()
        for word in words[1:]:
            expected = letters[(letters.index(expected) + 1) % 26]
            if word.lower()[0] != expected:
                return False
        return True

    return check


@checker("words:vowel")
def vowel(args: Args) -> Check:
    def check(value: str) -> bool:
        lines = value.strip().split("\n")
        return len(lines) == 1 and len(set(lines[0].lower()) & set("aeiou")) <= 3

    return check


_CONSONANTS = frozenset("bcdfghjklmnpqrstvwxyz")


@checker("words:consonants")
def consonants(args: Args) -> Check:
    def has_cluster(word: str) -> bool:
        return any(
            a in _CONSONANTS and b in _CONSONANTS for a, b in zip(word, word[1:], strict=False)
        )

    return lambda value: all(has_cluster(w) for w in value.lower().split())


@checker("sentence:alliteration_increment")
def alliteration_increment(args: Args) -> Check:
    def run_length(sentence: str) -> int:
        # Official measure: +2 when a pair of neighbours starts a run, +1 for each extension.
        words = [w.lstrip(text.PUNCT_AND_SPACE) for w in sentence.lower().split()]
        words = [w for w in words if w]
        total, in_run = 0, False
        for a, b in zip(words, words[1:], strict=False):
            if a[0] == b[0]:
                total += 1 if in_run else 2
                in_run = True
            else:
                in_run = False
        return total

    def check(value: str) -> bool:
        previous = -1
        for sentence in text.split_into_sentences(value):
            current = run_length(sentence)
            if current <= previous:
                return False
            previous = current
        return True

    return check


@checker("words:palindrome")
def palindrome(args: Args) -> Check:
    def check(value: str) -> bool:
        words = text.drop_punctuation(value).lower().split()
        return sum(1 for w in words if len(w) >= 5 and w == w[::-1]) >= 10

    return check


@checker("words:prime_lengths")
def prime_lengths(args: Args) -> Check:
    def is_prime(n: int) -> bool:
        return n >= 2 and all(n % d for d in range(2, int(n**0.5) + 1))

    # The official list of primes stops at 97; no real word is that long.
    return lambda value: all(
        is_prime(len(w)) and len(w) < 100 for w in text.drop_punctuation(value).split()
    )


@checker("count:words_japanese")
def words_japanese(args: Args) -> Check:
    every = args.integer("N", minimum=1)
    japanese = re.compile("[\u3040-\u30ff\u4e00-\u9fff]")

    # Every Nth whitespace token must hold a Japanese character; digits are exempt.
    def check(value: str) -> bool:
        for position, word in enumerate(value.split(), start=1):
            word = word.strip(text.PUNCT_AND_SPACE)
            if position % every == 0 and word and not word.isdigit() and not japanese.search(word):
                return False
        return True

    return check


@checker("words:start_verb")
def start_verb(args: Args) -> Check:
    if not nltk_setup.is_available("averaged_perceptron_tagger_eng"):
        raise ResourceMissing(
            f"{args.instruction_id} needs NLTK's POS tagger: "
            + nltk_setup.missing_message(["averaged_perceptron_tagger_eng"])
        )
    import nltk

    def check(value: str) -> bool:
        tokens = text.word_tokenize(value)
        return bool(tokens) and "VB" in nltk.pos_tag(tokens)[0][1]

    return check


@checker("words:repeats")
def repeats(args: Args) -> Check:
    limit = args.integer("small_n")

    def check(value: str) -> bool:
        counts = collections.Counter(text.drop_punctuation(value.lower()).split())
        return all(c <= limit for c in counts.values())

    return check


@checker("sentence:keyword")
def sentence_keyword(args: Args) -> Check:
    keyword = args.text("word").lower()
    position = args.integer("N", minimum=1)

    def check(value: str) -> bool:
        sentences = text.split_into_sentences(value)
        return len(sentences) >= position and keyword in sentences[position - 1].lower()

    return check


_PRONOUNS = frozenset(
    "i me my mine myself we us our ours ourselves you your yours yourself yourselves he him his "
    "himself she her hers herself it its itself they them their theirs themselves".split()
)


@checker("count:pronouns")
def pronouns(args: Args) -> Check:
    needed = args.integer("N")

    def check(value: str) -> bool:
        words = text.drop_punctuation(value.replace("/", " ").lower()).split()
        return sum(1 for w in words if w in _PRONOUNS) >= needed

    return check


@checker("words:odd_even_syllables")
def odd_even_syllables(args: Args) -> Check:
    import syllapy

    def check(value: str) -> bool:
        parities = [syllapy.count(w) % 2 for w in text.drop_punctuation(value).lower().split()]
        return all(a != b for a, b in zip(parities, parities[1:], strict=False))

    return check


@checker("words:last_first")
def last_first(args: Args) -> Check:
    def check(value: str) -> bool:
        sentences = text.split_into_sentences(value)
        for current, following in zip(sentences, sentences[1:], strict=False):
            tail = current.rstrip(text.PUNCT_AND_SPACE).split()
            head = following.lstrip(text.PUNCT_AND_SPACE).split()
            if not tail or not head or tail[-1].lower() != head[0].lower():
                return False
        return True

    return check


@checker("words:paragraph_last_first")
def paragraph_last_first(args: Args) -> Check:
    def check(value: str) -> bool:
        for line in value.split("\n"):
            line = line.strip().lower()
            if not line:
                continue
            words = line.strip(text.PUNCT_AND_SPACE).split()
            if not words or words[0] != words[-1]:
                return False
        return True

    return check


@checker("sentence:increment")
def increment(args: Args) -> Check:
    step = args.integer("small_n")

    def check(value: str) -> bool:
        counts = [len(text.drop_punctuation(s).split()) for s in text.split_into_sentences(value)]
        if not counts:
            return False
        return all(b == a + step for a, b in zip(counts, counts[1:], strict=False))

    return check


@checker("words:no_consecutive")
def no_consecutive(args: Args) -> Check:
    def check(value: str) -> bool:
        words = text.drop_punctuation(value.lower()).split()
        return all(a[0] != b[0] for a, b in zip(words, words[1:], strict=False))

    return check


@checker("count:keywords_multiple")
def keywords_multiple(args: Args) -> Check:
    wanted = [
        (args.text(f"keyword{i}").strip().lower(), n)
        for i, n in zip(range(1, 6), (1, 2, 3, 5, 7), strict=False)
    ]

    # Plain substring counts, case-insensitive, as in the official checker.
    return lambda value: all(value.lower().count(k) == n for k, n in wanted)


@checker("words:keywords_specific_position")
def keywords_specific_position(args: Args) -> Check:
    keyword = args.text("keyword").strip()
    sentence_no = args.integer("n", minimum=1)
    word_no = args.integer("m", minimum=1)

    def check(value: str) -> bool:
        sentences = text.split_into_sentences(value)
        if len(sentences) < sentence_no:
            return False
        words = text.word_tokenize(sentences[sentence_no - 1])
        return len(words) >= word_no and words[word_no - 1] == keyword

    return check


@checker("words:words_position")
def words_position(args: Args) -> Check:
    keyword = args.text("keyword").strip()

    def check(value: str) -> bool:
        words = text.word_tokenize(value)
        return len(words) >= 2 and words[1] == words[-2] == keyword

    return check

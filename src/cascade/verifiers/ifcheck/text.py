"""Text measurements shared by the IFEval and IFBench checkers.

The official checkers count words, sentences and tokens in three different ways (a ``\\w+``
regex, NLTK's Punkt model, and a hand-written regex sentence splitter); parity needs each one
reproduced exactly, so every helper here names the official rule it follows.
"""

from __future__ import annotations

import re
import string
from functools import lru_cache

from cascade.verifiers import nltk_setup

PUNCTUATION = string.punctuation
PUNCT_AND_SPACE = PUNCTUATION + " "
_DROP_PUNCTUATION = str.maketrans("", "", PUNCTUATION)
_WORD_RE = re.compile(r"\w+")


def drop_punctuation(text: str) -> str:
    """Delete every ASCII punctuation character (``string.punctuation``)."""
    return text.translate(_DROP_PUNCTUATION)


def count_words(text: str) -> int:
    """Word count as the official checkers take it: runs of ``\\w`` characters."""
    return len(_WORD_RE.findall(text))


@lru_cache(maxsize=1)
def _punkt():
    nltk_setup.ensure("punkt_tab")
    from nltk.tokenize import PunktTokenizer

    return PunktTokenizer("english")


def count_sentences(text: str) -> int:
    """Sentence count by NLTK's English Punkt model (the official IFEval rule)."""
    return len(_punkt().tokenize(text))


@lru_cache(maxsize=1)
def _treebank():
    from nltk.tokenize import NLTKWordTokenizer

    return NLTKWordTokenizer()


def word_tokenize(text: str) -> list[str]:
    """``nltk.word_tokenize``: Punkt sentences, then Treebank-style tokens in each.

    Rebuilt from nltk's public pieces so the Punkt tables are loaded once (nltk's own
    function keeps a second private copy).
    """
    words = _treebank()
    return [token for sentence in _punkt().tokenize(text) for token in words.tokenize(sentence)]


@lru_cache(maxsize=1)
def english_stopwords() -> frozenset[str]:
    nltk_setup.ensure("stopwords")
    from nltk.corpus import stopwords

    return frozenset(stopwords.words("english"))


# The official regex sentence splitter protects abbreviations, decimals, acronyms and web
# suffixes with a "<prd>" marker, then cuts after . ? ! and turns the markers back into dots.
_ALPHA = "([A-Za-z])"
_TITLES = re.compile("(Mr|St|Mrs|Ms|Dr)[.]")
_WEB_SUFFIX = re.compile("[.](com|net|org|io|gov|edu|me)")
_DECIMAL = re.compile("([0-9])[.]([0-9])")
_DOT_RUN = re.compile(r"\.{2,}")
_STARTERS = (
    r"(Mr|Mrs|Ms|Dr|Prof|Capt|Cpt|Lt|He\s|She\s|It\s|They\s|Their\s|Our\s|We\s|But\s"
    r"|However\s|That\s|This\s|Wherever)"
)
_LONE_INITIAL = re.compile(r"\s" + _ALPHA + "[.] ")
_ACRONYM_THEN_STARTER = re.compile("([A-Z][.][A-Z][.](?:[A-Z][.])?) " + _STARTERS)
_THREE_INITIALS = re.compile(_ALPHA + "[.]" + _ALPHA + "[.]" + _ALPHA + "[.]")
_TWO_INITIALS = re.compile(_ALPHA + "[.]" + _ALPHA + "[.]")
_SUFFIX_THEN_STARTER = re.compile(" (Inc|Ltd|Jr|Sr|Co)[.] " + _STARTERS)
_SUFFIX = re.compile(" (Inc|Ltd|Jr|Sr|Co)[.]")
_SPACE_INITIAL = re.compile(" " + _ALPHA + "[.]")


def split_into_sentences(text: str) -> list[str]:
    """The official regex sentence splitter (IFEval/IFBench ``split_into_sentences``)."""
    text = " " + text + "  "
    text = text.replace("\n", " ")
    text = _TITLES.sub("\\1<prd>", text)
    text = _WEB_SUFFIX.sub("<prd>\\1", text)
    text = _DECIMAL.sub("\\1<prd>\\2", text)
    text = _DOT_RUN.sub(lambda m: "<prd>" * len(m.group(0)) + "<stop>", text)
    if "Ph.D" in text:
        text = text.replace("Ph.D.", "Ph<prd>D<prd>")
    text = _LONE_INITIAL.sub(" \\1<prd> ", text)
    text = _ACRONYM_THEN_STARTER.sub("\\1<stop> \\2", text)
    text = _THREE_INITIALS.sub("\\1<prd>\\2<prd>\\3<prd>", text)
    text = _TWO_INITIALS.sub("\\1<prd>\\2<prd>", text)
    text = _SUFFIX_THEN_STARTER.sub(" \\1<stop> \\2", text)
    text = _SUFFIX.sub(" \\1<prd>", text)
    text = _SPACE_INITIAL.sub(" \\1<prd>", text)
    # Closing quotes move in front of the terminator so the cut lands after the quote.
    text = text.replace(".\u201d", "\u201d.").replace('."', '".')
    text = text.replace('!"', '"!').replace('?"', '"?')
    for mark in ".?!":
        text = text.replace(mark, mark + "<stop>")
    text = text.replace("<prd>", ".")
    sentences = [s.strip() for s in text.split("<stop>")]
    if sentences and not sentences[-1]:
        sentences.pop()
    return sentences

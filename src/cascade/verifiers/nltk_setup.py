"""Find the NLTK data packages the instruction-following checkers need, without surprises.

NLTK keeps its models outside the wheel (sentence tables, stop-word lists, the POS tagger), and
its own ``nltk.download`` reaches for the network, which must never happen silently during
training or evaluation. The lookup order is:

1. the folders named by the ``NLTK_DATA`` environment variable (read at every lookup, so a
   variable set after ``import nltk`` still counts), then NLTK's default search path;
2. no PyPI package ships ``punkt_tab``/``stopwords`` as data (checked: ``nltkdata`` is empty,
   ``nltk-punkt`` downloads at install time), so there is no packaged fallback;
3. ``nltk.download`` only when the caller asks for it (``allow_download=True``) or the user
   opted in with ``CASCADE_NLTK_DOWNLOAD=1``.

When a package is still missing, a CascadeError says exactly how to get it.
"""

from __future__ import annotations

import os

from cascade.errors import CascadeError

# NLTK name -> the path nltk.data.find resolves for it.
RESOURCE_PATHS: dict[str, str] = {
    "punkt_tab": "tokenizers/punkt_tab/english/",
    "stopwords": "corpora/stopwords/english",
    "averaged_perceptron_tagger_eng": "taggers/averaged_perceptron_tagger_eng/",
}

DOWNLOAD_OPT_IN_ENV = "CASCADE_NLTK_DOWNLOAD"
MISSING_FIELD = "NLTK_DATA"  # the field of the CascadeError for missing data (tests skip on it)


def _sync_search_path() -> None:
    """Put every ``NLTK_DATA`` folder at the front of NLTK's search path (idempotent)."""
    import nltk

    folders = [p for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
    for folder in reversed(folders):
        if folder not in nltk.data.path:
            nltk.data.path.insert(0, folder)


def is_available(name: str) -> bool:
    """True when the NLTK data package ``name`` can be loaded from disk right now."""
    import nltk

    _sync_search_path()
    try:
        nltk.data.find(RESOURCE_PATHS[name])
    except LookupError:
        return False
    return True


def missing_message(names: list[str]) -> str:
    listed = " ".join(names)
    return (
        f"NLTK data not found: {', '.join(names)}. Get it with "
        f"`python -m nltk.downloader {listed}` (or point NLTK_DATA at a folder that holds it; "
        f"set {DOWNLOAD_OPT_IN_ENV}=1 to let cascade download it)"
    )


def ensure(*names: str, allow_download: bool | None = None) -> None:
    """Make sure the NLTK data packages ``names`` are present; raise CascadeError if not.

    Downloads only when ``allow_download`` is True, or when it is None and the user set
    ``CASCADE_NLTK_DOWNLOAD=1``.
    """
    unknown = [n for n in names if n not in RESOURCE_PATHS]
    if unknown:
        raise ValueError(f"unknown NLTK resource(s): {unknown}")
    missing = [n for n in names if not _known_present(n)]
    if not missing:
        return
    if allow_download is None:
        allow_download = os.environ.get(DOWNLOAD_OPT_IN_ENV, "") == "1"
    if allow_download:
        import nltk

        for name in missing:
            nltk.download(name, quiet=True)
        missing = [n for n in missing if not _known_present(n)]
    if missing:
        raise CascadeError(missing_message(missing), field=MISSING_FIELD)


# Only hits are remembered: a miss is looked up again, so installing the data mid-run works.
_PRESENT: set[str] = set()


def _known_present(name: str) -> bool:
    if name not in _PRESENT and is_available(name):
        _PRESENT.add(name)
    return name in _PRESENT


def forget() -> None:
    """Drop remembered lookups (after NLTK_DATA changed, for example)."""
    _PRESENT.clear()

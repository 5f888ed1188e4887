"""Shared fixtures.

Tests read public benchmark data from ../shared/data (never copied into the repo) and build
their tiny models locally; nothing is downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

# The IF verifiers need NLTK's sentence tables; the shared copy stands in for a user's install.
# Without either, the tests that reach for them skip (see pytest_runtest_call below).
if "NLTK_DATA" not in os.environ and (SHARED_DATA / "nltk_data").is_dir():
    os.environ["NLTK_DATA"] = str(SHARED_DATA / "nltk_data")

# Spinning OpenMP threads make torch crawl when other test processes share the cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Never reach for a hub during tests.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared benchmark data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """One randomly initialised tiny model + tokenizer per test session."""
    from cascade.models import init_model

    return init_model(tmp_path_factory.mktemp("tiny-model") / "model", size="tiny", seed=0)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """A test stopped by the verifiers' own "NLTK data not found" error skips with that
    error as its reason (which says how to get the data): NLTK keeps its tables outside
    its wheel, no PyPI or Debian package ships them, and a fresh machine has no network to
    fetch them. With the data present (NLTK_DATA, NLTK's default folders, or the shared
    copy above) these tests run."""
    from cascade.errors import CascadeError
    from cascade.verifiers.nltk_setup import MISSING_FIELD

    try:
        return (yield)
    except CascadeError as exc:
        if exc.field != MISSING_FIELD:
            raise
        pytest.skip(exc.message)

"""Shared fixtures for ingest tests: where the real corpora live."""

from __future__ import annotations

from pathlib import Path

import pytest

CORPORA = Path(__file__).resolve().parents[3].parent / "shared" / "corpora"


def corpus_root() -> Path:
    """../shared/corpora relative to the repository root; fails loudly when it is missing."""
    if not (CORPORA / "README.md").is_file():
        raise RuntimeError(f"the shared corpora are missing: expected {CORPORA}/README.md")
    return CORPORA


@pytest.fixture(scope="session")
def corpora() -> Path:
    """The directory holding nav-formio/, va-jsonschema/ and bcgov-fla-surveyjs/."""
    return corpus_root()

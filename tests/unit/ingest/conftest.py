"""Shared fixtures for ingest tests: where the real corpora live."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from ingest import FormDefinition, import_definition, parse_document

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


@cache
def raw_document(path: Path) -> Any:
    """The corpus file as plain JSON, read once per test run."""
    return json.loads(path.read_bytes())


@cache
def imported(path: Path) -> FormDefinition:
    """The corpus file imported with its detected format, once per test run."""
    return import_definition(parse_document(path.read_bytes()))

"""What ../shared holds for tests and benchmarks: the real corpora (each file read and imported once per
process, however many checks use it) and the Qdrant server binary built from source."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from app.formversions.bulk import read_manifest
from ingest import FormDefinition, import_definition, parse_document

CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
FOLDERS = ("nav-formio", "va-jsonschema", "bcgov-fla-surveyjs")
# The Qdrant server 1.18.2 built from source beside the corpora (../shared/qdrant, see its README).
QDRANT_BINARY = CORPORA.parent / "qdrant" / "bin" / "qdrant"


def corpus_root() -> Path:
    """../shared/corpora beside the repository; fails loudly when it is missing."""
    if not (CORPORA / "README.md").is_file():
        raise RuntimeError(f"the shared corpora are missing: expected {CORPORA}/README.md")
    return CORPORA


def corpus_files(*patterns: str) -> list[Path]:
    """The files matching each glob pattern (relative to the corpora), each pattern's sorted."""
    root = corpus_root()
    return [path for pattern in patterns for path in sorted(root.glob(pattern))]


@cache
def manifest(folder: str) -> tuple[dict[str, Any], ...]:
    """The rows of a corpus folder's manifest.jsonl, as `pageforge ingest` reads them."""
    return tuple(read_manifest(corpus_root() / folder / "manifest.jsonl"))


@cache
def raw_document(path: Path) -> Any:
    """The corpus file as plain JSON."""
    return json.loads(path.read_bytes())


@cache
def imported(path: Path, key: str | None = None) -> FormDefinition:
    """The corpus file imported with its detected format (under `key` when given)."""
    if key is None:
        return import_definition(parse_document(path.read_bytes()))
    return import_definition(raw_document(path), key=key)

"""Import, hash and diff the whole real corpora; print forms/s per corpus and overall.

"all" is import + hash + diff (along the manifest revision edges) over a whole folder. Baseline,
measured in the same run: plain `json.loads` of the same bytes, so "Nx" reads as "costs N times
parsing". Run: .venv/bin/python bench/bench_ingest_corpus.py
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ingest import FormDefinition, content_hash, diff_definitions, import_definition, parse_document
from tests.corpora import CORPORA, manifest

FOLDERS = ("nav-formio", "bcgov-fla-surveyjs", "va-jsonschema")


@dataclass
class Figures:
    forms: int = 0
    edges: int = 0
    non_empty_diffs: int = 0
    parse_seconds: float = 0.0
    import_seconds: float = 0.0
    hash_seconds: float = 0.0
    diff_seconds: float = 0.0

    @property
    def pipeline_seconds(self) -> float:
        return self.import_seconds + self.hash_seconds + self.diff_seconds


def measure(folder: Path) -> Figures:
    figures = Figures()
    raws = {path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*.json"))}
    started = time.perf_counter()
    for raw in raws.values():
        json.loads(raw)
    figures.parse_seconds = time.perf_counter() - started

    definitions: dict[str, FormDefinition] = {}
    started = time.perf_counter()
    for name, raw in raws.items():
        definitions[name] = import_definition(parse_document(raw))
    figures.import_seconds = time.perf_counter() - started
    figures.forms = len(definitions)

    started = time.perf_counter()
    for defn in definitions.values():
        content_hash(defn)
    figures.hash_seconds = time.perf_counter() - started

    edges = [(row["prev_file"], row["file"]) for row in manifest(folder.name) if row.get("prev_file")]
    started = time.perf_counter()
    for old, new in edges:
        if not diff_definitions(definitions[old], definitions[new]).is_empty:
            figures.non_empty_diffs += 1
    figures.diff_seconds = time.perf_counter() - started
    figures.edges = len(edges)
    return figures


def report(name: str, f: Figures) -> str:
    diffs_per_second = f.edges / f.diff_seconds if f.diff_seconds else 0.0
    return (
        f"{name:<20} {f.forms:>5} forms {f.edges:>4} edges ({f.non_empty_diffs} non-empty diffs) | "
        f"import {f.forms / f.import_seconds:6.0f}/s  hash {f.forms / f.hash_seconds:6.0f}/s  "
        f"diff {diffs_per_second:6.0f} edges/s | all {f.forms / f.pipeline_seconds:5.0f} forms/s "
        f"= {f.pipeline_seconds / f.parse_seconds:5.1f}x the json.loads baseline"
    )


def main() -> int:
    if not CORPORA.is_dir():
        print(f"corpora not found at {CORPORA}", file=sys.stderr)
        return 1
    total = Figures()
    for folder in FOLDERS:
        figures = measure(CORPORA / folder)
        print(report(folder, figures))
        for name in ("forms", "edges", "non_empty_diffs"):
            setattr(total, name, getattr(total, name) + getattr(figures, name))
        for name in ("parse_seconds", "import_seconds", "hash_seconds", "diff_seconds"):
            setattr(total, name, getattr(total, name) + getattr(figures, name))
    print(report("overall", total))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Diff throughput along every corpus revision edge, and how long layout_text is next to the raw JSON.

Diffs: every manifest row with `prev_file`, both sides imported beforehand (import is not timed).
Baseline, measured in the same run: comparing the two definitions' JSON dumps (`model_dump` and `==`),
the cheapest "did anything change" answer, so "Nx" reads as "a full structural diff costs N times
that". Layout text: mean length of `layout_text` (default bound 2000 chars) against the raw file and
against compact JSON of the same document, over the latest forms of each corpus.
Run: .venv/bin/python bench/bench_diff_text.py
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

from ingest import FormDefinition, diff_definitions, import_definition, layout_text
from tests.corpora import CORPORA, manifest

LATEST = {
    "nav-formio": "test-forms/*.json",
    "bcgov-fla-surveyjs": "current/*.json",
    "va-jsonschema": "current/*.json",
}
ROUNDS = 3


def revision_edges(folder: Path) -> list[tuple[FormDefinition, FormDefinition]]:
    """Both sides of every revision edge in the folder's manifest, imported."""
    rows = manifest(folder.name)
    loaded: dict[str, FormDefinition] = {}

    def load(file: str, key: str) -> FormDefinition:
        if file not in loaded:
            loaded[file] = import_definition(json.loads((folder / file).read_bytes()), key=key)
        return loaded[file]

    return [
        (load(r["prev_file"], r["form_key"]), load(r["file"], r["form_key"]))
        for r in rows
        if r.get("prev_file")
    ]


def best_seconds(work: list[tuple[FormDefinition, FormDefinition]], *, structural: bool) -> float:
    """The fastest of ROUNDS passes over all edges."""
    timings = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for old, new in work:
            if structural:
                diff_definitions(old, new)
            else:
                _ = old.model_dump(mode="json", exclude={"metadata"}) == new.model_dump(
                    mode="json", exclude={"metadata"}
                )
        timings.append(time.perf_counter() - started)
    return min(timings)


def main() -> int:
    if not (CORPORA / "README.md").is_file():
        print(f"corpora not found at {CORPORA}", file=sys.stderr)
        return 1
    print(f"{'corpus':<20} {'edges':>6} {'diffs/s':>9} {'vs dump==':>10} {'non-empty':>10}")
    all_edges: list[tuple[FormDefinition, FormDefinition]] = []
    for name in LATEST:
        edges = revision_edges(CORPORA / name)
        all_edges.extend(edges)
        diff_s, baseline_s = best_seconds(edges, structural=True), best_seconds(edges, structural=False)
        non_empty = sum(1 for old, new in edges if not diff_definitions(old, new).is_empty)
        speed, ratio = len(edges) / diff_s, diff_s / baseline_s
        print(f"{name:<20} {len(edges):>6} {speed:>9.0f} {ratio:>9.1f}x {non_empty:>10}")
    diff_s, baseline_s = best_seconds(all_edges, structural=True), best_seconds(all_edges, structural=False)
    print(f"{'all':<20} {len(all_edges):>6} {len(all_edges) / diff_s:>9.0f} {diff_s / baseline_s:>9.1f}x")

    print()
    header = ("corpus", "forms", "text chars", "raw chars", "text/raw", "text/compact")
    print("{:<20} {:>6} {:>11} {:>10} {:>9} {:>13}".format(*header))
    for name, pattern in LATEST.items():
        texts, raws, compacts = [], [], []
        for path in sorted((CORPORA / name).glob(pattern)):
            raw = path.read_text(encoding="utf-8")
            doc = json.loads(raw)
            texts.append(len(layout_text(import_definition(doc))))
            raws.append(len(raw))
            compacts.append(len(json.dumps(doc, separators=(",", ":"), ensure_ascii=False)))
        ratio_raw = statistics.mean(t / r for t, r in zip(texts, raws, strict=True))
        ratio_compact = statistics.mean(t / c for t, c in zip(texts, compacts, strict=True))
        print(
            f"{name:<20} {len(texts):>6} {statistics.mean(texts):>11.0f} {statistics.mean(raws):>10.0f} "
            f"{ratio_raw:>9.3f} {ratio_compact:>13.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

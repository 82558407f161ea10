"""Query latency and HNSW recall of the layout index adapters, on embeddings of corpus-derived layouts.

Run from the repository root: `python -m bench.bench_vector_index [--n 20000]`. Layout texts are built
from the field labels and titles of the real corpora (../shared/corpora), perturbed (labels dropped,
swapped, borrowed from other forms) so that each form has a family of near-duplicate layouts. Vectors
are encoded with the real model and cached under var/bench/. Figures are printed as p50 latencies and
as ratios against Qdrant Edge after optimize() (HNSW), measured in the same run; Qdrant Edge and the
Qdrant server hold the same N and are queried in turns. The recall target (>= 0.95) is printed with
"met" or "NOT met".
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from graph.server import free_port
from ingest.model import WidgetKind
from tests.corpora import CORPORA as DEFAULT_CORPORA
from tests.corpora import QDRANT_BINARY
from vectors.edge import EdgeLayoutIndex
from vectors.embedder import Embedder
from vectors.index import LayoutFilter, LayoutIndex, LayoutPoint
from vectors.qdrant_server import QdrantServerLayoutIndex
from vectors.server import LocalQdrantServer

REPO_ROOT = Path(__file__).resolve().parents[1]
CACHE_DIR = REPO_ROOT / "var" / "bench"
CORPUS_DIRS = ("nav-formio/test-forms", "va-jsonschema/current", "bcgov-fla-surveyjs/current")
TENANT = "bench"
OTHER_TENANT = "bench-other"
K = 10
WIDE_EF = 512
RECALL_TARGET = 0.95  # issue 19
WIDGETS = ("text", "textarea", "date", "select", "radio", "checkbox", "number", "email", "file", "yes_no")
WIDGET_KINDS = {kind.value for kind in WidgetKind}


@dataclass(frozen=True)
class FormLabels:
    form_key: str
    titles: list[str]
    fields: list[tuple[str, str]]


def _humanise(name: str) -> str:
    return re.sub(r"(?<=[a-z])(?=[A-Z])|_", " ", name).strip().capitalize()


def _walk(node: Any, titles: list[str], fields: list[tuple[str, str]]) -> None:
    if isinstance(node, dict):
        kind = node.get("type")
        widget = kind if isinstance(kind, str) else "text"
        is_page = "elements" in node or "components" in node
        for key in ("label", "title"):
            text = node.get(key)
            if isinstance(text, str) and 2 < len(text) <= 80 and "{" not in text:
                if is_page:
                    titles.append(text)
                else:
                    fields.append((widget, text))
        properties = node.get("properties")
        if kind == "object" and isinstance(
            properties, dict
        ):  # JSON Schema: property names are the only labels there are
            for name, schema in properties.items():
                kind = schema.get("type") if isinstance(schema, dict) else None
                fields.append((kind if isinstance(kind, str) else "text", _humanise(name)))
        for value in node.values():
            _walk(value, titles, fields)
    elif isinstance(node, list):
        for item in node:
            _walk(item, titles, fields)


def corpus_forms(corpora: Path) -> list[FormLabels]:
    """Each corpus form with its page titles and (widget, label) pairs, in document order."""
    forms = []
    for folder in CORPUS_DIRS:
        for path in sorted((corpora / folder).glob("*.json")):
            titles: list[str] = []
            fields: list[tuple[str, str]] = []
            _walk(json.loads(path.read_text(encoding="utf-8")), titles, fields)
            if len(fields) >= 4:
                form_key = f"{folder.split('/')[0]}:{path.stem}"
                forms.append(FormLabels(form_key, titles or [_humanise(path.stem)], fields))
    return forms


def layout_page(
    form: FormLabels, forms: list[FormLabels], rng: random.Random
) -> tuple[str, list[tuple[str, str]]]:
    """One perturbed page of `form`, (title, [(widget, label)]): a window of its fields, some dropped,
    swapped, borrowed from another form or given another widget."""
    size = rng.randint(3, 7)
    start = rng.randrange(max(1, len(form.fields) - size + 1))
    window = list(form.fields[start : start + size])
    window = [field for field in window if rng.random() > 0.15] or window[:1]
    if rng.random() < 0.3:
        other = rng.choice(forms)
        window.insert(rng.randrange(len(window) + 1), rng.choice(other.fields))
    if len(window) > 2 and rng.random() < 0.3:
        i = rng.randrange(len(window) - 1)
        window[i], window[i + 1] = window[i + 1], window[i]
    fields = [(rng.choice(WIDGETS) if rng.random() < 0.1 else widget, label) for widget, label in window]
    return rng.choice(form.titles), fields


def native_page(title: str, fields: list[tuple[str, str]]) -> dict[str, Any]:
    """A page of (widget, label) fields as a native layout node; an unknown widget is a text field."""
    children = [
        {
            "node": "field",
            "key": f"f{position}-{re.sub(r'[^a-z0-9]+', '-', label.lower())[:40]}",
            "label": label,
            "kind": widget if widget in WIDGET_KINDS else "text",
            "source_type": widget,
        }
        for position, (widget, label) in enumerate(fields)
    ]
    return {"node": "page", "title": title, "children": children}


def layout_text(form: FormLabels, forms: list[FormLabels], rng: random.Random) -> str:
    """One perturbed page of `form` as layout text: its title, then "widget label" items."""
    title, fields = layout_page(form, forms, rng)
    return f"Page {title}: " + ", ".join(f"{widget} {label}" for widget, label in fields)


def build_layouts(corpora: Path, n: int, queries: int, seed: int) -> tuple[list[str], list[str], list[str]]:
    """n layout texts with their form keys, plus `queries` further layouts to search with."""
    rng = random.Random(seed)
    forms = corpus_forms(corpora)
    chosen = [rng.choice(forms) for _ in range(n + queries)]
    texts = [layout_text(form, forms, rng) for form in chosen]
    return texts[:n], [form.form_key for form in chosen[:n]], texts[n:]


def encode_cached(embedder: Embedder, texts: list[str]) -> NDArray[np.float32]:
    """The texts' vectors, from var/bench/ when this exact list was encoded before."""
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    cache = CACHE_DIR / f"vectors-{embedder.model_name}-{len(texts)}-{digest}.npy"
    if cache.exists():
        cached: NDArray[np.float32] = np.load(cache)
        return cached
    distinct = list(dict.fromkeys(texts))  # the same page drawn twice is encoded once
    row = {text: i for i, text in enumerate(distinct)}
    vectors = embedder.encode(distinct, batch_size=128)[[row[text] for text in texts]]
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    np.save(cache, vectors)
    return vectors


def points(vectors: NDArray[np.float32], form_keys: list[str]) -> Iterator[LayoutPoint]:
    for i, (vector, form_key) in enumerate(zip(vectors, form_keys, strict=True)):
        # One point in ten belongs to another tenant, so the tenant filter has something to exclude.
        tenant = OTHER_TENANT if i % 10 == 9 else TENANT
        payload = {"version_id": f"v{i}", "form_key": form_key, "content_hash": f"h{i}"}
        yield LayoutPoint(str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant}:{i}")), tenant, vector, payload)


def load(index: LayoutIndex, vectors: NDArray[np.float32], form_keys: list[str]) -> float:
    started = time.perf_counter()
    batch: list[LayoutPoint] = []
    for point in points(vectors, form_keys):
        batch.append(point)
        if len(batch) == 512:
            index.upsert(batch)
            batch = []
    index.upsert(batch)
    return time.perf_counter() - started


def p50_ms(run: Callable[[int], object], count: int, repeats: int = 5) -> float:
    """Median latency of run(0..count-1), each query timed `repeats` times after a warm-up."""
    for i in range(min(5, count)):
        run(i)
    timings = []
    for _ in range(repeats):
        for i in range(count):
            started = time.perf_counter()
            run(i)
            timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


def interleaved_p50s(
    runs: dict[str, Callable[[int], object]], count: int, repeats: int = 5
) -> dict[str, float]:
    """p50 ms of each run, taken in turns (query i of every run, then query i + 1): a machine that slows
    down or speeds up mid-measurement moves every run alike, so their ratios hold."""

    def timed(run: Callable[[int], object]) -> Callable[[int], float]:
        def measured(i: int) -> float:
            started = time.perf_counter()
            run(i)
            return time.perf_counter() - started

        return measured

    return interleaved_reported_p50s({name: timed(run) for name, run in runs.items()}, count, repeats)


def interleaved_reported_p50s(
    runs: dict[str, Callable[[int], float]], count: int, repeats: int = 5
) -> dict[str, float]:
    """interleaved_p50s of runs that each return the seconds to count (timed on another thread's loop)."""
    for i in range(min(5, count)):
        for run in runs.values():
            run(i)
    timings: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for i in range(count):
            for name, run in runs.items():
                timings[name].append(run(i))
    return {name: statistics.median(values) * 1000 for name, values in timings.items()}


def print_verdicts(verdicts: dict[str, bool]) -> bool:
    """Print each stated target with "met" or "NOT met", then the whole; whether all were met."""
    for verdict, held in verdicts.items():
        print(f"  {verdict}: {'met' if held else 'NOT met'}")
    met = all(verdicts.values())
    print(f"  target: {'met' if met else 'NOT met'}")
    return met


def recall(index: LayoutIndex, queries: NDArray[np.float32], filters: list[LayoutFilter | None]) -> float:
    """Share of the true top k that HNSW returns; a hit tied with the k-th exact score counts as found."""
    found = total = 0
    for vector, layout_filter in zip(queries, filters, strict=True):
        exact = index.search(TENANT, vector, k=K, filter=layout_filter, exact=True)
        approximate = index.search(TENANT, vector, k=K, filter=layout_filter)
        if not exact:
            continue
        # Many layouts are duplicates (same perturbation drawn twice): ties at the cut are a coin toss.
        kth_score = exact[-1].score - 1e-6
        found += min(len(exact), sum(hit.score >= kth_score for hit in approximate))
        total += len(exact)
    return found / total if total else 1.0


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=20_000, help="layouts in the index")
    parser.add_argument("--queries", type=int, default=200, help="query layouts")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--corpora", type=Path, default=DEFAULT_CORPORA)
    args = parser.parse_args()

    started = time.perf_counter()
    texts, form_keys, query_texts = build_layouts(args.corpora, args.n, args.queries, args.seed)
    embedder = Embedder()
    vectors = encode_cached(embedder, texts)
    queries = encode_cached(embedder, query_texts)
    print(f"layouts: {args.n} from {len(set(form_keys))} corpus forms, dimension {embedder.dimension}")
    print(f"encoding (or cache load): {time.perf_counter() - started:.1f}s")
    # Filter each query by the form of its nearest layout, as "similar layouts within this form" does.
    nearest_form = [form_keys[int(np.argmax(vectors @ query))] for query in queries]
    form_filters: list[LayoutFilter | None] = [LayoutFilter(must={"form_key": [key]}) for key in nearest_form]
    no_filters: list[LayoutFilter | None] = [None] * len(queries)

    def search(
        index: LayoutIndex, filters: list[LayoutFilter | None], exact: bool = False
    ) -> Callable[[int], object]:
        return lambda i: index.search(TENANT, queries[i], k=K, filter=filters[i], exact=exact)

    results: dict[str, float] = {}
    workdir = Path(tempfile.mkdtemp(prefix="bench-vectors-"))
    try:
        edge = EdgeLayoutIndex(workdir / "edge", embedder.dimension)
        edge.ensure()
        print(f"edge upsert of {args.n}: {load(edge, vectors, form_keys):.1f}s")
        results["edge brute force (before optimize)"] = p50_ms(search(edge, no_filters), len(queries))
        results["edge brute force, form_key filter"] = p50_ms(search(edge, form_filters), len(queries))
        optimize_started = time.perf_counter()
        edge.optimize()
        print(f"edge optimize(): {time.perf_counter() - optimize_started:.1f}s")
        results["edge after optimize (HNSW)"] = p50_ms(search(edge, no_filters), len(queries))
        results["edge after optimize, form_key filter"] = p50_ms(search(edge, form_filters), len(queries))
        results["edge after optimize, exact=True"] = p50_ms(
            search(edge, no_filters, exact=True), len(queries)
        )
        hnsw_recall = recall(edge, queries, no_filters)
        filtered_recall = recall(edge, queries, form_filters)
        edge.close()
        # Reopened from disk with a wider HNSW beam: the recall/latency trade-off.
        edge = EdgeLayoutIndex(workdir / "edge", embedder.dimension, hnsw_ef=WIDE_EF)
        edge.ensure()
        results[f"edge after optimize, hnsw_ef={WIDE_EF}"] = p50_ms(search(edge, no_filters), len(queries))
        wide_recall = recall(edge, queries, no_filters)
        edge.close()

        # The same N on a real Qdrant server (../shared/qdrant), through qdrant-client, API key on.
        server = LocalQdrantServer(
            binary=QDRANT_BINARY,
            storage_dir=workdir / "qdrant",
            http_port=free_port(),
            grpc_port=free_port(),
            api_key=uuid.uuid4().hex,
        )
        server.start()
        try:
            remote = QdrantServerLayoutIndex.from_url(
                server.url, "bench", embedder.dimension, api_key=server.api_key
            )
            remote.ensure()
            remote_seconds = load(remote, vectors, form_keys)
            remote.optimize()
            print(f"qdrant server upsert of {args.n}: {remote_seconds:.1f}s")
            # The two engines on the same N, in turns, against the Edge index reopened as optimised above.
            edge = EdgeLayoutIndex(workdir / "edge", embedder.dimension)
            edge.ensure()
            results |= interleaved_p50s(
                {
                    "edge after optimize, in turns with the server": search(edge, no_filters),
                    "qdrant server after optimize (HNSW)": search(remote, no_filters),
                    "edge after optimize, form_key filter, in turns": search(edge, form_filters),
                    "qdrant server, form_key filter": search(remote, form_filters),
                },
                len(queries),
            )
            edge.close()
            remote.close()
        finally:
            server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    baseline = results["edge after optimize (HNSW)"]
    print(f"\np50 query latency, k={K}, tenant filter always on; N={args.n} unless stated")
    print(f"{'case':58} {'p50 ms':>9} {'x baseline':>11}")
    for name, value in results.items():
        print(f"{name:58} {value:9.3f} {value / baseline:11.2f}")
    print(
        f"\nrecall@{K} of HNSW vs exact: unfiltered {hnsw_recall:.3f}, "
        f"form_key filter {filtered_recall:.3f}, unfiltered with hnsw_ef={WIDE_EF} {wide_recall:.3f}"
    )
    turns = results["edge after optimize, in turns with the server"]
    served = results["qdrant server after optimize (HNSW)"]
    print(f"qdrant server / edge, same N, in turns: {served / turns:.2f}x")
    verdicts = {
        f"HNSW recall@{K}, unfiltered {hnsw_recall:.3f} (>= {RECALL_TARGET})": hnsw_recall >= RECALL_TARGET,
        f"HNSW recall@{K}, form_key filter {filtered_recall:.3f} (>= {RECALL_TARGET})": (
            filtered_recall >= RECALL_TARGET
        ),
    }
    print_verdicts(verdicts)
    print(f"total: {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()

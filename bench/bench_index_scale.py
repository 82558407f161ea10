"""Similar-by-id on an embedded index of 1M layouts against one of 100k, in one run (issue 19, target 3's
index half): p50 at 1M within 2x of the p50 at 100k, recall@10 at both, and bytes per layout on disk.

Run from the repository root: `python -m bench.bench_index_scale [--large 1000000] [--small 100000]
[--hnsw-m 16] [--ef-construct 200] [--hnsw-ef 512]`. Layouts are the perturbed real-corpus pages of
bench_vector_index (same generator and seed), encoded with the real model, each distinct text once, 20,000
at a time, each chunk cached under var/bench/ as soon as it is encoded: a run cut short resumes where it
stopped, and a rerun encodes nothing (the 1M layouts hold 614,877 distinct texts, about an hour of both
cores here). The small index holds the first --small layouts of the large one, so a query on layout i
asks both indexes the same question. Both are Qdrant Edge indexes loaded and optimised as `pageforge
ingest` leaves one (HNSW with PageForge's settings, or --hnsw-m links per node and --ef-construct
candidates while linking; one point in ten of another tenant).

Similar-by-id is what the API issues for it, in one call: the stored vector read under the tenant filter,
then the search under the tenant filter leaving the version out (app.similarity.service.layout_filter).
Queries alternate between the indexes, layout by layout, so machine noise moves both alike. The graph
half of target 3 is bench_graph_scale; this bench does not touch Neo4j or the API layer.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from app.similarity.service import layout_filter
from bench.bench_vector_index import (
    RECALL_TARGET,
    TENANT,
    WIDE_EF,
    K,
    build_layouts,
    encode_cached,
    interleaved_p50s,
    load,
    print_verdicts,
)
from tests.corpora import CORPORA
from vectors.edge import EdgeLayoutIndex
from vectors.embedder import Embedder
from vectors.index import HNSW_EF, HNSW_EF_CONSTRUCT, HNSW_M, LayoutIndex

CHUNK = 20_000
P50_TARGET = 2.0  # issue 19: similar-by-id p50 at 1M within 2x of the p50 at 100k
TRAP_GAP = 0.05


def encode_in_chunks(embedder: Embedder, texts: list[str]) -> NDArray[np.float32]:
    """The texts' vectors; their distinct texts are encoded CHUNK at a time, each chunk cached as soon as
    it is encoded."""
    distinct = list(dict.fromkeys(texts))
    parts = []
    started = time.perf_counter()
    for start in range(0, len(distinct), CHUNK):
        parts.append(encode_cached(embedder, distinct[start : start + CHUNK]))
        done = start + len(parts[-1])
        print(
            f"  {done:,} of {len(distinct):,} distinct texts ({time.perf_counter() - started:.0f}s)",
            flush=True,
        )
    row = {text: i for i, text in enumerate(distinct)}
    return np.concatenate(parts)[[row[text] for text in texts]]


def point_id(i: int) -> str:
    """The id bench_vector_index.points gives layout i of TENANT."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{TENANT}:{i}"))


def similar_by_id(index: LayoutIndex, version_id: str) -> list[str]:
    """The ids of the k layouts closest to the stored one, as the API's similar-by-id asks for them."""
    points = index.get(TENANT, [version_id], with_vectors=True)
    assert points, version_id
    assert points[0].vector is not None, version_id
    hits = index.search(TENANT, points[0].vector, k=K, filter=layout_filter(exclude_ids={version_id}))
    return [hit.id for hit in hits]


@dataclass(frozen=True)
class Recall:
    """recall@k against exact search, and how far below the exact k-th score the k-th hit scores."""

    recall: float
    shortfall_mean: float
    shortfall_max: float
    # Layouts whose k hits are copies of one other layout, well below the exact k-th score: a group of more
    # identical vectors than a point has links, which a search that reaches it cannot leave.
    trapped: int
    # Layouts that got fewer than k hits back although the index holds k that pass the filter.
    short: int


def recall_at_k(index: LayoutIndex, ids: list[str]) -> Recall:
    """Share of the exact top k that similar-by-id returns (a hit tied with the k-th exact score counts), and
    the k-th score's shortfall: a miss among near-equal layouts costs a user nothing, one far down does."""
    found = total = trapped = short = 0
    shortfalls = []
    for version_id in ids:
        points = index.get(TENANT, [version_id], with_vectors=True)
        vector = points[0].vector
        assert vector is not None
        leave_out = layout_filter(exclude_ids={version_id})
        exact = index.search(TENANT, vector, k=K, filter=leave_out, exact=True)
        approximate = index.search(TENANT, vector, k=K, filter=leave_out)
        if not exact:
            continue
        kth_score = exact[-1].score - 1e-6  # duplicates tie at the cut
        found += min(len(exact), sum(hit.score >= kth_score for hit in approximate))
        total += len(exact)
        last = approximate[len(exact) - 1].score if len(approximate) >= len(exact) else 0.0
        shortfalls.append(max(0.0, exact[-1].score - last))
        one_score = len({hit.score for hit in approximate}) == 1
        trapped += one_score and shortfalls[-1] > TRAP_GAP
        short += len(approximate) < len(exact)
    return Recall(
        recall=found / total if total else 1.0,
        shortfall_mean=sum(shortfalls) / len(shortfalls) if shortfalls else 0.0,
        shortfall_max=max(shortfalls, default=0.0),
        trapped=trapped,
        short=short,
    )


def disk_bytes(path: Path) -> int:
    """What the directory's files take on disk (allocated blocks: the engine preallocates sparse files)."""
    return sum(file.stat().st_blocks * 512 for file in path.rglob("*") if file.is_file())


def opened(path: Path, dimension: int, args: argparse.Namespace, beam: int = HNSW_EF) -> EdgeLayoutIndex:
    """The index under `path` with the run's graph settings, searching with `beam`."""
    index = EdgeLayoutIndex(
        path, dimension, hnsw_ef=beam, hnsw_m=args.hnsw_m, hnsw_ef_construct=args.ef_construct
    )
    index.ensure()
    return index


def build(
    path: Path, vectors: NDArray[np.float32], form_keys: list[str], args: argparse.Namespace
) -> EdgeLayoutIndex:
    index = opened(path, vectors.shape[1], args)
    seconds = load(index, vectors, form_keys)
    started = time.perf_counter()
    index.optimize()
    segments, points, in_hnsw = index.segments()
    print(
        f"  {len(vectors):,} layouts: upsert {seconds:.0f}s, optimize {time.perf_counter() - started:.0f}s; "
        f"{segments} segments, {in_hnsw:,} of {points:,} points in HNSW",
        flush=True,
    )
    return index


def measure(
    small: LayoutIndex, large: LayoutIndex, sampled: list[str], args: argparse.Namespace
) -> tuple[dict[int, float], dict[int, Recall]]:
    """p50 ms of similar-by-id on each index (in turns) and recall@k, by index size."""
    runs: dict[str, Callable[[int], object]] = {
        "small": lambda i: similar_by_id(small, sampled[i]),
        "large": lambda i: similar_by_id(large, sampled[i]),
    }
    p50 = interleaved_p50s(runs, args.samples)
    recalls = {
        args.small: recall_at_k(small, sampled[: args.recall_samples]),
        args.large: recall_at_k(large, sampled[: args.recall_samples]),
    }
    return {args.small: p50["small"], args.large: p50["large"]}, recalls


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--large", type=int, default=1_000_000, help="layouts in the large index")
    parser.add_argument("--small", type=int, default=100_000, help="layouts in the small index")
    parser.add_argument("--samples", type=int, default=200, help="layouts asked for similar ones")
    parser.add_argument("--recall-samples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--corpora", type=Path, default=CORPORA)
    parser.add_argument("--hnsw-m", type=int, default=HNSW_M, help="links per node of both indexes' graphs")
    parser.add_argument(
        "--ef-construct", type=int, default=HNSW_EF_CONSTRUCT, help="candidates while linking both graphs"
    )
    parser.add_argument(
        "--hnsw-ef",
        type=int,
        action="append",
        help=f"another search beam to measure (repeatable); if none: {HNSW_EF_CONSTRUCT} and {WIDE_EF}",
    )
    args = parser.parse_args()
    other_beams = args.hnsw_ef or [HNSW_EF_CONSTRUCT, WIDE_EF]
    if not 0 < args.small < args.large:
        parser.error("--small must be positive and below --large")

    started = time.perf_counter()
    texts, form_keys, _ = build_layouts(args.corpora, args.large, 0, args.seed)
    print(f"layouts: {args.large:,}, {len(set(texts)):,} distinct texts", flush=True)
    for n in (args.small, args.large):
        crowded = [count for count in Counter(texts[:n]).values() if count > 2 * args.hnsw_m]
        print(
            f"  of the first {n:,}: {len(crowded):,} texts with more copies than a point has links "
            f"({2 * args.hnsw_m}), {sum(crowded):,} layouts",
            flush=True,
        )
    embedder = Embedder()
    vectors = encode_in_chunks(embedder, texts)

    # Layouts of TENANT (bench_vector_index.points gives every tenth to another) that both indexes hold.
    rng = random.Random(args.seed)
    sampled = [point_id(i) for i in rng.sample([i for i in range(args.small) if i % 10 != 9], args.samples)]

    workdir = Path(tempfile.mkdtemp(prefix="bench-index-scale-"))
    try:
        print(
            f"building the indexes, {args.hnsw_m} links per node, "
            f"{args.ef_construct} candidates while linking:",
            flush=True,
        )
        empty = EdgeLayoutIndex(workdir / "empty", vectors.shape[1])
        empty.ensure()
        empty.close()
        small = build(workdir / "small", vectors[: args.small], form_keys[: args.small], args)
        large = build(workdir / "large", vectors, form_keys, args)
        # An empty index's files (write-ahead log, segment skeletons) are not the layouts'.
        base = disk_bytes(workdir / "empty")
        sizes = {
            args.small: disk_bytes(workdir / "small") - base,
            args.large: disk_bytes(workdir / "large") - base,
        }

        by_beam = {f"PageForge's default beam (hnsw_ef={HNSW_EF})": measure(small, large, sampled, args)}
        small.close()
        large.close()
        for beam in other_beams:
            small = opened(workdir / "small", vectors.shape[1], args, beam)
            large = opened(workdir / "large", vectors.shape[1], args, beam)
            by_beam[f"hnsw_ef={beam}"] = measure(small, large, sampled, args)
            small.close()
            large.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    p50, recalls = next(iter(by_beam.values()))
    ratio = p50[args.large] / p50[args.small]
    print(f"\nsimilar-by-id (stored vector read + search, tenant filter, the version left out), k={K},")
    print(f"recall over {args.recall_samples} layouts")
    for name, (p50s, recall_by_n) in by_beam.items():
        print(f"  {name}:")
        for n in (args.small, args.large):
            got = recall_by_n[n]
            print(
                f"    at {n:,}: p50 {p50s[n]:.2f} ms, recall@{K} {got.recall:.3f}; the {K}th hit scores "
                f"{got.shortfall_mean:.4f} below the exact {K}th on average "
                f"(at most {got.shortfall_max:.4f}); {got.trapped} got {K} copies of one other layout, "
                f"{got.short} fewer than {K} hits"
            )
        print(
            f"    p50 at {args.large:,} / at {args.small:,}: {p50s[args.large] / p50s[args.small]:.2f}x; "
            f"at {args.large:,} / the default beam's at {args.small:,}: "
            f"{p50s[args.large] / p50[args.small]:.2f}x"
        )
    for n, size in sizes.items():
        mib, each = size / 2**20, size / n
        print(f"  index on disk at {n:,} (beyond an empty one's): {mib:,.0f} MiB, {each:,.0f} bytes a layout")
    print_verdicts(
        {
            f"p50 at {args.large:,} within {P50_TARGET}x of {args.small:,}": ratio <= P50_TARGET,
            **{
                f"recall@{K} at {n:,} {value.recall:.3f} (>= {RECALL_TARGET})": value.recall >= RECALL_TARGET
                for n, value in recalls.items()
            },
        }
    )
    print(f"total: {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()

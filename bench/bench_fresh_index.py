"""The embedded index while layouts arrive: similar-by-id latency, recall and event-loop stalls.

Run from the repository root: `python -m bench.bench_fresh_index [--base 100000 --writes 20000]`.
Layouts are the perturbed real-corpus pages of bench_vector_index (same seed; vectors cached under
var/bench/). A Qdrant Edge index is loaded with `--base` of them and optimised, as `pageforge ingest`
leaves it; then `--writes` more arrive on an event loop the way the API's write path sends them (each
layout one upsert, then its own and its parent's lineage context as a payload update, each a worker-thread
hop), while similar-by-id queries (stored vector read and search in one hop, as the API does) run beside
them and a 1 ms ticker on the loop records the longest the loop was held. The writes skip HTTP, Neo4j and
the encoder: what is measured is the index and the maintenance it does while serving.

Two arrangements, in this run, on equal data: the served index without background optimisation (every
written point searched by exact scan until an offline `ingest`/`reindex`: PageForge before this bench)
and with it (PAGEFORGE_VECTORS__OPTIMIZE_AFTER, the default). Each is compared against the same index
freshly optimised afterwards. Target (issue 19): served p50 within 1.5x of the freshly optimised index,
recall@10 >= 0.95, no event-loop stall over 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import anyio.to_thread
import numpy as np
from numpy.typing import NDArray

from app.settings import VectorSettings
from bench.bench_vector_index import TENANT, K, build_layouts, encode_cached, load, points, recall
from tests.corpora import CORPORA
from vectors.edge import EdgeLayoutIndex
from vectors.embedder import Embedder
from vectors.index import LayoutPoint

P50_RATIO_TARGET = 1.5
RECALL_TARGET = 0.95
STALL_TARGET_MS = 100.0
TICK_S = 0.001


@dataclass
class Served:
    worst_stall_ms: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    written_s: float = 0.0


async def ticker(done: asyncio.Event, served: Served) -> None:
    """How late a 1 ms sleep on the loop wakes: the longest the loop was kept from running."""
    while not done.is_set():
        started = time.perf_counter()
        await asyncio.sleep(TICK_S)
        late_ms = (time.perf_counter() - started - TICK_S) * 1000
        served.worst_stall_ms = max(served.worst_stall_ms, late_ms)


async def similar_by_id(index: EdgeLayoutIndex, point_id: str) -> float:
    started = time.perf_counter()

    def read_and_search() -> None:
        stored = index.get(TENANT, [point_id], with_vectors=True)
        vector = stored[0].vector
        assert vector is not None, point_id
        index.search(TENANT, vector, k=K)

    await anyio.to_thread.run_sync(read_and_search)
    return (time.perf_counter() - started) * 1000


async def reader(index: EdgeLayoutIndex, ids: list[str], done: asyncio.Event, served: Served) -> None:
    rng = random.Random(3)
    while not done.is_set():
        served.latencies_ms.append(await similar_by_id(index, rng.choice(ids)))


async def writer(index: EdgeLayoutIndex, arriving: list[LayoutPoint], parents: list[str]) -> None:
    rng = random.Random(5)
    for number, point in enumerate(arriving):
        await anyio.to_thread.run_sync(index.upsert, [point])
        # A new version changes its own lineage context and its parent's: both points get the new payload.
        context = {"lineage_rev": float(number), "form_key": point.payload["form_key"]}
        changed = {point.id: context}
        if point.tenant == TENANT:
            changed[rng.choice(parents)] = context
        await anyio.to_thread.run_sync(index.set_payloads, point.tenant, changed)


async def serve_writes(index: EdgeLayoutIndex, arriving: list[LayoutPoint], base_ids: list[str]) -> Served:
    served = Served()
    done = asyncio.Event()
    background = [
        asyncio.create_task(ticker(done, served)),
        asyncio.create_task(reader(index, base_ids, done, served)),
    ]
    started = time.perf_counter()
    await writer(index, arriving, base_ids)
    served.written_s = time.perf_counter() - started
    # Queries and the ticker go on until the optimisation the last writes started has finished.
    await anyio.to_thread.run_sync(index.wait_for_optimizer)
    done.set()
    await asyncio.gather(*background)
    return served


async def p50_ms(index: EdgeLayoutIndex, ids: list[str], repeats: int = 3) -> float:
    for point_id in ids[:5]:
        await similar_by_id(index, point_id)
    return statistics.median(
        [await similar_by_id(index, point_id) for _ in range(repeats) for point_id in ids]
    )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def arrangement(
    name: str,
    path: Path,
    optimize_after: int | None,
    data: tuple[NDArray[np.float32], list[str]],
    base: int,
    probes: list[str],
    probe_vectors: NDArray[np.float32],
) -> bool:
    vectors, form_keys = data
    index = EdgeLayoutIndex(path, dimension=vectors.shape[1], optimize_after=optimize_after)
    index.ensure()
    try:
        load(index, vectors[:base], form_keys[:base])
        index.optimize()
        everything = list(points(vectors, form_keys))
        base_ids = [point.id for point in everything[:base] if point.tenant == TENANT]
        arriving = everything[base:]
        optimised_before = await p50_ms(index, probes)

        served = await serve_writes(index, arriving, base_ids)
        served_p50 = await p50_ms(index, probes)
        served_recall = recall(index, probe_vectors, [None] * len(probe_vectors))
        optimize_started = time.perf_counter()
        index.optimize()
        optimize_s = time.perf_counter() - optimize_started
        optimised_p50 = await p50_ms(index, probes)
    finally:
        index.close()

    ratio = served_p50 / optimised_p50
    print(f"\n{name}")
    rate = len(arriving) / served.written_s
    print(f"  {len(arriving)} layouts written in {served.written_s:.1f}s ({rate:.0f}/s)")
    print(
        f"  similar-by-id during the writes: p50 {statistics.median(served.latencies_ms):.2f} ms, "
        f"p99 {percentile(served.latencies_ms, 0.99):.2f} ms, max {max(served.latencies_ms):.1f} ms "
        f"({len(served.latencies_ms)} queries)"
    )
    print(f"  worst event-loop stall: {served.worst_stall_ms:.1f} ms")
    print(f"  p50 before the writes (optimised {base}): {optimised_before:.3f} ms")
    print(f"  p50 served after the writes: {served_p50:.3f} ms, recall@{K} {served_recall:.3f}")
    print(f"  p50 freshly optimised after the writes: {optimised_p50:.3f} ms (optimize() {optimize_s:.1f}s)")
    met = (
        ratio <= P50_RATIO_TARGET
        and served_recall >= RECALL_TARGET
        and served.worst_stall_ms <= STALL_TARGET_MS
    )
    print(
        f"  served/optimised p50 {ratio:.2f}x (target <= {P50_RATIO_TARGET}x), recall {served_recall:.3f} "
        f"(>= {RECALL_TARGET}), worst stall {served.worst_stall_ms:.1f} ms (<= {STALL_TARGET_MS:.0f}): "
        f"{'met' if met else 'NOT met'}"
    )
    return met


async def main_async(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    texts, form_keys, query_texts = build_layouts(
        args.corpora, args.base + args.writes, args.queries, args.seed
    )
    embedder = Embedder()
    vectors = encode_cached(embedder, texts)
    probe_vectors = encode_cached(embedder, query_texts)
    print(f"{args.base} + {args.writes} layouts; encoding or cache load {time.perf_counter() - started:.0f}s")
    probes = [
        point.id for point in points(vectors[: args.base], form_keys[: args.base]) if point.tenant == TENANT
    ]
    probes = random.Random(11).sample(probes, args.queries)
    optimize_after = VectorSettings().optimize_after

    workdir = Path(tempfile.mkdtemp(prefix="bench-fresh-index-"))
    try:
        data = (vectors, form_keys)
        await arrangement(
            "without background optimisation (before)",
            workdir / "off",
            None,
            data,
            args.base,
            probes,
            probe_vectors,
        )
        await arrangement(
            f"with background optimisation every {optimize_after} writes (PAGEFORGE_VECTORS__OPTIMIZE_AFTER)",
            workdir / "on",
            optimize_after,
            data,
            args.base,
            probes,
            probe_vectors,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--base", type=int, default=100_000, help="layouts in the index before the writes")
    parser.add_argument("--writes", type=int, default=20_000, help="layouts written while serving")
    parser.add_argument("--queries", type=int, default=200, help="similar-by-id probes and recall queries")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--corpora", type=Path, default=CORPORA)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()

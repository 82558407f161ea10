"""Similar layouts through the API on a real Qdrant server against the same queries sent straight to it.

Run from the repository root: `python -m bench.bench_server_api [--n 2000] [--queries 100]`.

Starts its own Neo4j (LocalNeo4jServer, authentication off) and Qdrant server (LocalQdrantServer, the
binary under ../shared/qdrant, API key on), each on free ports with throwaway storage. Layouts are the
perturbed real-corpus pages of bench_vector_index (NAV, VA, bcgov), loaded as bench_similarity loads
them: one FormVersion per layout in the graph (one lineage per corpus form, a tenant and API key made
with TenantRepository), one point per version in the Qdrant server collection, then the outbox relay
publishes each version's lineage context into its point. The API is served as bench_render and
bench_similarity's HTTP figures serve it: uvicorn in a child process on 127.0.0.1
(`uvicorn app.main:create_app --factory`), configured with PAGEFORGE_VECTORS__QDRANT_URL, and called
with a keep-alive httpx client. The raw rows go straight to the Qdrant server with qdrant-client
(REST, as PageForge connects) from this process:

- similar-by-id: what the API's similar path issues (SimilarityService.similar on
  QdrantServerLayoutIndex): a scroll for the version's point with its vector (tenant + id filter), then
  query_points with that vector (tenant filter, the version itself excluded); also query_points alone
  with the vector in hand, and recommend by point id (one round trip, the server looks the vector up);
- search by text: encoding with the same model (vectors.embedder.Embedder) + query_points with the
  tenant filter; also the query alone with the vector in hand and the encode alone.

Rows are measured interleaved (every row runs on each query in turn), so drift of a shared, noisy
machine lands on every row alike; the ratios are taken within this one run. The API encodes in a worker
thread of its event loop, so search by text also has a raw row that encodes in a worker thread.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from app.indexing import OutboxRelay
from bench.api_process import start_api, stop_api
from bench.bench_similarity import fill_index, load_graph
from bench.bench_vector_index import build_layouts
from graph.database import Graph
from graph.forms import LayoutOutbox, NewVersion
from graph.server import LocalNeo4jServer, free_port
from tests.corpora import CORPORA, QDRANT_BINARY
from vectors.embedder import Embedder
from vectors.index import TENANT_FIELD
from vectors.qdrant_server import QdrantServerLayoutIndex, connect
from vectors.server import LocalQdrantServer

K = 10
COLLECTION = "layouts-bench"


def percentiles_ms(timings: list[float]) -> tuple[float, float]:
    """p50 and p95 of timings in seconds, in ms."""
    cuts = statistics.quantiles(timings, n=20, method="inclusive")
    return statistics.median(timings) * 1000, cuts[18] * 1000


def measure(rows: dict[str, Callable[[int], object]], count: int, repeats: int) -> dict[str, list[float]]:
    """Each row's latencies (s) over run(0..count-1), `repeats` rounds. The rows take turns on every
    query, so a burst of load from the machine's other work lands on all of them alike."""
    for i in range(min(5, count)):
        for run in rows.values():
            run(i)  # warm-up: connections, the model, the server's caches
    timings: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(repeats):
        for i in range(count):
            for name, run in rows.items():
                started = time.perf_counter()
                run(i)
                timings[name].append(time.perf_counter() - started)
    return timings


def load_index(
    url: str, api_key: str, tenant: str, versions: list[NewVersion], vectors: Any, dimension: int
) -> None:
    """One point per version in the server collection, as the outbox relay writes it."""
    index = QdrantServerLayoutIndex.from_url(url, COLLECTION, dimension, api_key=api_key)
    count: dict[str, int] = {}
    numbers = []
    for version in versions:
        count[version.form_key] = count.get(version.form_key, 0) + 1
        numbers.append(count[version.form_key])
    try:
        fill_index(index, tenant, versions, vectors, numbers)
    finally:
        index.close()


async def publish_contexts(bolt_uri: str, url: str, api_key: str, embedder: Embedder) -> None:
    """The lineage context of every version into its point (the relay's drain), then wait for the
    server's optimizers: what a bulk ingest leaves behind."""
    graph = Graph(uri=bolt_uri, auth=None)
    index = QdrantServerLayoutIndex.from_url(url, COLLECTION, embedder.dimension, api_key=api_key)
    try:
        await OutboxRelay(outbox=LayoutOutbox(graph), index=index, embedder=embedder).drain()
        assert not await LayoutOutbox(graph).pending_context(1), "lineage context left unpublished"
        index.optimize()
    finally:
        index.close()
        await graph.close()


def tenant_only(tenant: str) -> qm.Filter:
    return qm.Filter(must=[qm.FieldCondition(key=TENANT_FIELD, match=qm.MatchValue(value=tenant))])


def bench(
    base: str,
    key: str,
    raw: QdrantClient,
    raw_grpc: QdrantClient,
    tenant: str,
    ids: list[str],
    query_texts: list[str],
    embedder: Embedder,
    args: argparse.Namespace,
) -> None:
    queries = min(args.queries, len(ids), len(query_texts))
    tenant_filter = tenant_only(tenant)

    def own_point(version_id: str) -> qm.Filter:
        # What QdrantServerLayoutIndex.get asks for: the tenant's point with this id.
        return qm.Filter(
            must=[
                qm.FieldCondition(key=TENANT_FIELD, match=qm.MatchValue(value=tenant)),
                qm.HasIdCondition(has_id=[version_id]),
            ]
        )

    def others(version_id: str) -> qm.Filter:
        # What the similar path queries with: the tenant's points but this version's.
        return qm.Filter(
            must=[qm.FieldCondition(key=TENANT_FIELD, match=qm.MatchValue(value=tenant))],
            must_not=[qm.FieldCondition(key="version_id", match=qm.MatchAny(any=[version_id]))],
        )

    params = qm.SearchParams(hnsw_ef=None, exact=False)

    def stored_vector(version_id: str) -> list[float]:
        records, _ = raw.scroll(
            COLLECTION,
            scroll_filter=own_point(version_id),
            limit=1,
            with_payload=True,
            with_vectors=True,
        )
        vector = records[0].vector
        assert isinstance(vector, list), type(vector)
        floats = [x for x in vector if isinstance(x, float)]
        assert len(floats) == embedder.dimension, len(floats)
        return floats

    stored = [stored_vector(ids[i]) for i in range(queries)]
    text_vectors = [[float(x) for x in row] for row in embedder.encode(query_texts[:queries])]

    def query(client: QdrantClient, vector: list[float], query_filter: qm.Filter) -> list[qm.ScoredPoint]:
        return client.query_points(
            COLLECTION,
            query=vector,
            query_filter=query_filter,
            limit=K,
            with_payload=True,
            search_params=params,
        ).points

    http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60)

    def api_similar(i: int) -> list[str]:
        response = http.get(f"/api/v1/form-versions/{ids[i]}/similar", params={"k": K})
        assert response.status_code == 200, response.text[:300]
        return [hit["version_id"] for hit in response.json()["items"]]

    def raw_similar(i: int) -> list[str]:
        return [str(p.id) for p in query(raw, stored_vector(ids[i]), others(ids[i]))]

    def raw_recommend(i: int) -> list[qm.ScoredPoint]:
        recommend = qm.RecommendQuery(
            recommend=qm.RecommendInput(positive=[ids[i]], strategy=qm.RecommendStrategy.BEST_SCORE)
        )
        return raw.query_points(
            COLLECTION,
            query=recommend,
            query_filter=others(ids[i]),
            limit=K,
            with_payload=True,
            search_params=params,
        ).points

    def api_search(i: int) -> list[str]:
        response = http.post("/api/v1/layouts/search", json={"text": query_texts[i], "k": K})
        assert response.status_code == 200, response.text[:300]
        return [hit["version_id"] for hit in response.json()["items"]]

    def raw_search(i: int) -> list[str]:
        vector = [float(x) for x in embedder.encode([query_texts[i].strip()])[0]]
        return [str(p.id) for p in query(raw, vector, tenant_filter)]

    # The API encodes in a worker thread of its event loop (Embedder.encode_async); the same here.
    worker = ThreadPoolExecutor(1)

    def raw_search_in_worker(i: int) -> list[str]:
        text = query_texts[i].strip()
        vector = [float(x) for x in worker.submit(embedder.encode, [text]).result()[0]]
        return [str(p.id) for p in query(raw, vector, tenant_filter)]

    # The same answers both ways (ids; ties at equal scores may order differently).
    checked = min(queries, 20)
    same_similar = sum(set(api_similar(i)) == set(raw_similar(i)) for i in range(queries))
    same_search = sum(set(api_search(i)) == set(raw_search(i)) for i in range(checked))

    similar_rows: dict[str, Callable[[int], object]] = {
        "similar-by-id: API (HTTP, uvicorn)": api_similar,
        "similar-by-id: raw scroll + query_points (what API issues)": raw_similar,
        "similar-by-id: raw query_points alone (vector in hand)": lambda i: query(
            raw, stored[i], others(ids[i])
        ),
        "similar-by-id: raw recommend by id (one round trip)": raw_recommend,
        "similar-by-id: raw query_points alone over gRPC": lambda i: query(
            raw_grpc, stored[i], others(ids[i])
        ),
        "floor: API GET /api/v1/tenant (auth, no index)": lambda i: http.get("/api/v1/tenant"),
    }
    text_rows: dict[str, Callable[[int], object]] = {
        "search by text: API (HTTP, uvicorn)": api_search,
        "search by text: raw encode + query_points": raw_search,
        "search by text: raw encode in a worker thread + query_points": raw_search_in_worker,
        "search by text: raw query_points alone (vector in hand)": lambda i: query(
            raw, text_vectors[i], tenant_filter
        ),
    }
    try:
        timings = measure(similar_rows, queries, args.repeats)
        timings |= measure(text_rows, queries, args.text_repeats)
    finally:
        http.close()
        worker.shutdown()

    figures = {name: percentiles_ms(values) for name, values in timings.items()}
    print(
        f"\nlatency in ms, k={K}, N={args.n}, {queries} queries x {args.repeats} repeats per similar-by-id "
        f"row, x {args.text_repeats} per search-by-text row; tenant filter on"
    )
    print(f"  {'row':62} {'p50':>8} {'p95':>8}")
    for name, (p50, p95) in figures.items():
        print(f"  {name:62} {p50:8.2f} {p95:8.2f}")

    def ratio(api: str, raw_row: str) -> str:
        (a50, a95), (r50, r95) = figures[api], figures[raw_row]
        return f"p50 {a50 / r50:5.2f}x, p95 {a95 / r95:5.2f}x"

    similar_api = "similar-by-id: API (HTTP, uvicorn)"
    search_api = "search by text: API (HTTP, uvicorn)"
    print("\nratios API / raw:")
    for name in list(similar_rows)[1:5]:
        print(f"  {similar_api} / {name.split(': ', 1)[1]:48} {ratio(similar_api, name)}")
    for name in list(text_rows)[1:]:
        print(f"  {search_api} / {name.split(': ', 1)[1]:48} {ratio(search_api, name)}")
    floor = figures["floor: API GET /api/v1/tenant (auth, no index)"][0]
    raw_similar_p50 = figures["similar-by-id: raw scroll + query_points (what API issues)"][0]
    raw_search_p50 = figures["search by text: raw encode + query_points"][0]
    print(
        f"API minus its floor (GET /api/v1/tenant p50 {floor:.2f} ms) / raw, p50: "
        f"similar-by-id {(figures[similar_api][0] - floor) / raw_similar_p50:.2f}x, "
        f"search by text {(figures[search_api][0] - floor) / raw_search_p50:.2f}x"
    )
    print(
        f"same hit ids API vs raw: similar-by-id {same_similar}/{queries}, "
        f"search by text {same_search}/{checked}"
    )


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=2000, help="layouts in the index")
    parser.add_argument("--queries", type=int, default=100, help="query versions and query texts")
    parser.add_argument("--repeats", type=int, default=5, help="rounds over the queries, similar-by-id")
    parser.add_argument("--text-repeats", type=int, default=2, help="rounds over the queries, search by text")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--corpora", type=Path, default=CORPORA)
    args = parser.parse_args()

    started = time.perf_counter()
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} at start")
    texts, corpus_keys, query_texts = build_layouts(args.corpora, args.n, args.queries, args.seed)
    form_keys = [key.replace(":", ".") for key in corpus_keys]
    embedder = Embedder()
    vectors = embedder.encode(texts, batch_size=128)
    print(
        f"layouts: {args.n} from {len(set(form_keys))} forms; model load + encoding "
        f"{time.perf_counter() - started:.0f}s"
    )

    workdir = Path(tempfile.mkdtemp(prefix="bench-server-api-"))
    neo4j = LocalNeo4jServer(
        data_dir=workdir / "neo4j",
        bolt_port=free_port(),
        heap="768m",
        page_cache="128m",
        jvm_options=("-XX:TieredStopAtLevel=1",),
    )
    qdrant = LocalQdrantServer(
        binary=QDRANT_BINARY,
        storage_dir=workdir / "qdrant",
        http_port=free_port(),
        grpc_port=free_port(),
        api_key=f"bench-{uuid.uuid4().hex}",
    )
    api: subprocess.Popen[bytes] | None = None
    raw: QdrantClient | None = None
    raw_grpc: QdrantClient | None = None
    try:
        servers = time.perf_counter()
        neo4j.start(timeout=240)
        qdrant.start()
        print(f"neo4j + qdrant start: {time.perf_counter() - servers:.0f}s")

        loaded = time.perf_counter()
        tenant, key, versions = asyncio.run(load_graph(neo4j.bolt_uri, form_keys, "bench"))
        # `versions` is in lineage-round order; its content hash names the layout (and vector) it stands for.
        version_vectors = vectors[[int(v.content_hash.split(":")[1]) for v in versions]]
        load_index(qdrant.url, qdrant.api_key, tenant, versions, version_vectors, embedder.dimension)
        asyncio.run(publish_contexts(neo4j.bolt_uri, qdrant.url, qdrant.api_key, embedder))
        print(f"graph + qdrant load: {time.perf_counter() - loaded:.0f}s")

        serving = time.perf_counter()
        api, base = start_api(
            {
                "PAGEFORGE_NEO4J__URI": neo4j.bolt_uri,
                "PAGEFORGE_VECTORS__QDRANT_URL": qdrant.url,
                "PAGEFORGE_VECTORS__QDRANT_API_KEY": qdrant.api_key,
                "PAGEFORGE_VECTORS__COLLECTION": COLLECTION,
            },
            workdir / "api.log",
        )
        print(f"API start (uvicorn child, model load): {time.perf_counter() - serving:.0f}s")

        raw = connect(qdrant.url, api_key=qdrant.api_key)
        raw_grpc = QdrantClient(
            url=qdrant.url, api_key=qdrant.api_key, grpc_port=qdrant.grpc_port, prefer_grpc=True, timeout=10
        )
        ids = [version.id for version in versions]
        bench(base, key, raw, raw_grpc, tenant, ids, query_texts, embedder, args)
    finally:
        for client in (raw, raw_grpc):
            if client is not None:
                client.close()
        try:
            if api is not None:
                stop_api(api)
        finally:
            try:
                qdrant.stop()
            finally:
                neo4j.stop()
                shutil.rmtree(workdir, ignore_errors=True)
    print(f"total: {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()

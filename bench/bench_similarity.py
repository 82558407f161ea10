"""Similar layouts through the API against the raw index queries they issue, on perturbed corpus layouts.

Run from the repository root: `python -m bench.bench_similarity [--n 20000]`. Layouts are the perturbed
real-corpus pages of bench_vector_index (same seed, so its cached vectors under var/bench/ are reused);
each becomes a FormVersion in a managed Neo4j (one lineage per corpus form) and a point in Qdrant Edge.
Printed, all measured in this run: p50 of similar-by-id through the API vs the raw index query it issues,
search by text vs encode + raw query, recall@10 vs exact search, filtered vs unfiltered queries, and
throughput of 8 concurrent API clients vs 1.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from app.main import create_app
from app.resources import Resources
from app.settings import ApiSettings, Neo4jSettings, Settings, VectorSettings
from bench.bench_vector_index import DEFAULT_CORPORA, build_layouts, encode_cached, p50_ms
from graph.database import Graph
from graph.forms import FormVersionRepository, LayoutOutbox, NewVersion, ParentDiff
from graph.server import LocalNeo4jServer, free_port
from graph.tenants import TenantRepository
from vectors.edge import EdgeLayoutIndex
from vectors.embedder import Embedder
from vectors.index import LayoutFilter, LayoutIndex, LayoutPoint

K = 10


def throughput(run: Callable[[int], object], clients: int, seconds: float) -> float:
    """Requests per second completed by `clients` threads calling run() for `seconds`."""
    deadline = time.perf_counter() + seconds

    def client(offset: int) -> int:
        done = 0
        while time.perf_counter() < deadline:
            run(offset + done)
            done += 1
        return done

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        total = sum(pool.map(client, [i * 7919 for i in range(clients)]))
    return total / (time.perf_counter() - started)


async def load_graph(
    bolt_uri: str, form_keys: list[str], tenant_name: str
) -> tuple[str, str, list[NewVersion]]:
    """A tenant with an API key and one version per layout, each form's versions one lineage."""
    graph = Graph(uri=bolt_uri, auth=None)
    try:
        await graph.apply_schema()
        tenants = TenantRepository(graph)
        tenant = await tenants.create(tenant_name)
        key = await tenants.issue_key(tenant_name)
        versions = [
            NewVersion(
                id=str(uuid.uuid4()),
                form_key=form_key,
                content_hash=f"sha256:{i}",
                definition={},
                source_format="native",
                title=form_key,
                layout_text="",
                field_count=0,
                parents=[],
            )
            for i, form_key in enumerate(form_keys)
        ]
        previous: dict[str, str] = {}
        rounds: list[list[NewVersion]] = []
        seen: dict[str, int] = {}
        for version in versions:
            level = seen.get(version.form_key, 0)
            seen[version.form_key] = level + 1
            if level == len(rounds):
                rounds.append([])
            rounds[level].append(version)
        repository, outbox = FormVersionRepository(graph), LayoutOutbox(graph)
        chained: list[NewVersion] = []
        for batch in rounds:
            news = []
            for version in batch:
                parent = previous.get(version.form_key)
                parents = [ParentDiff(id=parent, summary="bench", changes=[])] if parent else []
                news.append(dataclasses.replace(version, parents=parents))
                previous[version.form_key] = version.id
            await repository.create_many(tenant.id, news)
            await outbox.mark_indexed([v.id for v in news])
            chained.extend(news)
        return tenant.id, key, chained
    finally:
        await graph.close()


def load_index(path: Path, tenant: str, versions: list[NewVersion], vectors: Any, numbers: list[int]) -> None:
    index = EdgeLayoutIndex(path, dimension=vectors.shape[1])
    index.ensure()
    batch: list[LayoutPoint] = []
    for version, vector, number in zip(versions, vectors, numbers, strict=True):
        payload = {
            "version_id": version.id,
            "form_key": version.form_key,
            "number": number,
            "content_hash": version.content_hash,
        }
        batch.append(LayoutPoint(version.id, tenant, vector, payload))
        if len(batch) == 512:
            index.upsert(batch)
            batch = []
    index.upsert(batch)
    index.optimize()
    index.close()


def recall_at_k(index: LayoutIndex, tenant: str, vectors: Any, ids: list[str], queries: int) -> float:
    """Share of the exact top k (ties at the cut counted) that the HNSW query of similar-by-id returns."""
    found = total = 0
    for i in range(queries):
        layout_filter = LayoutFilter(must_not={"version_id": [ids[i]]})
        exact = index.search(tenant, vectors[i], k=K, filter=layout_filter, exact=True)
        approximate = index.search(tenant, vectors[i], k=K, filter=layout_filter)
        kth = exact[-1].score - 1e-6
        found += min(len(exact), sum(hit.score >= kth for hit in approximate))
        total += len(exact)
    return found / total


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=20_000, help="layouts (the cached bench vectors: 20000)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each throughput run")
    parser.add_argument("--corpora", type=Path, default=DEFAULT_CORPORA)
    args = parser.parse_args()

    started = time.perf_counter()
    texts, corpus_keys, query_texts = build_layouts(args.corpora, args.n, args.queries, args.seed)
    form_keys = [key.replace(":", ".") for key in corpus_keys]
    embedder = Embedder()
    vectors = encode_cached(embedder, texts)
    print(
        f"layouts: {args.n} from {len(set(form_keys))} forms; "
        f"encoding or cache load {time.perf_counter() - started:.0f}s"
    )

    workdir = Path(tempfile.mkdtemp(prefix="bench-similarity-"))
    server = LocalNeo4jServer(data_dir=workdir / "neo4j", bolt_port=free_port(), heap="1g", page_cache="256m")
    server.start(timeout=240)
    try:
        loaded = time.perf_counter()
        tenant, key, versions = asyncio.run(load_graph(server.bolt_uri, form_keys, "bench"))
        numbers: list[int] = []
        count: dict[str, int] = {}
        for version in versions:
            count[version.form_key] = count.get(version.form_key, 0) + 1
            numbers.append(count[version.form_key])
        settings = Settings(
            neo4j=Neo4jSettings(uri=server.bolt_uri),
            vectors=VectorSettings(path=workdir / "vectors"),
            api=ApiSettings(max_body_bytes=1_000_000),
        )
        # `versions` is in lineage-round order; its content hash names the layout (and vector) it stands for.
        version_vectors = vectors[[int(v.content_hash.split(":")[1]) for v in versions]]
        load_index(
            workdir / "vectors" / settings.vectors.collection, tenant, versions, version_vectors, numbers
        )
        print(f"graph + index load: {time.perf_counter() - loaded:.0f}s")

        headers = {"Authorization": f"Bearer {key}"}
        ids = [version.id for version in versions]
        queries = min(args.queries, len(ids))
        with TestClient(create_app(settings)) as client:
            resources: Resources = client.app.state.resources  # type: ignore[attr-defined]
            index = resources.require_index()
            api_embedder = resources.require_embedder()

            def api_similar(i: int, **params: Any) -> Any:
                response = client.get(
                    f"/api/v1/form-versions/{ids[i % queries]}/similar",
                    params={"k": K, **params},
                    headers=headers,
                )
                assert response.status_code == 200, response.text
                return response

            def raw_similar(i: int, layout_filter: LayoutFilter | None = None) -> Any:
                version_id = ids[i % queries]
                base = layout_filter or LayoutFilter()
                own = LayoutFilter(must=base.must, must_not={**base.must_not, "version_id": [version_id]})
                return index.search(tenant, version_vectors[i % queries], k=K, filter=own)

            def api_search(i: int) -> Any:
                body = {"text": query_texts[i % len(query_texts)], "k": K}
                response = client.post("/api/v1/layouts/search", json=body, headers=headers)
                assert response.status_code == 200, response.text
                return response

            def raw_search(i: int) -> Any:
                vector = api_embedder.encode([query_texts[i % len(query_texts)]])[0]
                return index.search(tenant, vector, k=K)

            def raw_search_in_worker(i: int) -> Any:
                # The encode as the API runs it (a worker thread of the app's event loop), then the query.
                text = query_texts[i % len(query_texts)]
                vector = client.portal.call(lambda: api_embedder.encode_async([text]))[0]  # type: ignore[union-attr]
                return index.search(tenant, vector, k=K)

            graph = resources.graph

            def form_filter(i: int) -> LayoutFilter:
                return LayoutFilter(must={"form_key": [versions[i % queries].form_key]})

            results = {
                "similar-by-id, API (get + search + graph context)": p50_ms(api_similar, queries),
                "similar-by-id, raw index search it issues": p50_ms(raw_similar, queries),
                "similar-by-id, raw index get of the vector": p50_ms(
                    lambda i: index.get(tenant, [ids[i % queries]], with_vectors=True), queries
                ),
                "search by text, API": p50_ms(api_search, queries),
                "search by text, encode + raw search": p50_ms(raw_search, queries),
                "search by text, encode in a worker + raw search": p50_ms(raw_search_in_worker, queries),
                "floor: an authenticated API request (GET /api/v1/tenant)": p50_ms(
                    lambda i: client.get("/api/v1/tenant", headers=headers), queries
                ),
                "floor: one Neo4j round trip (the health ping)": p50_ms(
                    lambda i: client.portal.call(graph.ping),  # type: ignore[union-attr]
                    queries,
                ),
                "raw search, form_key filter": p50_ms(lambda i: raw_similar(i, form_filter(i)), queries),
                "API similar, form_key filter": p50_ms(
                    lambda i: api_similar(i, form_key=versions[i % queries].form_key), queries
                ),
                "API similar, scope=lineage": p50_ms(lambda i: api_similar(i, scope="lineage"), queries),
                "API similar, scope=exclude-lineage": p50_ms(
                    lambda i: api_similar(i, scope="exclude-lineage"), queries
                ),
                "API similar, group_by=form": p50_ms(lambda i: api_similar(i, group_by="form"), queries),
            }
            recall = recall_at_k(index, tenant, version_vectors, ids, queries)
            one = throughput(api_similar, 1, args.seconds)
            eight = throughput(api_similar, 8, args.seconds)
            search_one = throughput(api_search, 1, args.seconds)
            search_eight = throughput(api_search, 8, args.seconds)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"\np50 latency in ms, k={K}, N={args.n}, {queries} query versions, tenant filter always on")
    for name, value in results.items():
        print(f"  {name:58} {value:8.2f}")
    api_vs_raw = (
        results["similar-by-id, API (get + search + graph context)"]
        / results["similar-by-id, raw index search it issues"]
    )
    # The baseline is the faster of the two ways to encode outside the API.
    raw_text = min(
        results["search by text, encode + raw search"],
        results["search by text, encode in a worker + raw search"],
    )
    text_vs_raw = results["search by text, API"] / raw_text
    filtered = results["raw search, form_key filter"] / results["similar-by-id, raw index search it issues"]
    print(f"similar-by-id API / raw index query: {api_vs_raw:.2f}x (target <= 2)")
    print(f"search by text API / (encode + raw query): {text_vs_raw:.2f}x (target <= 1.25)")
    print(f"recall@{K} of the similar-by-id query vs exact search: {recall:.3f} (target >= 0.95)")
    print(f"raw filtered / unfiltered query: {filtered:.2f}x (target <= 1)")
    print(
        f"API similar-by-id throughput: 1 client {one:.0f} req/s, 8 clients {eight:.0f} req/s "
        f"({eight / one:.2f}x, target >= 1)"
    )
    print(
        f"API search by text throughput: 1 client {search_one:.1f} req/s, 8 clients {search_eight:.1f} req/s "
        f"({search_eight / search_one:.2f}x, target >= 1)"
    )
    print(f"total: {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()

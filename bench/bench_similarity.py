"""Similar layouts through the API against the raw index queries they issue, on perturbed corpus layouts.

Run from the repository root: `python -m bench.bench_similarity [--n 20000]`. Layouts are the perturbed
real-corpus pages of bench_vector_index (same seed, so its cached vectors under var/bench/ are reused);
each becomes a FormVersion in a managed Neo4j (one lineage per corpus form) and a point in Qdrant Edge.
The index is measured as a serving process leaves it after publishing every version's lineage context
(its background optimiser has run; the points it did not reach are searched by exact scan), and the raw
query once more after optimize(), as `pageforge ingest` leaves it. Printed, all measured in this run: p50
of similar-by-id through the API vs the raw index query it issues and vs an authenticated no-op (timed in
turns, so their ratios hold on a noisy machine), search by text vs encode + raw query, recall@10 vs exact
search, filtered vs unfiltered queries, and throughput of 8 concurrent API clients vs 1 (in alternating
slices; the target is judged through the HTTP server, whose clients do not share the app's GIL as the
TestClient's do); issue 19's targets with "met" or "NOT met". The API figures come through three clients, each
named where printed: FastAPI's TestClient (a sync client that hands every request to the app's event
loop in another thread), httpx.AsyncClient over ASGI on the app's own event loop (no socket, no thread
hop), and a real HTTP server (`pageforge serve`, uvicorn, in a child process) with a keep-alive httpx client.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from app.indexing import OutboxRelay
from app.main import create_app
from app.resources import Resources
from app.settings import ApiSettings, Neo4jSettings, Settings, VectorSettings
from bench.bench_vector_index import build_layouts, encode_cached, interleaved_p50s, p50_ms, print_verdicts
from graph.database import Graph
from graph.forms import FormVersionRepository, LayoutOutbox, NewVersion, ParentDiff
from graph.migrations import Migrator
from graph.server import LocalNeo4jServer, free_port
from graph.tenants import TenantRepository
from tests.corpora import CORPORA
from vectors.edge import EdgeLayoutIndex
from vectors.embedder import Embedder
from vectors.index import LayoutFilter, LayoutIndex, LayoutPoint

K = 10
SERVER_START_S = 300.0
# Issue 19: what a similar-by-id request costs beyond an authenticated no-op, in raw queries.
BEYOND_FLOOR_TARGET = 2.0
RECALL_TARGET = 0.95


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


async def interleaved_p50s_async(
    runs: dict[str, Callable[[int], Awaitable[object]]], count: int, repeats: int = 5
) -> dict[str, float]:
    """interleaved_p50s for coroutines, timed on the event loop that runs them."""
    for i in range(min(5, count)):
        for run in runs.values():
            await run(i)
    timings: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for i in range(count):
            for name, run in runs.items():
                started = time.perf_counter()
                await run(i)
                timings[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) * 1000 for name, values in timings.items()}


def throughputs(
    run: Callable[[int], object], clients: tuple[int, ...], seconds: float, slices: int = 4
) -> list[float]:
    """Requests per second for each number of clients, measured in alternating slices of the duration."""
    done = [0.0] * len(clients)
    for _ in range(slices):
        for position, count in enumerate(clients):
            done[position] += throughput(run, count, seconds / slices) / slices
    return done


def similar_urls(ids: list[str]) -> list[str]:
    """Similar-by-id's request URLs, built before timing: encoding them is the client's work, not the
    server's, and the floor's URL is a constant too."""
    return [f"/api/v1/form-versions/{version_id}/similar?k={K}" for version_id in ids]


async def profile_in_loop(app: Any, headers: dict[str, str], ids: list[str], rounds: int = 10) -> None:
    """cProfile of similar-by-id over ASGI on the app's loop (worker threads not included: the index)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench", headers=headers) as asgi:
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(rounds):
            for url in similar_urls(ids):
                response = await asgi.get(url)
                assert response.status_code == 200, response.text
        profile.disable()
    print(f"\nprofile of {rounds * len(ids)} similar-by-id requests, ASGI in loop, by own time:")
    pstats.Stats(profile).sort_stats("tottime").print_stats(30)


def served_figures(
    settings: Settings,
    headers: dict[str, str],
    ids: list[str],
    query_texts: list[str],
    queries: int,
    log: Path,
    seconds: float,
) -> tuple[dict[str, float], list[float]]:
    """p50s through `pageforge serve` (uvicorn, JSON access log) in a child process on 127.0.0.1, and
    similar-by-id's requests per second from 1 and from 8 client threads of this process."""
    port = free_port()
    env = {
        **os.environ,
        "PAGEFORGE_NEO4J__URI": str(settings.neo4j.uri),
        "PAGEFORGE_VECTORS__PATH": str(settings.vectors.path),
    }
    command = [
        sys.executable,
        "-c",
        "from app.cli import main; main()",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as http:
            deadline = time.monotonic() + SERVER_START_S
            answer = "no answer"
            while True:
                if process.poll() is not None:
                    tail = log.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"pageforge serve exited with {process.returncode}:\n{tail}")
                try:
                    response = http.get("/api/v1/tenant")
                    if response.status_code == 200:
                        break
                    answer = f"{response.status_code} {response.text[:500]}"
                except httpx.TransportError as error:
                    answer = repr(error)
                if time.monotonic() > deadline:
                    tail = log.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"pageforge serve did not answer in time; last: {answer}\n{tail}")
                time.sleep(0.5)

            urls = similar_urls(ids)

            def similar(i: int) -> None:
                response = http.get(urls[i % queries])
                assert response.status_code == 200, response.text

            def search(i: int) -> None:
                body = {"text": query_texts[i % len(query_texts)], "k": K}
                response = http.post("/api/v1/layouts/search", json=body)
                assert response.status_code == 200, response.text

            p50s = interleaved_p50s(
                {
                    "HTTP server: similar-by-id": similar,
                    "HTTP server: floor, GET /api/v1/tenant": lambda i: http.get("/api/v1/tenant"),
                },
                queries,
            ) | {"HTTP server: search by text": p50_ms(search, queries)}
            return p50s, throughputs(similar, (1, 8), seconds)
    finally:
        process.terminate()
        process.wait(timeout=60)


async def load_graph(
    bolt_uri: str, form_keys: list[str], tenant_name: str
) -> tuple[str, str, list[NewVersion]]:
    """A tenant with an API key and one version per layout, each form's versions one lineage."""
    graph = Graph(uri=bolt_uri, auth=None)
    try:
        await Migrator(graph).migrate()
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


def fill_index(
    index: LayoutIndex, tenant: str, versions: list[NewVersion], vectors: Any, numbers: list[int]
) -> None:
    """One point per version, with the payload the outbox relay writes, in batches of 512."""
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


def load_index(path: Path, tenant: str, versions: list[NewVersion], vectors: Any, numbers: list[int]) -> None:
    index = EdgeLayoutIndex(path, dimension=vectors.shape[1])
    try:
        fill_index(index, tenant, versions, vectors, numbers)
    finally:
        index.close()


async def publish_contexts(bolt_uri: str, path: Path, embedder: Embedder, optimize_after: int) -> str:
    """Put each version's lineage context into its point as a serving process's outbox relay does, its
    optimiser building HNSW in the background once `optimize_after` points have changed. A payload update
    moves a point out of its HNSW segment; what the last background run did not reach stays searched by
    exact scan: the served state, which the figures measure (described in the returned text)."""
    graph = Graph(uri=bolt_uri, auth=None)
    index = EdgeLayoutIndex(path, dimension=embedder.dimension, optimize_after=optimize_after)
    index.ensure()
    try:
        await OutboxRelay(outbox=LayoutOutbox(graph), index=index, embedder=embedder).drain()
        assert not await LayoutOutbox(graph).pending_context(1), "lineage context left unpublished"
        index.wait_for_optimizer()
        return describe(index.segments())
    finally:
        index.close()
        await graph.close()


@dataclasses.dataclass(frozen=True)
class IndexStates:
    raw_ms: float  # similar-by-id's raw query, p50, on the index as served
    optimised_raw_ms: float  # the same after optimize(), as `pageforge ingest` leaves an index
    optimised: str


def optimised_after(path: Path, tenant: str, vectors: Any, ids: list[str], queries: int) -> IndexStates:
    """The raw query on the served index, then on the same index optimised (it stays so: measured last)."""
    index = EdgeLayoutIndex(path, dimension=vectors.shape[1])
    index.ensure()
    try:

        def raw(i: int) -> object:
            own = LayoutFilter(exclude_ids=[ids[i % queries]])
            return index.search(tenant, vectors[i % queries], k=K, filter=own)

        served = p50_ms(raw, queries)
        index.optimize()
        return IndexStates(served, p50_ms(raw, queries), describe(index.segments()))
    finally:
        index.close()


def describe(segments: tuple[int, int, int]) -> str:
    count, stored, indexed = segments
    return f"{count} segments, {stored - indexed} of {stored} points searched by exact scan (not in HNSW)"


def recall_at_k(index: LayoutIndex, tenant: str, vectors: Any, ids: list[str], queries: int) -> float:
    """Share of the exact top k (ties at the cut counted) that the HNSW query of similar-by-id returns."""
    found = total = 0
    for i in range(queries):
        layout_filter = LayoutFilter(exclude_ids=[ids[i]])
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
    parser.add_argument("--corpora", type=Path, default=CORPORA)
    parser.add_argument("--profile", action="store_true", help="print where similar-by-id spends its time")
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
        index_path = workdir / "vectors" / settings.vectors.collection
        load_index(index_path, tenant, versions, version_vectors, numbers)
        served_index = asyncio.run(
            publish_contexts(server.bolt_uri, index_path, embedder, settings.vectors.optimize_after)
        )
        print(f"graph + index load: {time.perf_counter() - loaded:.0f}s; served index: {served_index}")

        headers = {"Authorization": f"Bearer {key}"}
        ids = [version.id for version in versions]
        queries = min(args.queries, len(ids))
        with TestClient(create_app(settings)) as client:
            resources: Resources = client.app.state.resources  # type: ignore[attr-defined]
            index = resources.require_index()
            api_embedder = resources.require_embedder()

            urls = similar_urls(ids)

            def api_similar(i: int, **params: Any) -> Any:
                response = client.get(urls[i % queries], params=params or None, headers=headers)
                assert response.status_code == 200, response.text
                return response

            def raw_similar(i: int, layout_filter: LayoutFilter | None = None) -> Any:
                version_id = ids[i % queries]
                base = layout_filter or LayoutFilter()
                own = dataclasses.replace(base, exclude_ids=[version_id])
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

            # Each group's figures are taken in turns, so the ratios between them come from one stretch of
            # time on this shared machine.
            results = interleaved_p50s(
                {
                    "similar-by-id, API (get + search, context from the points)": api_similar,
                    "similar-by-id, raw index search it issues": raw_similar,
                    "floor: an authenticated API request (GET /api/v1/tenant)": lambda i: client.get(
                        "/api/v1/tenant", headers=headers
                    ),
                    # How PageForge left the version out before: by its payload field, not its point id.
                    "similar-by-id, raw search leaving the version out by field": lambda i: index.search(
                        tenant,
                        version_vectors[i % queries],
                        k=K,
                        filter=LayoutFilter(must_not={"version_id": [ids[i % queries]]}),
                    ),
                },
                queries,
            )
            results |= interleaved_p50s(
                {
                    "search by text, API": api_search,
                    "search by text, encode + raw search": raw_search,
                    "search by text, encode in a worker + raw search": raw_search_in_worker,
                },
                queries,
            )
            results |= {
                "similar-by-id, raw index get of the vector": p50_ms(
                    lambda i: index.get(tenant, [ids[i % queries]], with_vectors=True), queries
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

            async def in_loop_figures() -> dict[str, float]:
                transport = httpx.ASGITransport(app=client.app)
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://bench", headers=headers
                ) as asgi:

                    async def similar(i: int) -> None:
                        response = await asgi.get(urls[i % queries])
                        assert response.status_code == 200, response.text

                    async def raw(i: int) -> None:
                        raw_similar(i)

                    async def floor(i: int) -> None:
                        await asgi.get("/api/v1/tenant")

                    async def search(i: int) -> None:
                        body = {"text": query_texts[i % len(query_texts)], "k": K}
                        response = await asgi.post("/api/v1/layouts/search", json=body)
                        assert response.status_code == 200, response.text

                    async def encode_then_search(i: int) -> None:
                        vector = (await api_embedder.encode_async([query_texts[i % len(query_texts)]]))[0]
                        index.search(tenant, vector, k=K)

                    figures = await interleaved_p50s_async(
                        {
                            "ASGI in loop: similar-by-id": similar,
                            "ASGI in loop: raw index search": raw,
                            "ASGI in loop: floor, GET /api/v1/tenant": floor,
                        },
                        queries,
                    )
                    return figures | await interleaved_p50s_async(
                        {
                            "ASGI in loop: search by text": search,
                            "in loop: encode in a worker + raw search": encode_then_search,
                        },
                        queries,
                    )

            results |= client.portal.call(in_loop_figures)  # type: ignore[union-attr]
            if args.profile:
                client.portal.call(profile_in_loop, client.app, headers, ids[:queries])  # type: ignore[union-attr]
            recall = recall_at_k(index, tenant, version_vectors, ids, queries)
            one, eight = throughputs(api_similar, (1, 8), 2 * args.seconds)
            search_one, search_eight = throughputs(api_search, (1, 8), 2 * args.seconds)
        # The app above has closed the index, so the server can open it.
        served, (served_one, served_eight) = served_figures(
            settings, headers, ids, query_texts, queries, workdir / "serve.log", 2 * args.seconds
        )
        results |= served
        states = optimised_after(index_path, tenant, version_vectors, ids, queries)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"\np50 latency in ms, k={K}, N={args.n}, {queries} query versions, tenant filter always on")
    print("(API lines without a client named: FastAPI TestClient)")
    for name, value in results.items():
        print(f"  {name:58} {value:8.2f}")
    # The raw query each client's figures are divided by was timed in turns with them (HTTP: the ASGI run's,
    # the server being another process that owns the index).
    raw_ms = {
        "TestClient": results["similar-by-id, raw index search it issues"],
        "ASGI in loop": results["ASGI in loop: raw index search"],
        "HTTP server": results["ASGI in loop: raw index search"],
    }
    floors = {
        "TestClient": results["floor: an authenticated API request (GET /api/v1/tenant)"],
        "ASGI in loop": results["ASGI in loop: floor, GET /api/v1/tenant"],
        "HTTP server": results["HTTP server: floor, GET /api/v1/tenant"],
    }
    similar_ms = {
        "TestClient": results["similar-by-id, API (get + search, context from the points)"],
        "ASGI in loop": results["ASGI in loop: similar-by-id"],
        "HTTP server": results["HTTP server: similar-by-id"],
    }
    # The faster of the ways to encode outside the API.
    raw_text = min(
        results["search by text, encode + raw search"],
        results["search by text, encode in a worker + raw search"],
        results["in loop: encode in a worker + raw search"],
    )
    print("\nratios, each against the raw figure timed in turns with it:")
    for name in similar_ms:
        print(
            f"  through {name}: similar-by-id / raw index query {similar_ms[name] / raw_ms[name]:.2f}x; "
            f"floor / raw {floors[name] / raw_ms[name]:.2f}x; "
            f"(similar-by-id - floor) / raw {(similar_ms[name] - floors[name]) / raw_ms[name]:.2f}x"
        )
    for name in ("TestClient", "ASGI in loop", "HTTP server"):
        label = "search by text, API" if name == "TestClient" else f"{name}: search by text"
        print(f"  through {name}: search by text / (encode + raw query) {results[label] / raw_text:.2f}x")
    filtered = results["raw search, form_key filter"] / results["similar-by-id, raw index search it issues"]
    print(f"  raw query with a form_key filter / without: {filtered:.2f}x (TestClient run, not interleaved)")
    by_field = results["similar-by-id, raw search leaving the version out by field"] / raw_ms["TestClient"]
    print(f"  raw query leaving the version out by payload field / by point id: {by_field:.2f}x")
    served_vs_optimised = states.raw_ms / states.optimised_raw_ms
    print(
        f"  raw query, served index / the same optimised ({states.optimised}): {served_vs_optimised:.2f}x "
        f"({states.raw_ms:.2f} / {states.optimised_raw_ms:.2f} ms)"
    )
    print(
        f"API similar-by-id throughput, TestClient (clients and app share one GIL): 1 client {one:.0f} "
        f"req/s, 8 clients {eight:.0f} req/s ({eight / one:.2f}x)"
    )
    print(
        f"API similar-by-id throughput, HTTP server (clients in this process): 1 client {served_one:.0f} "
        f"req/s, 8 clients {served_eight:.0f} req/s ({served_eight / served_one:.2f}x)"
    )
    print(
        f"API search by text throughput: 1 client {search_one:.1f} req/s, 8 clients {search_eight:.1f} req/s "
        f"({search_eight / search_one:.2f}x)"
    )
    beyond_floor = (similar_ms["ASGI in loop"] - floors["ASGI in loop"]) / raw_ms["ASGI in loop"]
    verdicts = {
        f"similar-by-id beyond the no-op floor, ASGI in loop: {beyond_floor:.2f}x the raw query "
        f"(<= {BEYOND_FLOOR_TARGET:g}x: the query and at most as much again)": beyond_floor
        <= BEYOND_FLOOR_TARGET,
        f"similar-by-id throughput through the HTTP server, 8 clients / 1: {served_eight / served_one:.2f}x "
        "(>= 1)": served_eight >= served_one,
        f"recall@{K} of the served index vs exact search: {recall:.3f} (>= {RECALL_TARGET})": (
            recall >= RECALL_TARGET
        ),
    }
    print_verdicts(verdicts)
    print(f"total: {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()

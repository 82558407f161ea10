"""Lineage calls on a 1M-version graph against the same calls on a 10k-version graph, in one run (issue 19,
target 3's graph half): each call's p50 at the large size within 3x of the small, and the store's bytes
per version.

Two Neo4j servers (one per graph) hold one tenant each, seeded with the same shape: forms of 100 versions
of perturbed real-corpus pages (bench_vector_index's layouts, a page per version), each version derived
from the one before and every tenth also from the one seven before (a merge); systems of 10 forms with a
release after every tenth round pinning each form's latest version. Form j has the same pages in both
graphs, so a call on form j asks the same question of 10k versions and of 1M. Versions are written by the
bulk path (FormVersionRepository.create_many, events included) and releases by SysVersionProcessor.

The graphs are kept under --store (seeding 1M versions took 47 min here; a rerun reuses them, migrated
to this PageForge's schema first). The seeded layouts are not embedded (encoding 1M texts takes hours on
this machine's CPU): once seeded, the versions' outbox entries are closed, so the graph stands as one
whose index is up to date; the versions the bench posts are embedded and indexed as any post is.
Similarity at scale is measured by bench_similarity, bench_vector_index and bench_fresh_index.

Every call goes through the API (one app per graph, each request timed on the app's event loop) for the
same sampled forms of both graphs, in turns (call i on the small graph, then on the large), so machine noise
moves both alike; suggested-parents' graph read, which needs no index, is timed as a repository call.
Run: .venv/bin/python -m bench.bench_graph_scale [--versions 1000000] [--small 10000] [--samples 40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from app.main import create_app
from app.resources import open_graph
from app.settings import Neo4jSettings, Settings, VectorSettings
from app.similarity.service import AROUND_BOUND
from app.sysversions.schemas import PinExisting, ReleaseCreate
from app.sysversions.service import SysVersionProcessor
from app.versions import diff_from, new_version, normalise_document, structural_diff
from bench.bench_vector_index import (
    FormLabels,
    corpus_forms,
    interleaved_reported_p50s,
    layout_page,
    native_page,
    print_verdicts,
)
from graph.database import Graph
from graph.forms import FormVersionRepository, NewVersion, ParentDiff, VersionRef
from graph.migrations import Migrator
from graph.releases import ReleaseRepository
from graph.server import LocalNeo4jServer, free_port
from graph.similarity import SimilarityRepository
from graph.tenants import TenantRepository
from ingest import FormDefinition, content_hash, export_native
from tests.corpora import CORPORA

FORM_VERSIONS = 100
MERGE_EVERY, MERGE_BACK = 10, 7
FORMS_PER_SYSTEM = 10
RELEASE_EVERY = 10
BATCH = 500
TENANT = "bench-graph-scale"
SHAPE = 1  # bump when the seeded shape changes: kept graphs of another shape are seeded again
RATIO_TARGET = 3.0


def form_key(j: int) -> str:
    return f"form-{j:07d}"


def system_key(s: int) -> str:
    return f"system-{s:06d}"


class FormPages:
    """The pages of one form, version after version: form j draws from its own random stream."""

    def __init__(self, j: int, forms: list[FormLabels]) -> None:
        self.key = form_key(j)
        self.base = forms[j % len(forms)]
        self.forms = forms
        self.rng = random.Random(j)
        self.history: list[tuple[str, FormDefinition]] = []  # (id, definition) of the last MERGE_BACK + 1

    def next_version(self, number: int) -> NewVersion:
        title, fields = layout_page(self.base, self.forms, self.rng)
        # The revision in the title keeps every page of a form distinct content, so every write creates.
        title = f"{title} (revision {number})"
        page = native_page(title, fields)
        definition = normalise_document(
            {"key": self.key, "title": title, "layout": [page]}, "native", self.key
        )
        parents: list[ParentDiff] = []
        if self.history:
            parent_id, parent = self.history[-1]
            summary, changes = structural_diff(parent, definition)
            parents.append(ParentDiff(id=parent_id, summary=summary, changes=changes))
        if number % MERGE_EVERY == 0 and len(self.history) > MERGE_BACK:
            other_id, other = self.history[-1 - MERGE_BACK]
            parents.append(diff_from(VersionRef(other_id, self.key, 0, export_native(other)), definition))
        new = new_version(definition, form_key=self.key, digest=content_hash(definition), parents=parents)
        self.history = [*self.history[-MERGE_BACK:], (new.id, definition)]
        return new


def next_versions(pages: list[FormPages], number: int) -> list[NewVersion]:
    return [page.next_version(number) for page in pages]


async def seed(graph: Graph, versions: int) -> None:
    """Write the tenant's forms round by round (version r of every form), releases after every tenth."""
    tenant = await TenantRepository(graph).create(TENANT)
    repository = FormVersionRepository(graph)
    processor = SysVersionProcessor(releases=ReleaseRepository(graph), versions=repository, relay=None)
    forms = corpus_forms(CORPORA)
    count = versions // FORM_VERSIONS
    pages = [FormPages(j, forms) for j in range(count)]
    began = time.perf_counter()
    for number in range(1, FORM_VERSIONS + 1):
        batches = [pages[i : i + BATCH] for i in range(0, count, BATCH)]
        drafts = await asyncio.to_thread(next_versions, batches[0], number)
        for position in range(len(batches)):
            writing = asyncio.create_task(repository.create_many(tenant.id, drafts))
            if position + 1 < len(batches):
                drafts = await asyncio.to_thread(next_versions, batches[position + 1], number)
            written = await writing
            assert all(created for _, created in written), "a seeded page repeated its form's content"
        if number % RELEASE_EVERY == 0:
            await release_round(processor, tenant.id, pages, number // RELEASE_EVERY)
        done = number * count
        print(f"  {done} versions written, {time.perf_counter() - began:.0f}s", flush=True)


async def release_round(processor: SysVersionProcessor, tenant: str, pages: list[FormPages], n: int) -> None:
    """A release of every system pinning the latest version of its forms, 8 systems at a time."""
    gate = asyncio.Semaphore(8)

    async def release(s: int) -> None:
        members = pages[s * FORMS_PER_SYSTEM : (s + 1) * FORMS_PER_SYSTEM]
        body = ReleaseCreate(
            version=f"{n}.0",
            forms=[PinExisting(form_key=page.key, version_id=page.history[-1][0]) for page in members],
        )
        async with gate:
            created = await processor.create(tenant=tenant, system_key=system_key(s), body=body)
        assert created.created

    await asyncio.gather(
        *(release(s) for s in range((len(pages) + FORMS_PER_SYSTEM - 1) // FORMS_PER_SYSTEM))
    )


async def close_outbox(graph: Graph) -> None:
    """Close every outbox entry, in batches: the graph then stands as one whose layout index is up to date."""
    while True:
        result = await graph.run(
            "MATCH (v:FormVersion) WHERE v:IndexPending OR v:ContextPending WITH v LIMIT 20000 "
            "REMOVE v:IndexPending, v:ContextPending RETURN count(v) AS closed"
        )
        if not result.records[0]["closed"]:
            return


class KeptGraph:
    """A seeded graph of `versions` versions in its own Neo4j, kept under `store` between runs."""

    def __init__(self, store: Path, versions: int, heap: str, page_cache: str) -> None:
        self.versions = versions
        self.root = store / f"{versions}-shape{SHAPE}"
        self.marker = self.root / "seeded.json"
        self.server = LocalNeo4jServer(
            data_dir=self.root / "neo4j", bolt_port=free_port(), heap=heap, page_cache=page_cache
        )
        self.settings = Settings(
            neo4j=Neo4jSettings(uri=self.server.bolt_uri), vectors=VectorSettings(path=self.root / "vectors")
        )

    def start(self) -> None:
        if self.root.exists() and not self.marker.exists():
            raise SystemExit(f"{self.root} holds an unfinished seed: remove it and run again")
        self.server.start(timeout=600)
        asyncio.run(self._migrate())
        if not self.marker.exists():
            print(f"seeding {self.versions} versions into {self.root}")
            began = time.perf_counter()
            asyncio.run(self._seed())
            seconds = time.perf_counter() - began
            self.marker.write_text(json.dumps({"versions": self.versions, "seconds": round(seconds)}))
            print(f"seeded {self.versions} versions in {seconds:.0f}s")

    async def _migrate(self) -> None:
        """Apply this PageForge's migrations (a kept graph may be older), as `pageforge migrate` would."""
        graph = open_graph(self.settings)
        try:
            await Migrator(graph).migrate()
        finally:
            await graph.close()

    async def _seed(self) -> None:
        graph = open_graph(self.settings)
        try:
            await seed(graph, self.versions)
            await close_outbox(graph)
        finally:
            await graph.close()

    def api_key(self) -> str:
        async def issue() -> str:
            graph = open_graph(self.settings)
            try:
                return await TenantRepository(graph).issue_key(TENANT)
            finally:
                await graph.close()

        return asyncio.run(issue())

    def store_bytes(self) -> int:
        store = self.server.data_dir / "data" / "databases" / "neo4j"
        return sum(path.stat().st_size for path in store.rglob("*") if path.is_file())


class Targets:
    """What the calls ask of one graph: ids of sampled forms' versions and releases, read through the API."""

    def __init__(self, api: InLoopApi, forms: list[int]) -> None:
        self.forms = [form_key(j) for j in forms]
        self.versions: list[dict[int, str]] = []
        self.fields: list[str] = []
        self.releases: list[str] = []
        for key, j in zip(self.forms, forms, strict=True):
            numbers: dict[int, str] = {}
            cursor = None
            while True:
                body = api.get(f"/api/v1/forms/{key}/versions", limit=100, cursor=cursor)
                numbers |= {item["number"]: item["id"] for item in body["items"]}
                if not (cursor := body["next_cursor"]):
                    break
            self.versions.append(numbers)
            latest = api.get(f"/api/v1/form-versions/{numbers[FORM_VERSIONS]}")
            field = first_field(latest["definition"])
            assert field is not None, f"{key} has no field"
            self.fields.append(field)
            releases = api.get(f"/api/v1/systems/{system_key(j // FORMS_PER_SYSTEM)}/releases")
            self.releases.append(releases["items"][len(releases["items"]) // 2]["id"])


def first_field(node: Any) -> str | None:
    """The key of the first field in a native definition."""
    if isinstance(node, dict):
        if node.get("node") == "field":
            return str(node["key"])
        for value in node.values():
            if (found := first_field(value)) is not None:
                return found
    if isinstance(node, list):
        for value in node:
            if (found := first_field(value)) is not None:
                return found
    return None


class InLoopApi:
    """Requests to an app served by a TestClient, sent and timed on the app's own event loop (ASGI in loop):
    the time of a call is the app's, without the TestClient's thread hop."""

    def __init__(self, client: TestClient, key: str) -> None:
        assert client.portal is not None, "the TestClient serves the app (use it as a context manager)"
        self.client, self.portal = client, client.portal
        self.asgi = self.portal.call(self._open, key)
        self.seconds = 0.0

    async def _open(self, key: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.client.app)
        return httpx.AsyncClient(transport=transport, base_url="http://bench", headers=bearer(key))

    def get(self, path: str, **params: Any) -> Any:
        """The JSON body of a 200 answer; `seconds` holds how long the app took."""
        return self._send("GET", path, 200, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: dict[str, Any]) -> Any:
        """The JSON body of a 201 answer; `seconds` holds how long the app took."""
        return self._send("POST", path, 201, json=body)

    def _send(self, method: str, path: str, status: int, **request: Any) -> Any:
        async def timed() -> tuple[httpx.Response, float]:
            began = time.perf_counter()
            response = await self.asgi.request(method, path, **request)
            return response, time.perf_counter() - began

        response, self.seconds = self.portal.call(timed)
        assert response.status_code == status, f"{path}: {response.status_code} {response.text[:300]}"
        return response.json()

    def timed(self, work: Callable[[], Awaitable[object]]) -> float:
        """Seconds `work` takes on the app's loop (a graph read no endpoint shows without the index)."""

        async def timed() -> float:
            began = time.perf_counter()
            await work()
            return time.perf_counter() - began

        return self.portal.call(timed)

    def close(self) -> None:
        self.portal.call(self.asgi.aclose)


def calls(api: InLoopApi, t: Targets) -> dict[str, Callable[[int], float]]:
    """The lineage questions users ask, each of sample i % len(samples)."""
    n = len(t.forms)
    middle = FORM_VERSIONS // 2

    def call(path: str, **params: Any) -> float:
        api.get(path, **params)
        return api.seconds

    def version(i: int, number: int = middle) -> str:
        return t.versions[i % n][number]

    posted = [0]
    # Kept graphs hold earlier runs' posts: this run's titles are its own, so every post creates.
    run = os.urandom(4).hex()

    def post(i: int) -> float:
        """A new revision of a sampled form, derived from its latest (what every single write looks up)."""
        posted[0] += 1
        key = t.forms[i % n]
        title = f"Posted revision {run}-{posted[0]}"
        field = {"node": "field", "key": "posted", "label": title, "kind": "text", "source_type": "text"}
        layout = [{"node": "page", "title": title, "children": [field]}]
        api.post(
            f"/api/v1/forms/{key}/versions", {"definition": {"key": key, "title": title, "layout": layout}}
        )
        return api.seconds

    similarity = SimilarityRepository(api.client.app.state.resources.graph)  # type: ignore[attr-defined]
    tenant = api.get("/api/v1/tenant")["id"]

    return {
        "version": lambda i: call(f"/api/v1/form-versions/{version(i)}"),
        "lineage up, depth 50": lambda i: call(f"/api/v1/form-versions/{version(i)}/lineage"),
        "lineage down, depth 10": lambda i: call(
            f"/api/v1/form-versions/{version(i)}/lineage", direction="down", depth=10
        ),
        "diff against another version": lambda i: call(
            f"/api/v1/form-versions/{version(i)}/diff", against=version(i, middle - 5)
        ),
        "merge-base": lambda i: call(
            f"/api/v1/form-versions/{version(i, middle + 9)}/merge-base",
            **{"with": version(i, middle + 3)},
        ),
        "field history": lambda i: call(f"/api/v1/forms/{t.forms[i % n]}/fields/{t.fields[i % n]}/history"),
        "used-by": lambda i: call(f"/api/v1/form-versions/{version(i, RELEASE_EVERY * 5)}/used-by"),
        "used-by, whole form": lambda i: call(f"/api/v1/form-versions/{version(i)}/used-by", form="true"),
        "impact": lambda i: call(f"/api/v1/form-versions/{version(i, FORM_VERSIONS - 20)}/impact"),
        "release drift": lambda i: call(f"/api/v1/releases/{t.releases[i % n]}/drift"),
        "release": lambda i: call(f"/api/v1/releases/{t.releases[i % n]}"),
        "versions of a form, a page": lambda i: call(f"/api/v1/forms/{t.forms[i % n]}/versions", limit=50),
        "forms, first page": lambda i: call("/api/v1/forms", limit=50),
        "post a version of a form": post,
        "versions around one (suggested-parents' graph read)": lambda i: api.timed(
            lambda: similarity.versions_around(tenant, version(i), bound=AROUND_BOUND)
        ),
        "forms whose key or title holds a word": lambda i: call("/api/v1/forms", q=t.forms[i % n][-4:]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--versions", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--store", type=Path, default=Path.home() / ".cache" / "pageforge" / "bench-graph-scale"
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    small = KeptGraph(args.store, args.small, heap="1g", page_cache="4g")
    large = KeptGraph(args.store, args.versions, heap="1g", page_cache="4g")
    try:
        for kept in (small, large):
            kept.start()
        sampled = random.Random(7).sample(range(args.small // FORM_VERSIONS), args.samples)
        with (
            TestClient(create_app(small.settings)) as small_client,
            TestClient(create_app(large.settings)) as large_client,
        ):
            small_api, large_api = (
                InLoopApi(small_client, small.api_key()),
                InLoopApi(large_client, large.api_key()),
            )
            small_calls = calls(small_api, Targets(small_api, sampled))
            large_calls = calls(large_api, Targets(large_api, sampled))
            runs = {}
            for name in small_calls:
                runs[f"{name}|small"] = small_calls[name]
                runs[f"{name}|large"] = large_calls[name]
            p50 = interleaved_reported_p50s(runs, args.samples, args.repeats)
            small_api.close()
            large_api.close()
    finally:
        for kept in (small, large):
            kept.server.stop()
    report(small, large, p50, list(small_calls))


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def report(small: KeptGraph, large: KeptGraph, p50: dict[str, float], names: list[str]) -> None:
    print(f"\nAPI p50 (ASGI in loop), {small.versions} versions | {large.versions} versions | large/small")
    verdicts = {}
    for name in names:
        ratio = p50[f"{name}|large"] / p50[f"{name}|small"]
        print(f"  {name:<52} {p50[f'{name}|small']:8.2f} ms {p50[f'{name}|large']:8.2f} ms {ratio:6.2f}x")
        verdicts[f"{name}: {large.versions} within {RATIO_TARGET:g}x of {small.versions} ({ratio:.2f}x)"] = (
            ratio <= RATIO_TARGET
        )
    for kept in (small, large):
        size = kept.store_bytes()
        print(
            f"store of {kept.versions} versions: {size / 2**20:.0f} MiB, "
            f"{size / kept.versions:.0f} bytes per version"
        )
    print_verdicts(verdicts)


if __name__ == "__main__":
    main()

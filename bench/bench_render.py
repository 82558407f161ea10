"""Renders through the API against the same work in-process, and cached-render throughput against /health.

Starts its own Neo4j (a free port, a temp dir) and the API as a separate uvicorn process on a free
port, posts the largest corpus form (most fields) as a version of a fresh tenant, then measures in one run:
- uncached HTML render through the API (POST .../render with prefill data never seen before, so every
  request misses the cache) against the in-process render of the same definition and data
  (import_native + resolve_widgets on the same model + render_html), one of each in turn; target <= 1.3x;
- cached renders (GET .../render) with 8 concurrent clients against an authenticated request that does no
  I/O (GET /api/v1/tenant: the key is verified from the cache) with 8 concurrent clients, requests per
  second, in alternating slices; target >= 0.5x.
Each target is printed with "met" or "NOT met".
Run: .venv/bin/python -m bench.bench_render [--repeat 15] [--seconds 8] [--clients 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from app.renderer.widgets import EmbeddingWidgetMatcher
from app.resources import open_graph
from app.settings import Neo4jSettings, Settings
from bench.api_process import start_api, stop_api
from bench.bench_vector_index import print_verdicts
from graph.migrations import Migrator
from graph.server import LocalNeo4jServer, free_port
from graph.tenants import TenantRepository
from ingest import FormDefinition, import_definition, parse_document
from ingest.native import import_native
from render.html import render_html
from render.widgets import resolve_widgets
from tests.corpora import CORPORA
from vectors.embedder import Embedder

CORPUS_GLOBS = ("*/current/*.json", "nav-formio/test-forms/*.json")


def largest_form() -> tuple[Path, FormDefinition]:
    """The corpus form with the most fields."""
    best: tuple[int, Path, FormDefinition] | None = None
    for path in sorted(p for pattern in CORPUS_GLOBS for p in CORPORA.glob(pattern)):
        definition = import_definition(parse_document(path.read_bytes()), key=path.stem)
        if best is None or len(definition.fields()) > best[0]:
            best = (len(definition.fields()), path, definition)
    assert best is not None, f"no corpus forms under {CORPORA}"
    return best[1], best[2]


async def issue_key(neo4j_uri: str) -> str:
    graph = open_graph(Settings(neo4j=Neo4jSettings(uri=neo4j_uri)))
    try:
        await Migrator(graph).migrate()
        tenants = TenantRepository(graph)
        name = f"bench-{uuid.uuid4().hex[:8]}"
        await tenants.create(name)
        return await tenants.issue_key(name)
    finally:
        await graph.close()


UNCACHED_TARGET = 1.3
CACHED_TARGET = 0.5
# The baseline of cached renders: authenticated like them, answered without Neo4j, the index or the model.
NO_IO_PATH = "/api/v1/tenant"
SLICES = 4


def timed(work: Callable[[], Any], repeat: int) -> list[float]:
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - started)
    return seconds


async def throughput(base: str, path: str, headers: dict[str, str], clients: int, seconds: float) -> float:
    """Requests per second of `clients` concurrent loops for `seconds`; every answer must be 200."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30) as client:
        done = 0
        stop = time.perf_counter() + seconds

        async def loop() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                response = await client.get(path)
                assert response.status_code == 200, response.text[:300]
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(clients)))
        return done / (time.perf_counter() - started)


def bench(base: str, key: str, path: Path, definition: FormDefinition, args: argparse.Namespace) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    api = httpx.Client(base_url=base, headers=headers, timeout=120)
    created = api.post(
        f"/api/v1/forms/{path.stem}/versions", json={"definition": parse_document(path.read_bytes())}
    )
    assert created.status_code == 201, created.text
    version_id = created.json()["id"]
    native = api.get(f"/api/v1/form-versions/{version_id}").json()["definition"]
    render_path = f"/api/v1/form-versions/{version_id}/render"
    counter = iter(range(10**9))

    def through_api() -> None:
        response = api.post(render_path, json={"data": {"bench_run": str(next(counter))}})
        assert response.status_code == 200, response.text[:300]
        assert response.headers["x-render-cache"] == "miss"

    matcher = EmbeddingWidgetMatcher(Embedder())

    def in_process() -> None:
        stored = import_native(native)
        widgets = resolve_widgets(stored, matcher=matcher)
        render_html(stored, widgets=widgets, data={"bench_run": str(next(counter))})

    html_only_widgets = resolve_widgets(import_native(native), matcher=matcher)
    stored_definition = import_native(native)

    def html_only() -> None:
        render_html(stored_definition, widgets=html_only_widgets, data={"bench_run": str(next(counter))})

    for work in (through_api, in_process, html_only):
        timed(work, 3)  # warm-up: templates, the model, connection pools
    # In turns, so that a machine slowing down mid-run moves all three alike.
    api_s: list[float] = []
    local_s: list[float] = []
    html_s: list[float] = []
    for _ in range(args.repeat):
        for work, seconds in ((through_api, api_s), (in_process, local_s), (html_only, html_s)):
            seconds.extend(timed(work, 1))
    size = len(api.get(render_path).content)
    print(
        f"form {path.relative_to(CORPORA)}: {len(definition.fields())} fields, HTML {size / 1024:.0f} KiB; "
        f"{args.repeat} renders each, median (mean) ms"
    )
    for name, seconds in (
        ("uncached through the API", api_s),
        ("in-process: import + widgets + HTML", local_s),
        ("in-process: render_html only", html_s),
    ):
        print(
            f"  {name:<38} {1000 * statistics.median(seconds):7.1f} ({1000 * statistics.mean(seconds):.1f})"
        )
    ratio = statistics.median(api_s) / statistics.median(local_s)

    assert api.get(render_path).headers["x-render-cache"] == "hit"
    floor = cached = 0.0
    for _ in range(SLICES):
        floor += asyncio.run(throughput(base, NO_IO_PATH, headers, args.clients, args.seconds / SLICES))
        cached += asyncio.run(throughput(base, render_path, headers, args.clients, args.seconds / SLICES))
    floor, cached = floor / SLICES, cached / SLICES
    print(
        f"{args.clients} concurrent clients, {args.seconds:g} s each in {SLICES} alternating slices: "
        f"GET {NO_IO_PATH} {floor:.0f} req/s, cached GET render {cached:.0f} req/s"
    )
    verdicts = {
        f"uncached render, API / in-process {ratio:.2f}x (<= {UNCACHED_TARGET}x)": ratio <= UNCACHED_TARGET,
        f"cached renders / no-I/O requests {cached / floor:.2f}x (>= {CACHED_TARGET}x)": (
            cached / floor >= CACHED_TARGET
        ),
    }
    print_verdicts(verdicts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} at start")
    path, definition = largest_form()
    with tempfile.TemporaryDirectory(prefix="bench-render-") as tmp:
        root = Path(tmp)
        server = LocalNeo4jServer(
            data_dir=root / "neo4j", bolt_port=free_port(), heap="768m", page_cache="256m"
        )
        server.start(timeout=240)
        api: subprocess.Popen[bytes] | None = None
        try:
            key = asyncio.run(issue_key(server.bolt_uri))
            api, base = start_api(
                {"PAGEFORGE_NEO4J__URI": server.bolt_uri, "PAGEFORGE_VECTORS__PATH": str(root / "vectors")},
                root / "api.log",
            )
            bench(base, key, path, definition, args)
        finally:
            if api is not None:
                stop_api(api)
            server.stop()


if __name__ == "__main__":
    main()

"""Ancestry latency through the API for 1, 100 and 1000 hops, as ratios against 1 hop, in one run.

Starts its own Neo4j (a free port, a temp dir), writes one chain of 1001 small versions of a form
with one UNWIND statement (LineageRepository.create_chain, real diff summaries on the edges), then
asks GET /api/v1/form-versions/{last}/lineage?direction=up&depth=N through the app (TestClient),
interleaving the three depths round by round so machine noise hits all of them alike. Prints p50 per
depth through the API and for the repository call alone, and the 100/1 (target <= 3x) and 1000/1
(target <= 10x) ratios.
Run: .venv/bin/python bench/bench_lineage.py [--rounds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from fastapi.testclient import TestClient

from app.main import create_app
from app.resources import open_graph
from app.settings import Neo4jSettings, Settings, VectorSettings
from app.versions import new_version, normalise_document, structural_diff
from graph.forms import NewVersion, ParentDiff
from graph.lineage import LineageRepository
from graph.migrations import Migrator
from graph.server import LocalNeo4jServer, free_port
from graph.tenants import TenantRepository
from ingest import FormDefinition, content_hash

CHAIN = 1001
HOPS = (1, 100, 1000)
FORM_KEY = "chain"


def small_definition(i: int) -> FormDefinition:
    """Version i of a three-field form: one label changes every version, a field comes and goes."""
    components = [
        {"type": "textfield", "key": "name", "label": f"Name (revision {i})", "input": True},
        {"type": "number", "key": "age", "label": "Age", "input": True},
    ]
    if i % 2:
        components.append({"type": "email", "key": "email", "label": "Email", "input": True})
    return normalise_document({"title": "Chain", "components": components}, "formio", FORM_KEY)


def chain_versions() -> list[NewVersion]:
    versions: list[NewVersion] = []
    previous: FormDefinition | None = None
    for i in range(CHAIN):
        definition = small_definition(i)
        parents = []
        if previous is not None:
            summary, changes = structural_diff(previous, definition)
            parents = [ParentDiff(id=versions[-1].id, summary=summary, changes=changes)]
        versions.append(
            new_version(definition, form_key=FORM_KEY, digest=content_hash(definition), parents=parents)
        )
        previous = definition
    return versions


async def seed(settings: Settings) -> tuple[str, str, str]:
    """A tenant with an API key and the chain: (tenant id, API key, id of the chain's last version)."""
    graph = open_graph(settings)
    try:
        await Migrator(graph).migrate()
        tenants = TenantRepository(graph)
        name = f"bench-{uuid.uuid4().hex[:8]}"
        tenant = await tenants.create(name)
        key = await tenants.issue_key(name)
        versions = chain_versions()
        began = time.perf_counter()
        edges = await LineageRepository(graph).create_chain(tenant.id, FORM_KEY, versions)
        print(f"chain: {len(versions)} versions, {edges} edges written in {time.perf_counter() - began:.2f}s")
        return tenant.id, key, versions[-1].id
    finally:
        await graph.close()


async def repository_p50(settings: Settings, tenant: str, last_id: str, rounds: int) -> dict[int, float]:
    graph = open_graph(settings)
    repository = LineageRepository(graph)
    timings: dict[int, list[float]] = {hops: [] for hops in HOPS}
    try:
        for round_number in range(rounds + 10):
            for hops in HOPS:
                began = time.perf_counter()
                nodes = await repository.lineage(tenant, last_id, direction="up", depth=hops)
                if round_number >= 10:
                    timings[hops].append(time.perf_counter() - began)
                assert len(nodes) == hops + 1
    finally:
        await graph.close()
    return {hops: statistics.median(t) for hops, t in timings.items()}


def api_p50(settings: Settings, key: str, last_id: str, rounds: int) -> dict[int, float]:
    timings: dict[int, list[float]] = {hops: [] for hops in HOPS}
    headers = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(settings)) as client:
        for round_number in range(rounds + 10):
            for hops in HOPS:
                began = time.perf_counter()
                response = client.get(
                    f"/api/v1/form-versions/{last_id}/lineage",
                    params={"direction": "up", "depth": hops},
                    headers=headers,
                )
                elapsed = time.perf_counter() - began
                assert response.status_code == 200, response.text
                body = response.json()
                assert (len(body["nodes"]), len(body["edges"])) == (hops + 1, hops)
                if round_number >= 10:
                    timings[hops].append(elapsed)
    return {hops: statistics.median(t) for hops, t in timings.items()}


def report(name: str, p50: dict[int, float]) -> None:
    figures = ", ".join(f"{hops} hop{'s' if hops > 1 else ''} {p50[hops] * 1000:.1f} ms" for hops in HOPS)
    print(
        f"{name:<11} p50: {figures} | 100/1: {p50[100] / p50[1]:.2f}x (target <= 3x), "
        f"1000/1: {p50[1000] / p50[1]:.2f}x (target <= 10x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        server = LocalNeo4jServer(data_dir=Path(tmp) / "neo4j", bolt_port=free_port(), heap="768m")
        server.start(timeout=300)
        try:
            settings = Settings(
                neo4j=Neo4jSettings(uri=server.bolt_uri), vectors=VectorSettings(path=Path(tmp) / "vectors")
            )
            tenant, key, last_id = asyncio.run(seed(settings))
            report("repository", asyncio.run(repository_p50(settings, tenant, last_id, args.rounds)))
            report("API", api_p50(settings, key, last_id, args.rounds))
        finally:
            server.stop()


if __name__ == "__main__":
    main()

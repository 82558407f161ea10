"""`kill -9` of the real API server mid-ingest: nothing acknowledged is lost, the index catches up."""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.formversions.schemas import FormVersionCreate
from app.formversions.service import FormVersionProcessor
from app.resources import open_graph
from app.settings import Settings
from graph.forms import FormVersionRepository, LayoutInventory
from graph.tenants import TenantRepository
from tests.e2e.conftest import TenantKey, create_tenant
from tests.e2e.servers import PAGEFORGE, ApiServer, api_server, server_env
from vectors.edge import EdgeLayoutIndex

pytestmark = pytest.mark.slow

REVISIONS = "nav-formio/test-forms-revisions"
# One client thread per revision chain; each posts its chain oldest first, parents defaulting to the latest.
CHAINS = ("activities", "custom-components", "your-information", "test-mellomlagring")
KILL_AFTER_ACKS = 14
DRAIN_TIMEOUT_S = 120.0
CLI_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Acknowledged:
    form_key: str
    id: str
    parents: list[str]
    # The answer said the layout was already in the index (not left to the outbox).
    indexed: bool


def revisions(corpora: Path, chain: str) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((corpora / REVISIONS / chain).glob("*.json"))]


def post_chains_until_killed(
    server: ApiServer, tenant: TenantKey, chains: dict[str, list[dict[str, Any]]]
) -> list[Acknowledged]:
    """Client threads post every chain; the server is SIGKILLed once KILL_AFTER_ACKS were acknowledged."""
    acknowledged: list[Acknowledged] = []
    lock = threading.Lock()
    enough = threading.Event()

    def post_chain(form_key: str, definitions: list[dict[str, Any]]) -> None:
        with httpx.Client(base_url=server.url, headers=tenant.headers, timeout=60) as client:
            for definition in definitions:
                try:
                    response = client.post(
                        f"/api/v1/forms/{form_key}/versions", json={"definition": definition}
                    )
                except httpx.HTTPError:
                    return
                assert response.status_code in (200, 201), response.text
                body = response.json()
                with lock:
                    acknowledged.append(
                        Acknowledged(form_key, body["id"], body["parents"], not body["index_pending"])
                    )
                    if len(acknowledged) >= KILL_AFTER_ACKS:
                        enough.set()

    threads = [threading.Thread(target=post_chain, args=item) for item in chains.items()]
    for thread in threads:
        thread.start()
    assert enough.wait(timeout=300), f"only {len(acknowledged)} acknowledged:\n{server.log_tail()}"
    server.kill()
    for thread in threads:
        thread.join(timeout=90)
        assert not thread.is_alive(), "a client thread hung after the kill"
    return acknowledged


async def open_entries(settings: Settings, tenant_name: str) -> tuple[set[str], set[str]]:
    """The tenant's versions whose layout, and whose lineage context, the outbox still holds."""
    graph = open_graph(settings)
    try:
        inventory = LayoutInventory(graph)
        tenant = (await TenantRepository(graph).named(tenant_name)).id
        versions = await inventory.fingerprints(tenant, after="", limit=10_000)
        return {v.id for v in versions if v.pending}, {v.id for v in versions if v.context_pending}
    finally:
        await graph.close()


def indexed_ids(settings: Settings, tenant_name: str, ids: list[str]) -> set[str]:
    """Which of these versions have a point in the layout index (no server may hold it meanwhile)."""

    async def tenant_id() -> str:
        graph = open_graph(settings)
        try:
            return (await TenantRepository(graph).named(tenant_name)).id
        finally:
            await graph.close()

    tenant = asyncio.run(tenant_id())
    index = EdgeLayoutIndex(settings.vectors.path / settings.vectors.collection, dimension=384)
    index.ensure()
    try:
        return {point.id for point in index.get(tenant, ids)}
    finally:
        index.close()


async def commit_without_indexing(settings: Settings, tenant_name: str, definition: dict[str, Any]) -> str:
    """What a crash between graph commit and index upsert leaves: a version with an open outbox entry."""
    graph = open_graph(settings)
    try:
        tenant = (await TenantRepository(graph).named(tenant_name)).id
        processor = FormVersionProcessor(versions=FormVersionRepository(graph), relay=None, index=None)
        created = await processor.ingest(
            tenant=tenant, form_key="crash-window", body=FormVersionCreate(definition=definition)
        )
        assert created.index_pending
        return created.id
    finally:
        await graph.close()


def wait_until_drained(settings: Settings, tenant_name: str) -> None:
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while (left := sum(map(len, asyncio.run(open_entries(settings, tenant_name))))) > 0:
        assert time.monotonic() < deadline, f"{left} outbox entries still open after {DRAIN_TIMEOUT_S}s"
        time.sleep(0.5)


def pageforge_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PAGEFORGE), *args], env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False
    )


def outcome(run: subprocess.CompletedProcess[str]) -> str:
    """What a failed CLI run said: its output and the end of its log."""
    return f"exit {run.returncode}\n{run.stdout}\n{run.stderr[-3000:]}"


def versions_of(client: httpx.Client, form_key: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/forms/{form_key}/versions", params={"limit": 200})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_kill_9_loses_no_acknowledged_version_and_the_index_catches_up(
    settings: Settings, corpora: Path, tmp_path: Path
) -> None:
    tenant = create_tenant(settings)
    env = server_env(settings)
    chains = {chain: revisions(corpora, chain) for chain in CHAINS}

    with api_server(env, tmp_path / "server-1.log") as first:
        first.wait_healthy()
        acknowledged = post_chains_until_killed(first, tenant, chains)
    assert first.process.returncode == -signal.SIGKILL
    assert len(acknowledged) < sum(len(c) for c in chains.values()), "the kill came after the whole ingest"
    # Every answer that said "indexed" holds after kill -9; the outbox holds the layouts of the rest,
    # which are the acknowledged ones left pending and at most one request in flight per client.
    said_indexed = [ack.id for ack in acknowledged if ack.indexed]
    assert indexed_ids(settings, tenant.name, said_indexed) == set(said_indexed)
    open_layouts, open_contexts = asyncio.run(open_entries(settings, tenant.name))
    left_pending = {ack.id for ack in acknowledged if not ack.indexed}
    assert left_pending <= open_layouts
    assert len(open_layouts - left_pending) <= len(CHAINS), open_layouts - left_pending
    assert not open_layouts & set(said_indexed)
    crash_window_id = asyncio.run(commit_without_indexing(settings, tenant.name, chains["activities"][0]))

    with api_server(env, tmp_path / "server-2.log") as second:
        second.wait_healthy()
        wait_until_drained(settings, tenant.name)
        with httpx.Client(base_url=second.url, headers=tenant.headers, timeout=30) as client:
            for ack in acknowledged:
                read = client.get(f"/api/v1/form-versions/{ack.id}")
                assert read.status_code == 200, (ack, read.text)
                assert read.json()["parents"] == ack.parents
            for form_key in CHAINS:
                versions = versions_of(client, form_key)
                assert [v["number"] for v in versions] == list(range(1, len(versions) + 1))
                assert versions[0]["parents"] == []
                for parent, child in itertools.pairwise(versions):
                    assert child["parents"] == [parent["id"]], f"{form_key}: lineage broken at {child}"
            assert client.get(f"/api/v1/form-versions/{crash_window_id}").status_code == 200
            committed = sum(len(versions_of(client, form_key)) for form_key in [*CHAINS, "crash-window"])

        busy = pageforge_cli(env, "reconcile", "--tenant", tenant.name, "--dry-run")
        assert busy.returncode == 1
        assert "in use by another process" in busy.stderr, busy.stderr
        assert "stop `pageforge serve` first" in busy.stderr
        # uvicorn shuts down cleanly, then re-raises SIGTERM, so the exit status names the signal.
        assert second.terminate() in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in second.log_tail()

    print(
        f"acknowledged {len(acknowledged)} ({len(said_indexed)} indexed at once), committed {committed}, "
        f"open after the kill: {len(open_layouts)} layouts, {len(open_contexts)} lineage contexts"
    )
    # A dry run first: the relay, not reconcile, must have brought the index level with the graph.
    level = pageforge_cli(env, "reconcile", "--tenant", tenant.name, "--dry-run")
    assert level.returncode == 0, outcome(level)
    assert f"{committed} versions in the graph, {committed} points in the index" in level.stdout
    assert "before: missing 0, orphaned 0, stale 0, stale context 0" in level.stdout, level.stdout

    rebuilt = pageforge_cli(env, "reindex", "--tenant", tenant.name)
    assert rebuilt.returncode == 0, outcome(rebuilt)
    assert f"reindexed {committed} layouts" in rebuilt.stdout

    reconciled = pageforge_cli(env, "reconcile", "--tenant", tenant.name)
    assert reconciled.returncode == 0, outcome(reconciled)
    assert f"{committed} versions in the graph, {committed} points in the index" in reconciled.stdout
    assert "before: missing 0, orphaned 0, stale 0, stale context 0" in reconciled.stdout, reconciled.stdout
    assert "after: missing 0, orphaned 0, stale 0, stale context 0" in reconciled.stdout, reconciled.stdout

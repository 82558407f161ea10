"""Tenants and API keys in the real Neo4j of the test run."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from neo4j import AsyncGraphDatabase

from graph.database import Graph
from graph.errors import ApiKeyNotFound, GraphUnavailable, TenantExists, TenantNotFound
from graph.server import LocalNeo4jServer, free_port
from graph.tenants import KeyHolder, TenantRepository, hash_api_key

pytestmark = pytest.mark.anyio


def unique_name() -> str:
    return f"acme-{uuid.uuid4().hex[:8]}"


async def test_a_key_resolves_to_its_tenant_and_only_its_hash_is_stored(
    graph: Graph, neo4j_server: LocalNeo4jServer
) -> None:
    tenants = TenantRepository(graph)
    name = unique_name()
    created = await tenants.create(name)
    key = await tenants.issue_key(name)

    assert await tenants.for_key(key) == KeyHolder(created, "write")
    assert await tenants.for_key(key + "x") is None
    reader = await tenants.issue_key(name, scope="read")
    assert await tenants.for_key(reader) == KeyHolder(created, "read")
    assert [key.scope for key in await tenants.keys(name)] == ["write", "read"]
    async with AsyncGraphDatabase.driver(neo4j_server.bolt_uri, auth=None) as driver:
        records, _, _ = await driver.execute_query(
            "MATCH (k:ApiKey)-[:AUTHENTICATES]->(:Tenant {name: $name}) RETURN properties(k) AS k", name=name
        )
    stored = [record["k"] for record in records]
    assert {k["hash"] for k in stored} == {hash_api_key(key), hash_api_key(reader)}
    assert not {key, reader} & {value for k in stored for value in k.values()}


async def test_two_tenants_cannot_share_a_name(graph: Graph) -> None:
    tenants = TenantRepository(graph)
    name = unique_name()
    await tenants.create(name)
    with pytest.raises(TenantExists):
        await tenants.create(name)


async def test_a_tenant_is_found_by_its_name_and_an_unknown_name_says_how_to_make_one(graph: Graph) -> None:
    tenants = TenantRepository(graph)
    name = unique_name()
    created = await tenants.create(name)
    assert await tenants.named(name) == created
    with pytest.raises(TenantNotFound, match="pageforge tenant create"):
        await tenants.named(unique_name())


async def test_a_revoked_key_no_longer_resolves_and_the_other_keys_still_do(graph: Graph) -> None:
    tenants = TenantRepository(graph)
    name, other = unique_name(), unique_name()
    created = await tenants.create(name)
    await tenants.create(other)
    first, second = await tenants.issue_key(name), await tenants.issue_key(name)
    foreign = await tenants.issue_key(other)
    assert [key.prefix for key in await tenants.keys(name)] == [first[:10], second[:10]]

    with pytest.raises(ApiKeyNotFound):
        await tenants.revoke_key(name, foreign[:10])
    with pytest.raises(ApiKeyNotFound):
        await tenants.revoke_key(name, foreign)
    await tenants.revoke_key(name, first[:10])
    await tenants.revoke_key(name, second)

    assert await tenants.for_key(first) is None
    assert await tenants.for_key(second) is None
    assert (await tenants.for_key(foreign)) is not None
    assert await tenants.keys(name) == []
    assert await tenants.named(name) == created
    with pytest.raises(ApiKeyNotFound):
        await tenants.revoke_key(name, first)
    with pytest.raises(TenantNotFound):
        await tenants.revoke_key(unique_name(), first)
    with pytest.raises(TenantNotFound):
        await tenants.keys(unique_name())


async def test_keys_are_issued_only_for_existing_tenants(graph: Graph) -> None:
    with pytest.raises(TenantNotFound):
        await TenantRepository(graph).issue_key(unique_name())


async def test_an_unreachable_neo4j_is_reported_as_unavailable() -> None:
    graph = Graph(uri=f"bolt://127.0.0.1:{free_port()}", auth=None, connection_timeout_s=0.5)
    try:
        with pytest.raises(GraphUnavailable):
            await graph.ping()
    finally:
        await graph.close()


def test_cli_creates_a_tenant_and_prints_a_working_key(
    neo4j_server: LocalNeo4jServer, tmp_path: Path
) -> None:
    env = {**os.environ, "PAGEFORGE_NEO4J__URI": neo4j_server.bolt_uri}

    def pageforge(*args: str) -> subprocess.CompletedProcess[str]:
        cli = Path(sys.executable).with_name("pageforge")
        return subprocess.run([str(cli), *args], env=env, capture_output=True, text=True, check=False)

    name = unique_name()
    created = pageforge("tenant", "create", name)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("pf_")

    again = pageforge("tenant", "create", name)
    assert again.returncode == 1
    assert "already exists" in again.stderr
    assert "Traceback" not in again.stderr

    async def resolve() -> str | None:
        graph = Graph(uri=neo4j_server.bolt_uri, auth=None)
        try:
            holder = await TenantRepository(graph).for_key(key)
            return holder.tenant.name if holder else None
        finally:
            await graph.close()

    assert asyncio.run(resolve()) == name

    listed = pageforge("tenant", "keys", name)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith(key[:10])
    revoked = pageforge("tenant", "revoke-key", name, key[:10])
    assert revoked.returncode == 0, revoked.stderr
    assert asyncio.run(resolve()) is None
    unknown = pageforge("tenant", "revoke-key", name, key[:10])
    assert unknown.returncode == 1
    assert "has no key" in unknown.stderr
    assert "Traceback" not in unknown.stderr

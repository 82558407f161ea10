"""Failed authentications through the app on the real Neo4j: a budget per client address, and unknown keys
remembered briefly, so a flood of bad keys costs no graph lookups and locks out no one else."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.resources import open_graph
from app.settings import ApiSettings, Settings
from graph.tenants import KeyHolder, TenantRepository
from tests.e2e.conftest import TenantKey, create_tenant

PROXY = "127.0.0.1"  # the peer every request comes from: a trusted proxy naming the client
FIRST, SECOND = "203.0.113.7", "203.0.113.8"


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The key hashes the app looked up in Neo4j, in order (each lookup still goes to Neo4j)."""
    seen: list[str] = []
    lookup = TenantRepository.for_hash

    async def counted(self: TenantRepository, key_hash: str) -> KeyHolder | None:
        seen.append(key_hash)
        return await lookup(self, key_hash)

    monkeypatch.setattr(TenantRepository, "for_hash", counted)
    return seen


def app_client(settings: Settings, api: ApiSettings) -> TestClient:
    """The sysversions service (Neo4j only), every request arriving from PROXY."""
    configured = settings.model_copy(update={"service": "sysversions", "api": api})
    return TestClient(create_app(configured), client=(PROXY, 50000))


def get_systems(client: TestClient, address: str, key: str | None) -> tuple[int, dict[str, str]]:
    headers = {"X-Forwarded-For": address}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    response = client.get("/api/v1/systems", headers=headers)
    return response.status_code, dict(response.headers)


def another_key(settings: Settings, tenant: TenantKey) -> str:
    async def work() -> str:
        graph = open_graph(settings)
        try:
            return await TenantRepository(graph).issue_key(tenant.name)
        finally:
            await graph.close()

    return asyncio.run(work())


@pytest.fixture
def tenant(settings: Settings) -> TenantKey:
    return create_tenant(settings)


@pytest.fixture
def throttled(settings: Settings) -> Iterator[TestClient]:
    # Five failures per address; refilling one takes 1000s, far longer than the test runs.
    api = ApiSettings(trusted_proxies=[PROXY], auth_failures_per_s=0.001, auth_failures_burst=5)
    with app_client(settings, api) as client:
        yield client


def test_a_flood_of_bad_keys_from_one_address_gets_429_without_lookups_and_no_one_else_is_locked_out(
    throttled: TestClient, settings: Settings, tenant: TenantKey, lookups: list[str]
) -> None:
    assert get_systems(throttled, FIRST, tenant.key)[0] == 200  # confirmed by Neo4j, now remembered
    for _ in range(5):
        assert get_systems(throttled, FIRST, f"pf_{uuid.uuid4().hex}")[0] == 401
    assert len(lookups) == 6

    status, headers = get_systems(throttled, FIRST, f"pf_{uuid.uuid4().hex}")
    assert status == 429
    assert headers["content-type"] == "application/problem+json"
    assert int(headers["retry-after"]) > 900
    assert get_systems(throttled, FIRST, None)[0] == 429  # a missing key is a failure too
    assert len(lookups) == 6

    # Only failures are counted: a key Neo4j confirmed a moment ago keeps working from that address; a key
    # that needs a lookup waits, since looking it up is what the flood must not cause.
    assert get_systems(throttled, FIRST, tenant.key)[0] == 200
    fresh = another_key(settings, tenant)
    assert get_systems(throttled, FIRST, fresh)[0] == 429
    assert len(lookups) == 6

    # Another address has its own budget.
    assert get_systems(throttled, SECOND, f"pf_{uuid.uuid4().hex}")[0] == 401
    assert get_systems(throttled, SECOND, fresh)[0] == 200
    assert len(lookups) == 8


def test_repeats_of_an_unknown_key_are_401_without_another_lookup(
    settings: Settings, lookups: list[str]
) -> None:
    api = ApiSettings(trusted_proxies=[PROXY], auth_failures_per_s=0, unknown_key_cache_s=60)
    with app_client(settings, api) as client:
        bad = f"pf_{uuid.uuid4().hex}"
        for _ in range(20):
            assert get_systems(client, FIRST, bad)[0] == 401
        assert len(lookups) == 1
        assert get_systems(client, FIRST, f"pf_{uuid.uuid4().hex}")[0] == 401
        assert len(lookups) == 2


def test_the_forwarded_address_counts_only_from_a_trusted_proxy(
    settings: Settings, lookups: list[str]
) -> None:
    api = ApiSettings(auth_failures_per_s=0.001, auth_failures_burst=2)  # PROXY not trusted
    with app_client(settings, api) as client:
        # Untrusted, the peer is the client whatever address it forwards: one budget for all three.
        for address in (FIRST, SECOND):
            assert get_systems(client, address, f"pf_{uuid.uuid4().hex}")[0] == 401
        assert get_systems(client, "192.0.2.1", f"pf_{uuid.uuid4().hex}")[0] == 429

"""API keys managed over REST with the admin scope (created with scopes and expiry, listed, revoked across
processes), and browsers' cross-origin requests, on the real stack."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.resources import open_graph
from app.settings import ApiSettings, Settings, VectorSettings
from graph.server import LocalNeo4jServer
from graph.tenants import TenantRepository
from tests.conftest import settings_for
from tests.e2e.conftest import TenantKey, create_tenant

ORIGIN = "https://forms.example.org"
FORM = {"key": "k", "title": "K", "layout": [{"node": "field", "key": "name"}]}


def issue(settings: Settings, tenant: str, **options: object) -> str:
    async def work() -> str:
        graph = open_graph(settings)
        try:
            return await TenantRepository(graph).issue_key(tenant, **options)  # type: ignore[arg-type]
        finally:
            await graph.close()

    return asyncio.run(work())


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def settings(neo4j_server: LocalNeo4jServer, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = settings_for(neo4j_server.bolt_uri, tmp_path_factory.mktemp("keys"))
    settings.api.key_cache_s = 2.0  # how long another process may still accept a revoked key
    settings.api.cors_origins = [ORIGIN]
    return settings


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def admin(settings: Settings) -> tuple[TenantKey, str]:
    """A fresh tenant (with its ordinary write key) and an admin key of it."""
    tenant = create_tenant(settings)
    scopes = ("admin", "forms:read", "forms:write", "releases:write", "renders:read")
    return tenant, issue(settings, tenant.name, scopes=scopes)


def test_an_admin_creates_lists_and_revokes_keys_and_the_secret_is_shown_once(
    client: TestClient, settings: Settings, admin: tuple[TenantKey, str], tmp_path: Path
) -> None:
    tenant, admin_key = admin
    body = {"scopes": ["forms:read"], "expires_in_s": 3600, "label": "dashboard"}
    created = client.post("/api/v1/keys", headers=bearer(admin_key), json=body)
    assert created.status_code == 201, created.text
    new = created.json()
    assert new["key"].startswith(new["prefix"])
    assert new["scopes"] == ["forms:read"]
    assert new["label"] == "dashboard"
    expires = datetime.fromisoformat(new["expires_at"])
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)

    # The new key may read, not write, and not manage keys.
    assert client.get("/api/v1/forms", headers=bearer(new["key"])).status_code == 200
    write = client.post("/api/v1/forms/k/versions", headers=bearer(new["key"]), json={"definition": FORM})
    assert write.status_code == 403
    assert write.json()["missing_scope"] == "forms:write"
    assert client.get("/api/v1/keys", headers=bearer(new["key"])).json()["missing_scope"] == "admin"
    # Nor may an ordinary write key.
    assert client.get("/api/v1/keys", headers=tenant.headers).status_code == 403

    listed = client.get("/api/v1/keys", headers=bearer(admin_key)).json()["items"]
    assert [key["prefix"] for key in listed][-1] == new["prefix"]
    assert len(listed) == 3  # the tenant's first key, the admin key, the new one
    assert all("key" not in key for key in listed)
    assert new["key"] not in str(listed)

    # Another process (with an index of its own: one process owns an embedded index) that accepted the key
    # a moment ago.
    elsewhere = settings.model_copy(update={"vectors": VectorSettings(path=tmp_path / "vectors")})
    with TestClient(create_app(elsewhere)) as other_process:
        assert other_process.get("/api/v1/forms", headers=bearer(new["key"])).status_code == 200
        assert client.delete(f"/api/v1/keys/{new['prefix']}", headers=bearer(admin_key)).status_code == 204
        assert client.get("/api/v1/forms", headers=bearer(new["key"])).status_code == 401  # at once here
        deadline = time.monotonic() + settings.api.key_cache_s + 5
        while other_process.get("/api/v1/forms", headers=bearer(new["key"])).status_code != 401:
            assert time.monotonic() < deadline, "the other process kept accepting a revoked key"
            time.sleep(0.2)
    assert client.delete(f"/api/v1/keys/{new['prefix']}", headers=bearer(admin_key)).status_code == 404


def test_keys_cannot_be_managed_across_tenants_or_asked_for_unknown_scopes(
    client: TestClient, admin: tuple[TenantKey, str], settings: Settings
) -> None:
    _, admin_key = admin
    other = create_tenant(settings)
    their_prefix = other.key[:10]
    assert client.delete(f"/api/v1/keys/{their_prefix}", headers=bearer(admin_key)).status_code == 404
    assert client.get("/api/v1/forms", headers=other.headers).status_code == 200
    for body in ({"scopes": ["root"]}, {"scopes": []}, {"scopes": ["forms:read"], "expires_in_s": 1}):
        assert client.post("/api/v1/keys", headers=bearer(admin_key), json=body).status_code == 422, body


def test_an_expired_key_is_refused(client: TestClient, settings: Settings) -> None:
    tenant = create_tenant(settings)
    expiring = issue(settings, tenant.name, expires_at=datetime.now(UTC) + timedelta(seconds=2))
    assert client.get("/api/v1/forms", headers=bearer(expiring)).status_code == 200
    time.sleep(2.5)
    refused = client.get("/api/v1/forms", headers=bearer(expiring))
    assert refused.status_code == 401
    assert "API key expired" in refused.json()["detail"]


def test_a_browser_preflight_from_an_allowed_origin_is_answered_without_a_key(client: TestClient) -> None:
    preflight = client.options(
        "/api/v1/forms/k/versions",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in preflight.headers

    foreign = client.options(
        "/api/v1/forms",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert foreign.status_code == 400
    assert "access-control-allow-origin" not in foreign.headers
    # A real request from the allowed origin carries the header; one from another origin does not.
    refused = client.get("/api/v1/forms", headers={"Origin": ORIGIN})
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == ORIGIN
    other = client.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_cross_origin_is_off_by_default_and_credentials_never_go_with_a_wildcard(
    neo4j_server: LocalNeo4jServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    settings = settings_for(neo4j_server.bolt_uri, tmp_path_factory.mktemp("no-cors"))
    with TestClient(create_app(settings)) as client:
        response = client.options(
            "/api/v1/forms", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"}
        )
        assert "access-control-allow-origin" not in response.headers
    with pytest.raises(ValueError, match="cannot go with the origin"):
        ApiSettings(cors_origins=["*"], cors_allow_credentials=True)
    with pytest.raises(ValueError, match="is not an origin"):
        ApiSettings(cors_origins=["https://forms.example.org/app"])

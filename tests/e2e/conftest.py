"""The app through HTTP, on the real stack (Neo4j from the test run, Qdrant Edge or the run's Qdrant server,
the real model)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.main import create_app
from app.resources import open_graph
from app.settings import Settings, VectorSettings
from graph.server import LocalNeo4jServer
from graph.tenants import TenantRepository
from tests.conftest import neo4j_settings, settings_for
from vectors.server import LocalQdrantServer

# Revisions of NAV's test forms, one folder per form, in order (under ../shared/corpora).
REVISIONS = "nav-formio/test-forms-revisions"


def revision_files(corpora: Path, form: str) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((corpora / REVISIONS / form).glob("*.json"))]


@dataclass(frozen=True)
class TenantKey:
    name: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def create_tenant(settings: Settings, scopes: tuple[str, ...] | None = None) -> TenantKey:
    """A fresh tenant with one API key, made the way `pageforge tenant create` makes it (or granting
    `scopes`)."""
    name = f"tenant-{uuid.uuid4().hex[:8]}"

    async def work() -> str:
        graph = open_graph(settings)
        try:
            tenants = TenantRepository(graph)
            await tenants.create(name)
            return await tenants.issue_key(name, scopes=scopes)
        finally:
            await graph.close()

    return TenantKey(name=name, key=asyncio.run(work()))


def server_vector_settings(server: LocalQdrantServer) -> VectorSettings:
    """The run's Qdrant server, API key on, with a collection no other test uses."""
    return VectorSettings(
        qdrant_url=server.url,
        qdrant_api_key=SecretStr(server.api_key),
        collection=f"layouts-{uuid.uuid4().hex[:12]}",
    )


@pytest.fixture(scope="module", params=["embedded", "servers"])
def app_settings(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings of the module's app, with a layout index of the module's own. Every module runs twice: on
    the embedded default (the managed Neo4j without authentication, Qdrant Edge in-process), and as a
    server deployment runs (a Neo4j that requires a password, the run's Qdrant server with an API key,
    through qdrant-client)."""
    var_dir = tmp_path_factory.mktemp("app")
    if request.param == "embedded":
        neo4j: LocalNeo4jServer = request.getfixturevalue("neo4j_server")
        return settings_for(neo4j.bolt_uri, var_dir)
    neo4j = request.getfixturevalue("neo4j_server_with_password")
    settings = settings_for(neo4j.bolt_uri, var_dir)
    return settings.model_copy(
        update={
            "neo4j": neo4j_settings(neo4j),
            "vectors": server_vector_settings(request.getfixturevalue("qdrant_server")),
        }
    )


@pytest.fixture(scope="module")
def client(app_settings: Settings) -> Iterator[TestClient]:
    """One app per test module; its tests keep apart as tenants do, each with fresh ones."""
    with TestClient(create_app(app_settings)) as test_client:
        yield test_client


def post_version(client: TestClient, tenant: TenantKey, form_key: str, definition: Any, **body: Any) -> Any:
    """POST a version of the form; it must be created (201)."""
    response = client.post(
        f"/api/v1/forms/{form_key}/versions", headers=tenant.headers, json={"definition": definition, **body}
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def tenant(app_settings: Settings) -> TenantKey:
    return create_tenant(app_settings)

"""Health, authentication, request ids and problem+json errors, through HTTP on the real stack."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.main import create_app
from app.observability import JsonLogFormatter
from app.resources import open_graph
from app.settings import EmbedderSettings, Settings
from graph.tenants import TenantRepository
from tests.conftest import migrated, settings_for, start_test_neo4j
from tests.e2e.conftest import TenantKey, create_tenant


def test_health_is_ok_with_every_dependency_up(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert {name: dep["status"] for name, dep in body["dependencies"].items()} == {
        "neo4j": "up",
        "vectors": "up",
        "embedder": "up",
    }


def test_with_neo4j_down_health_and_requests_answer_503_within_the_timeout_and_recover(
    tmp_path: Path,
) -> None:
    server = migrated(start_test_neo4j(tmp_path / "neo4j"))
    settings = settings_for(server.bolt_uri, tmp_path)
    # A short timeout keeps the test quick; the bound is the setting, whatever its value.
    timeout_s = 2.0
    settings = settings.model_copy(
        update={"neo4j": settings.neo4j.model_copy(update={"connection_timeout_s": timeout_s})}
    )
    tenant = create_tenant(settings)
    try:
        with TestClient(create_app(settings)) as client:
            assert client.get("/health").status_code == 200
            assert client.get("/api/v1/forms", headers=tenant.headers).status_code == 200  # key now cached
            server.stop()
            started = time.monotonic()
            response = client.get("/health")
            elapsed = time.monotonic() - started
            assert response.status_code == 503
            # Bounded by the probe's timeout (plus a margin for a loaded machine), not the driver's retries.
            health_timeout_s = settings.api.health_timeout_s
            assert elapsed < 2 * health_timeout_s, f"/health took {elapsed:.1f}s with neo4j down"
            dependencies = response.json()["dependencies"]
            assert dependencies["neo4j"]["status"] == "down"
            assert dependencies["vectors"]["status"] == "up"

            # A request waits about PAGEFORGE_NEO4J__CONNECTION_TIMEOUT_S for Neo4j, not a multiple of it,
            # and its 503 names Neo4j without its address.
            for method, path, body in [
                ("GET", "/api/v1/forms", None),
                ("POST", "/api/v1/forms/down/versions", {"definition": {"components": []}}),
            ]:
                started = time.monotonic()
                refused = client.request(method, path, headers=tenant.headers, json=body)
                elapsed = time.monotonic() - started
                assert refused.status_code == 503, refused.text
                assert elapsed < 2.5 * timeout_s, f"{method} {path} took {elapsed:.1f}s with neo4j down"
                detail = refused.json()["detail"]
                assert detail.startswith("neo4j is unavailable"), detail
                assert str(server.bolt_port) not in detail
                assert "127.0.0.1" not in detail

            server.start(timeout=240)
            deadline = time.monotonic() + 30
            while (response := client.get("/health")).status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.5)
            assert response.status_code == 200, response.text
            assert client.get("/api/v1/forms", headers=tenant.headers).status_code == 200
    finally:
        server.stop()


def test_health_names_the_embedder_when_the_model_cannot_load(settings: Settings, tmp_path: Path) -> None:
    broken = settings.model_copy(update={"embedder": EmbedderSettings(model=str(tmp_path / "no-such-model"))})
    with TestClient(create_app(broken)) as client:
        response = client.get("/health")
    assert response.status_code == 503
    dependencies = response.json()["dependencies"]
    assert dependencies["embedder"]["status"] == "down"
    assert "no-such-model" in dependencies["embedder"]["detail"]
    assert dependencies["neo4j"]["status"] == "up"


def test_api_rejects_a_missing_key(client: TestClient) -> None:
    response = client.get("/api/v1/tenant")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"
    assert "missing API key" in response.json()["detail"]


@pytest.mark.parametrize("header", ["Bearer pf_not-a-real-key", "Basic dXNlcjpwYXNz", "Bearer "])
def test_api_rejects_a_wrong_key(client: TestClient, header: str) -> None:
    response = client.get("/api/v1/tenant", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["status"] == 401


def test_each_key_is_scoped_to_its_own_tenant(client: TestClient, app_settings: Settings) -> None:
    first, second = create_tenant(app_settings), create_tenant(app_settings)
    seen = {t.name: client.get("/api/v1/tenant", headers=t.headers).json() for t in (first, second)}
    assert seen[first.name]["name"] == first.name
    assert seen[second.name]["name"] == second.name
    assert seen[first.name]["id"] != seen[second.name]["id"]


def test_request_id_is_echoed_and_appears_in_json_logs(client: TestClient, tenant: TenantKey) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLogFormatter())
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        response = client.get("/api/v1/tenant", headers={**tenant.headers, "X-Request-ID": "trace-42.a"})
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
    assert response.headers["x-request-id"] == "trace-42.a"
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [line for line in lines if line["logger"] == "pageforge.access"]
    assert access, stream.getvalue()
    assert access[-1]["request_id"] == "trace-42.a"
    assert access[-1]["status"] == 200


def test_a_request_id_is_generated_when_missing_or_unsafe(client: TestClient) -> None:
    generated = client.get("/health").headers["x-request-id"]
    replaced = client.get("/health", headers={"X-Request-ID": "bad id\twith spaces"}).headers["x-request-id"]
    assert len(generated) == 32
    assert replaced != "bad id\twith spaces"
    assert len(replaced) == 32


def test_errors_are_problem_json(client: TestClient, tenant: TenantKey) -> None:
    response = client.get("/api/v1/no-such-thing", headers=tenant.headers)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 404
    assert body["request_id"] == response.headers["x-request-id"]


def test_an_oversize_body_is_refused_with_413(client: TestClient, tenant: TenantKey) -> None:
    response = client.post("/api/v1/tenant", headers=tenant.headers, content=b"x" * 1_000_001)
    assert response.status_code == 413
    assert response.json()["title"] == "Payload too large"


def test_openapi_documents_the_api_and_its_bearer_auth(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "/api/v1/tenant" in spec["paths"]
    assert "/health" in spec["paths"]
    assert any(scheme["scheme"] == "bearer" for scheme in spec["components"]["securitySchemes"].values())


def metric_samples(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_metrics_count_requests_by_route_template_and_status(client: TestClient, tenant: TenantKey) -> None:
    missing = str(uuid.uuid4())
    before = metric_samples(client)
    assert client.get(f"/api/v1/form-versions/{missing}", headers=tenant.headers).status_code == 404
    assert client.get(f"/api/v1/no-such-thing/{missing}", headers=tenant.headers).status_code == 404
    assert client.get("/api/v1/tenant", headers=tenant.headers).status_code == 200
    after = metric_samples(client)

    def counted(route: str, status: str) -> float:
        key = (
            "pageforge_http_requests_total",
            frozenset({"method": "GET", "route": route, "status": status}.items()),
        )
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert counted("/api/v1/form-versions/{version_id}", "404") == 1
    assert counted("unmatched", "404") == 1
    assert counted("/api/v1/tenant", "200") == 1
    timed = (
        "pageforge_http_request_duration_seconds_count",
        frozenset({"method": "GET", "route": "/api/v1/tenant"}.items()),
    )
    assert after[timed] - before.get(timed, 0.0) == 1
    assert all(missing not in dict(labels).get("route", "") for _, labels in after)
    assert after[("pageforge_layout_outbox_pending", frozenset())] >= 0
    assert after[("pageforge_lineage_context_pending", frozenset())] >= 0


def test_a_tenant_over_its_rate_gets_429_with_retry_after_and_others_are_served(
    settings: Settings, tmp_path: Path
) -> None:
    limited = settings.model_copy(
        update={
            "api": settings.api.model_copy(update={"rate_limit_per_s": 0.01, "rate_limit_burst": 2}),
            "vectors": settings.vectors.model_copy(update={"path": tmp_path / "vectors"}),
        }
    )
    first, second = create_tenant(settings), create_tenant(settings)
    with TestClient(create_app(limited)) as client:
        assert client.get("/api/v1/tenant", headers=first.headers).status_code == 200
        assert client.get("/api/v1/forms", headers=first.headers).status_code == 200
        refused = client.get("/api/v1/tenant", headers=first.headers)
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["Retry-After"]) >= 1
        assert "requests per second" in refused.json()["detail"]
        assert client.get("/api/v1/tenant", headers=second.headers).status_code == 200
        assert client.get("/health").status_code == 200


def test_a_read_only_key_reads_and_searches_but_cannot_ingest(
    client: TestClient, app_settings: Settings, corpora: Path
) -> None:
    writer = create_tenant(app_settings)

    async def issue_reader() -> str:
        graph = open_graph(app_settings)
        try:
            return await TenantRepository(graph).issue_key(writer.name, scope="read")
        finally:
            await graph.close()

    reader = {"Authorization": f"Bearer {asyncio.run(issue_reader())}"}
    definition = json.loads(next((corpora / "nav-formio").rglob("*.json")).read_text())
    created = client.post(
        "/api/v1/forms/written/versions", headers=writer.headers, json={"definition": definition}
    )
    assert created.status_code == 201, created.text

    refused = client.post("/api/v1/forms/refused/versions", headers=reader, json={"definition": definition})
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert "read-only" in refused.json()["detail"]
    release = {"version": "1.0", "forms": [{"form_key": "written", "version_id": created.json()["id"]}]}
    assert client.post("/api/v1/systems/portal/releases", headers=reader, json=release).status_code == 403

    forms = client.get("/api/v1/forms", headers=reader).json()["items"]
    assert [form["key"] for form in forms] == ["written"]
    assert client.get("/api/v1/systems", headers=reader).json()["items"] == []
    search = client.post("/api/v1/layouts/search", headers=reader, json={"text": "name and address", "k": 3})
    assert search.status_code == 200, search.text

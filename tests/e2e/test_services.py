"""One process per service behind the gateway: real `pageforge serve --service` processes, through HTTP."""

from __future__ import annotations

import io
import json
import signal
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.settings import Settings
from graph.server import LocalNeo4jServer
from tests.conftest import neo4j_settings, settings_for
from tests.e2e.conftest import TenantKey, create_tenant, server_vector_settings
from tests.e2e.servers import ApiServer, server_env
from vectors.server import LocalQdrantServer

pytestmark = pytest.mark.slow

REVISIONS = "nav-formio/test-forms-revisions"
SERVICES = ("formversions", "sysversions", "renderer")
# The relay of the formversions process polls the outbox every second; this only bounds a broken run.
INDEXED_WITHIN_S = 90.0
RECOVERY_WITHIN_S = 60.0


@dataclass
class Deployment:
    services: dict[str, ApiServer]
    gateway: ApiServer
    settings: Settings
    env: dict[str, str]
    log_dir: Path

    def client(self, tenant: TenantKey | None = None, **headers: str) -> httpx.Client:
        auth = tenant.headers if tenant else {}
        return httpx.Client(base_url=f"{self.gateway.url}/api/v1", headers={**auth, **headers}, timeout=60)


def revision(corpora: Path, form: str, index: int) -> dict[str, Any]:
    files = sorted((corpora / REVISIONS / form).glob("*.json"))
    loaded: dict[str, Any] = json.loads(files[index].read_text())
    return loaded


@pytest.fixture(scope="module")
def deployment(
    neo4j_server_with_password: LocalNeo4jServer,
    qdrant_server: LocalQdrantServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployment]:
    """The three services and the gateway, each its own process, started together, as a server deployment
    runs them: against a Neo4j that requires a password and a Qdrant server with an API key."""
    var_dir = tmp_path_factory.mktemp("services")
    settings = settings_for(neo4j_server_with_password.bolt_uri, var_dir).model_copy(
        update={
            "neo4j": neo4j_settings(neo4j_server_with_password),
            "vectors": server_vector_settings(qdrant_server),
        }
    )
    env = server_env(settings, api__max_body_bytes="1000000")
    services = {name: ApiServer(env, var_dir / f"{name}.log", "--service", name) for name in SERVICES}
    gateway_env = env | {
        f"PAGEFORGE_GATEWAY__{name.upper()}_URL": server.url for name, server in services.items()
    }
    gateway = ApiServer(gateway_env, var_dir / "gateway.log", "--service", "gateway")
    try:
        for server in [*services.values(), gateway]:
            server.wait_healthy()
        yield Deployment(services, gateway, settings, env, var_dir)
    finally:
        for server in [gateway, *services.values()]:
            server.close()


@pytest.fixture(scope="module")
def tenants(deployment: Deployment) -> tuple[TenantKey, TenantKey]:
    return create_tenant(deployment.settings), create_tenant(deployment.settings)


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def similar_ids(client: httpx.Client, version_id: str) -> set[str]:
    response = client.get(f"/form-versions/{version_id}/similar", params={"k": 10})
    assert response.status_code == 200, response.text
    return {item["version_id"] for item in response.json()["items"]}


def wait_until_similar(client: httpx.Client, version_id: str, expected: str) -> None:
    deadline = time.monotonic() + INDEXED_WITHIN_S
    while expected not in similar_ids(client, version_id):
        assert time.monotonic() < deadline, f"{expected} not indexed within {INDEXED_WITHIN_S}s"
        time.sleep(0.5)


def test_each_service_opens_and_reports_only_what_it_uses(deployment: Deployment) -> None:
    uses = {
        name: set(httpx.get(f"{server.url}/health", timeout=10).json()["dependencies"])
        for name, server in deployment.services.items()
    }
    assert uses == {
        "formversions": {"neo4j", "vectors", "embedder"},
        "sysversions": {"neo4j"},
        "renderer": {"neo4j", "embedder"},
    }
    gateway = httpx.get(f"{deployment.gateway.url}/health", timeout=10)
    assert gateway.status_code == 200, gateway.text
    assert {name: dep["status"] for name, dep in gateway.json()["dependencies"].items()} == dict.fromkeys(
        SERVICES, "up"
    )
    # Each service answers only its own routes; the gateway documents all of them.
    renderer_paths = httpx.get(f"{deployment.services['renderer'].url}/openapi.json").json()["paths"]
    assert "/api/v1/releases/{release_id}/forms/{form_key}/render" in renderer_paths
    assert "/api/v1/forms/{form_key}/versions" not in renderer_paths
    documented = httpx.get(f"{deployment.gateway.url}/openapi.json").json()
    assert {"/api/v1/forms/{form_key}/versions", "/api/v1/releases/{release_id}/drift"} <= set(
        documented["paths"]
    )
    schemes = documented["components"]["securitySchemes"].values()
    assert any(scheme["scheme"] == "bearer" for scheme in schemes)


def test_versions_releases_similar_renders_and_lineage_through_the_gateway(
    deployment: Deployment, tenants: tuple[TenantKey, TenantKey], corpora: Path
) -> None:
    owner, other = tenants
    with deployment.client(owner) as client:
        first = created(
            client.post("/forms/page/versions", json={"definition": revision(corpora, "conditional-page", 0)})
        )
        # A release with an inline form: sysversions writes the version and its outbox entry, the relay of
        # the formversions process indexes it.
        release = created(
            client.post(
                "/systems/benefits/releases",
                json={
                    "version": "2026.1",
                    "forms": [
                        {"form_key": "page", "version_id": first["id"]},
                        {"form_key": "custom", "definition": revision(corpora, "custom-components", 0)},
                    ],
                },
            )
        )
        inline_id = next(pin["version_id"] for pin in release["pins"] if pin["form_key"] == "custom")
        wait_until_similar(client, first["id"], inline_id)
        assert first["id"] in similar_ids(client, inline_id)

        second = created(
            client.post(
                "/forms/page/versions",
                json={"definition": revision(corpora, "conditional-page", 1), "parents": [first["id"]]},
            )
        )
        assert second["parents"] == [first["id"]]
        lineage = client.get(f"/form-versions/{second['id']}/lineage", params={"direction": "up"})
        assert lineage.status_code == 200, lineage.text
        assert [(e["child_id"], e["parent_id"]) for e in lineage.json()["edges"]] == [
            (second["id"], first["id"])
        ]
        drift = client.get(f"/releases/{release['id']}/drift")
        assert drift.status_code == 200, drift.text
        newer = {pin["form_key"]: [v["id"] for v in pin["newer"]] for pin in drift.json()["items"]}
        assert newer == {"page": [second["id"]], "custom": []}

        pdf = client.get(f"/releases/{release['id']}/forms/custom/render", params={"format": "pdf"})
        assert pdf.status_code == 200, pdf.text
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF-")
        html = client.get(f"/form-versions/{inline_id}/render", headers={"X-Request-ID": "via-gateway-1"})
        assert html.status_code == 200, html.text
        assert html.headers["content-type"].startswith("text/html")
        assert html.headers.get_list("x-request-id") == ["via-gateway-1"]
        # The renderer process served it, under the request id the gateway forwarded.
        assert deployment.services["renderer"].logged("via-gateway-1")

    with deployment.client(other) as client:
        assert client.get(f"/form-versions/{first['id']}").status_code == 404
        assert client.get(f"/form-versions/{first['id']}/similar").status_code == 404
        assert client.get(f"/releases/{release['id']}").status_code == 404
        assert client.get(f"/releases/{release['id']}/forms/custom/render").status_code == 404
        copy = created(
            client.post("/forms/page/versions", json={"definition": revision(corpora, "conditional-page", 0)})
        )
        assert copy["id"] != first["id"]
        assert not similar_ids(client, copy["id"]) & {first["id"], second["id"], inline_id}


def test_the_gateway_answers_what_no_service_should_see(
    deployment: Deployment, tenants: tuple[TenantKey, TenantKey]
) -> None:
    owner, _ = tenants
    with deployment.client() as anonymous:
        missing_key = anonymous.get("/tenant")
    assert missing_key.status_code == 401
    assert missing_key.headers["www-authenticate"] == "Bearer"
    with deployment.client(owner) as client:
        assert client.get("/tenant").json()["name"] == owner.name
        unknown = client.get("/no-such-thing")
        assert unknown.status_code == 404
        assert unknown.headers["content-type"] == "application/problem+json"
        too_big = client.post(
            "/forms/page/versions", content=b"x" * 1_000_001, headers={"X-Request-ID": "too-big-1"}
        )
    assert too_big.status_code == 413
    assert too_big.json()["title"] == "Payload too large"
    assert "too-big-1" not in deployment.services["formversions"].log_text()


def test_a_stopped_service_is_named_and_the_others_keep_working(
    deployment: Deployment, tenants: tuple[TenantKey, TenantKey], corpora: Path
) -> None:
    owner, _ = tenants
    renderer = deployment.services["renderer"]
    with deployment.client(owner) as client:
        version = created(
            client.post("/forms/stops/versions", json={"definition": revision(corpora, "radio", 0)})
        )
        # uvicorn shuts down cleanly, then re-raises SIGTERM, so the exit status names the signal.
        assert renderer.terminate() in (0, -signal.SIGTERM)

        health = httpx.get(f"{deployment.gateway.url}/health", timeout=10)
        assert health.status_code == 503
        services = health.json()["dependencies"]
        assert services["renderer"]["status"] == "down"
        assert renderer.url in services["renderer"]["detail"]
        assert services["formversions"]["status"] == services["sysversions"]["status"] == "up"

        render = client.get(f"/form-versions/{version['id']}/render")
        assert render.status_code == 503
        assert render.headers["content-type"] == "application/problem+json"
        assert render.json()["service"] == "renderer"
        assert "renderer" in render.json()["detail"]
        assert client.get(f"/form-versions/{version['id']}").status_code == 200
        assert client.get(f"/form-versions/{version['id']}/similar").status_code == 200
        assert client.get("/systems/benefits").status_code == 200

        # Back on its port, the renderer is found again without restarting the gateway.
        restarted = ApiServer(
            deployment.env, deployment.log_dir / "renderer-2.log", "--service", "renderer", port=renderer.port
        )
        deployment.services["renderer"] = restarted
        restarted.wait_healthy()
        deadline = time.monotonic() + RECOVERY_WITHIN_S
        while httpx.get(f"{deployment.gateway.url}/health", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "gateway still reports a service down"
            time.sleep(0.5)
        assert client.get(f"/form-versions/{version['id']}/render").status_code == 200


def wait_job(client: httpx.Client, path: str) -> dict[str, Any]:
    deadline = time.monotonic() + INDEXED_WITHIN_S
    while True:
        job: dict[str, Any] = client.get(path.removeprefix("/api/v1")).json()
        if job["state"] not in ("queued", "running"):
            return job
        assert time.monotonic() < deadline, f"job not finished within {INDEXED_WITHIN_S}s: {job}"
        time.sleep(0.3)


def test_jobs_run_where_their_service_lives_and_are_followed_through_the_gateway(
    deployment: Deployment, tenants: tuple[TenantKey, TenantKey], corpora: Path
) -> None:
    owner, other = tenants
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in ("accordion", "activities"):
            archive.write(corpora / "nav-formio" / "test-forms" / f"{name}.json", f"forms/{name}.json")
    big = {
        "key": "big",
        "title": "Big",
        "layout": [{"node": "field", "key": f"f{i}", "label": f"Field {i}"} for i in range(1_001)],
    }
    with deployment.client(owner) as client:
        # An ingest: accepted by formversions, run beside its index.
        accepted = client.post(
            "/jobs/ingest", content=buffer.getvalue(), headers={"content-type": "application/zip"}
        )
        assert accepted.status_code == 202, accepted.text
        ingest = wait_job(client, accepted.headers["location"])
        assert ingest["state"] == "succeeded", ingest
        assert ingest["result"]["forms"] == ["accordion", "activities"]
        assert client.get("/forms/accordion").status_code == 200

        # A PDF over PDF_JOB_FIELDS: queued by the renderer, run by the renderer's runner, read through
        # formversions, which serves /jobs.
        version = created(client.post("/forms/big/versions", json={"definition": big}))
        queued = client.get(f"/form-versions/{version['id']}/render", params={"format": "pdf"})
        assert queued.status_code == 202, queued.text
        render = wait_job(client, queued.headers["location"])
        assert render["state"] == "succeeded", render
        pdf = client.get(render["links"]["result"].removeprefix("/api/v1"))
        assert pdf.status_code == 200
        assert pdf.content.startswith(b"%PDF-")
        assert deployment.services["renderer"].logged(f"job {render['id']} succeeded")
    with deployment.client(other) as client:
        assert client.get(accepted.headers["location"].removeprefix("/api/v1")).status_code == 404
    # The explorer is served by the gateway too (it calls the API on the same origin).
    page = httpx.get(f"{deployment.gateway.url}/explorer/")
    assert page.status_code == 200
    assert "explorer.js" in page.text

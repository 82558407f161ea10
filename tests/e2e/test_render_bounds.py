"""Renders are bounded: by the form's size, the PDF's pages and time, per tenant; a render whose client left,
or that runs when the server is told to stop, is stopped. On the real stack, against a real server process."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import RenderSettings
from graph.server import LocalNeo4jServer
from tests.conftest import settings_for
from tests.e2e.conftest import TenantKey, create_tenant, post_version
from tests.e2e.servers import ApiServer, api_server, server_env

pytestmark = pytest.mark.slow

# A PDF of this many one-line fields (about 650 pages) is still being laid out when its clients give up
# after 8 s and while everything below happens (one of 4,900 fields took under 20 s once in CI, once
# 60 s). Over the default field limit: the server below allows it.
BOMB_FIELDS = 9_000


def form(key: str, fields: int) -> dict[str, Any]:
    return {
        "key": key,
        "title": key,
        "layout": [{"node": "field", "key": f"f{i}", "label": f"Field {i}"} for i in range(fields)],
    }


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# --- Limits known before the work starts, answered by an app in this process ------------------------


def app_with(
    neo4j: LocalNeo4jServer, var_dir: Path, renders: RenderSettings, max_fields: int = 10_000
) -> Iterator[tuple[TestClient, TenantKey]]:
    settings = settings_for(neo4j.bolt_uri, var_dir, render=renders)
    settings.api.max_fields = max_fields
    with TestClient(create_app(settings)) as client:
        yield client, create_tenant(settings)


@pytest.fixture(scope="module")
def limited(
    neo4j_server: LocalNeo4jServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, TenantKey]]:
    renders = RenderSettings(max_fields=50, max_pdf_pages=2)
    yield from app_with(neo4j_server, tmp_path_factory.mktemp("limited"), renders, max_fields=60)


def test_a_form_over_the_ingest_field_limit_is_refused_whole_and_nothing_is_written(
    limited: tuple[TestClient, TenantKey],
) -> None:
    client, tenant = limited
    response = client.post(
        "/api/v1/forms/huge/versions", headers=tenant.headers, json={"definition": form("huge", 61)}
    )
    assert response.status_code == 422, response.text
    assert "61 fields" in response.json()["detail"]
    assert "PAGEFORGE_API__MAX_FIELDS" in response.json()["detail"]
    inline = {"form_key": "huge", "definition": form("huge", 61)}
    release = client.post(
        "/api/v1/systems/portal/releases",
        headers=tenant.headers,
        json={"version": "1", "forms": [inline]},
    )
    assert release.status_code == 422, release.text
    assert "PAGEFORGE_API__MAX_FIELDS" in release.json()["detail"]
    for path in ("/api/v1/forms/huge/versions", "/api/v1/systems/portal/releases"):
        listed = client.get(path, headers=tenant.headers)
        assert listed.status_code in (200, 404), listed.text
        assert listed.status_code == 404 or listed.json()["items"] == []
    post_version(client, tenant, "huge", form("huge", 60))


@pytest.fixture(scope="module")
def hurried(
    neo4j_server: LocalNeo4jServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, TenantKey]]:
    yield from app_with(
        neo4j_server,
        tmp_path_factory.mktemp("hurried"),
        RenderSettings(pdf_timeout_s=1.0, pdf_job_fields=BOMB_FIELDS),
    )


def test_a_form_over_the_field_limit_is_not_rendered_in_any_format(
    limited: tuple[TestClient, TenantKey],
) -> None:
    client, tenant = limited
    version = post_version(client, tenant, "big", form("big", 51))
    for fmt in ("html", "json", "pdf"):
        response = client.get(
            f"/api/v1/form-versions/{version['id']}/render", params={"format": fmt}, headers=tenant.headers
        )
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert "51 fields" in detail
        assert "PAGEFORGE_RENDER__MAX_FIELDS" in detail
    fits = post_version(client, tenant, "fits", form("fits", 50))
    assert client.get(f"/api/v1/form-versions/{fits['id']}/render", headers=tenant.headers).status_code == 200


def test_a_pdf_past_the_page_limit_is_refused_and_its_html_still_renders(
    limited: tuple[TestClient, TenantKey],
) -> None:
    client, tenant = limited
    version = post_version(client, tenant, "pages", form("pages", 50))
    url = f"/api/v1/form-versions/{version['id']}/render"
    response = client.get(url, params={"format": "pdf"}, headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert "more than 2 pages" in response.json()["detail"]
    assert client.get(url, headers=tenant.headers).status_code == 200


def test_a_pdf_over_its_time_budget_is_stopped_with_503_and_the_next_pdf_renders(
    hurried: tuple[TestClient, TenantKey],
) -> None:
    client, tenant = hurried
    version = post_version(client, tenant, "slow", form("slow", 1_500))  # about 100 pages: seconds
    response = client.get(f"/api/v1/form-versions/{version['id']}/render?format=pdf", headers=tenant.headers)
    assert response.status_code == 503, response.text
    assert "not finished within 1 s" in response.json()["detail"]
    assert client.app.state.renders.pdf_workers.pids == set()  # type: ignore[attr-defined]
    small = post_version(client, tenant, "tiny", form("tiny", 1))
    tiny = client.get(f"/api/v1/form-versions/{small['id']}/render?format=pdf", headers=tenant.headers)
    assert tiny.status_code == 200
    assert tiny.content.startswith(b"%PDF")


# --- A real server: renders running while other things happen ----------------------------------------


@pytest.fixture(scope="module")
def server(neo4j_server: LocalNeo4jServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    var_dir = tmp_path_factory.mktemp("bounded")
    env = server_env(
        settings_for(neo4j_server.bolt_uri, var_dir),
        render__slots="2",
        render__per_tenant="1",
        render__max_waiting="1",
        render__max_pdf_pages="100000",
        render__max_fields=str(BOMB_FIELDS),
        render__pdf_job_fields=str(BOMB_FIELDS),  # the bombs are rendered within their requests
        render__pdf_timeout_s="600",
        api__shutdown_timeout_s="2",
    )
    with api_server(env, var_dir / "server.log") as running:
        running.wait_healthy()
        yield running


@pytest.fixture(scope="module")
def tenants(neo4j_server: LocalNeo4jServer) -> tuple[TenantKey, TenantKey]:
    settings = settings_for(neo4j_server.bolt_uri, Path("unused"))
    return create_tenant(settings), create_tenant(settings)


@pytest.fixture(scope="module")
def bomb(server: ApiServer, tenants: tuple[TenantKey, TenantKey]) -> str:
    """The id of tenant A's form of BOMB_FIELDS fields."""
    response = httpx.post(
        f"{server.url}/api/v1/forms/bomb/versions",
        json={"definition": form("bomb", BOMB_FIELDS)},
        headers=tenants[0].headers,
        timeout=120,
    )
    assert response.status_code == 201, response.text
    version_id: str = response.json()["id"]
    return version_id


def start_render(
    server: ApiServer, tenant: TenantKey, version_id: str, data: dict[str, Any], *, wait_s: float = 600
) -> dict[str, Any]:
    """A prefilled PDF render in a thread (its own data: no other render shares its work), given up after
    `wait_s`; the result dict gets the response or the error when it ends."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["response"] = httpx.post(
                f"{server.url}/api/v1/form-versions/{version_id}/render?format=pdf",
                json={"data": data},
                headers=tenant.headers,
                timeout=httpx.Timeout(600, read=wait_s),
            )
        except httpx.HTTPError as exc:
            result["error"] = exc
        result["ended"] = True

    result["thread"] = threading.Thread(target=run, daemon=True)
    result["thread"].start()
    return result


def test_another_tenant_renders_while_one_tenant_runs_pdf_bombs(
    server: ApiServer, tenants: tuple[TenantKey, TenantKey], bomb: str
) -> None:
    a, b = tenants
    small = httpx.post(
        f"{server.url}/api/v1/forms/small/versions", json={"definition": form("small", 3)}, headers=b.headers
    )
    assert small.status_code == 201, small.text
    # A gives up on its renders after a while (the server then stops them): nobody waits for a bomb.
    # Long enough for B's small PDF on a loaded machine (CI under load ran it past 6 s).
    first = start_render(server, a, bomb, {"f0": "first"}, wait_s=15)
    time.sleep(1)
    second = start_render(server, a, bomb, {"f0": "second"}, wait_s=15)  # waits: A holds its one slot
    time.sleep(1)
    third = httpx.post(
        f"{server.url}/api/v1/form-versions/{bomb}/render?format=pdf",
        json={"data": {"f0": "third"}},
        headers=a.headers,
    )
    assert third.status_code == 429, third.text  # one may wait; the next is told to come back
    assert int(third.headers["Retry-After"]) >= 1

    other = httpx.get(
        f"{server.url}/api/v1/form-versions/{small.json()['id']}/render?format=pdf",
        headers=b.headers,
        timeout=600,
    )
    assert other.status_code == 200
    assert other.content.startswith(b"%PDF")
    assert ("ended" in first, "ended" in second) == (False, False)  # B did not wait for A's renders

    for render in (first, second):
        render["thread"].join(timeout=60)
        assert isinstance(render.get("error"), httpx.ReadTimeout), render
    assert server.logged("render stopped: the client went away", timeout_s=30), server.log_tail()


def test_a_pdf_whose_client_leaves_is_stopped(
    server: ApiServer, tenants: tuple[TenantKey, TenantKey], bomb: str
) -> None:
    with pytest.raises(httpx.ReadTimeout):  # the client gives up and closes the connection
        httpx.post(
            f"{server.url}/api/v1/form-versions/{bomb}/render?format=pdf",
            json={"data": {"f0": "left"}},
            headers=tenants[0].headers,
            timeout=httpx.Timeout(60, read=3),
        )
    assert server.logged("render stopped: the client went away", timeout_s=30), server.log_tail()
    killed = re.findall(r"PDF worker (\d+) killed: render cancelled", server.log_text())
    assert killed, server.log_tail()
    # The line is logged as the kill is sent: the process may take a moment to be gone.
    deadline = time.monotonic() + 10
    while alive(int(killed[-1])):
        assert time.monotonic() < deadline, f"PDF worker {killed[-1]} still alive"
        time.sleep(0.1)


def test_a_second_serve_on_a_taken_port_or_on_the_same_embedded_index_exits_and_the_first_serves_on(
    server: ApiServer, tmp_path: Path
) -> None:
    same_port = ApiServer(server.env, tmp_path / "same-port.log", port=server.port)
    assert same_port.process.wait(timeout=120) == 1
    assert f"error: cannot listen on 127.0.0.1:{server.port}" in same_port.log_text()
    # On the same directories, a second server would take writes that only the first can index.
    same_index = ApiServer(server.env, tmp_path / "same-index.log")
    assert same_index.process.wait(timeout=120) == 3  # uvicorn's status for a failed start-up
    log = same_index.log_text()
    assert "is in use by another process" in log, log[-3000:]
    assert "error: PageForge did not start" in log
    assert str(tmp_path.parent) not in log.split("is in use by another process")[0].splitlines()[-1]
    assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200


def test_sigterm_stops_the_server_within_its_bound_while_a_pdf_renders(
    server: ApiServer, tenants: tuple[TenantKey, TenantKey], bomb: str
) -> None:
    running = start_render(server, tenants[0], bomb, {"f0": "at shutdown"})
    time.sleep(3)
    assert "ended" not in running
    # Shutdown waits 2 s (PAGEFORGE_API__SHUTDOWN_TIMEOUT_S) for the render, then cancels it and exits.
    assert server.terminate(timeout_s=30) in (0, -signal.SIGTERM), server.log_tail()
    killed = re.findall(r"PDF worker (\d+) killed", server.log_text())
    assert killed
    assert not any(alive(int(pid)) for pid in killed)

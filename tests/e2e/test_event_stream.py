"""GET /api/v1/events on a real server process: the tenant's events live as Server-Sent Events, in order,
resumable with Last-Event-ID, a resync past the retention window, heartbeats while quiet; opened by a
browser's EventSource in Chromium with a stream token."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.resources import open_graph
from app.scopes import Scope
from graph.server import LocalNeo4jServer
from graph.tenants import TenantRepository
from tests.browser import CHROMIUM, CHROMIUM_ARGS, PLAYWRIGHT, node
from tests.conftest import settings_for
from tests.e2e.conftest import TenantKey, create_tenant
from tests.e2e.servers import ApiServer, api_server, server_env
from tests.e2e.sse import Listener

RETENTION_S = 3.0


@pytest.fixture(scope="module")
def server(neo4j_server: LocalNeo4jServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    var_dir = tmp_path_factory.mktemp("stream")
    env = server_env(
        settings_for(neo4j_server.bolt_uri, var_dir),
        events__retention_s=str(RETENTION_S),
        events__heartbeat_s="0.5",
        events__stream_poll_s="0.1",
    )
    with api_server(env, var_dir / "server.log") as running:
        running.wait_healthy()
        yield running


@pytest.fixture
def tenant(neo4j_server: LocalNeo4jServer, tmp_path: Path) -> TenantKey:
    return create_tenant(settings_for(neo4j_server.bolt_uri, tmp_path), scopes=tuple(Scope))


def post(server: ApiServer, tenant: TenantKey, form_key: str, title: str) -> str:
    definition = {"key": form_key, "title": title, "layout": [{"node": "field", "key": title.lower()}]}
    response = httpx.post(
        f"{server.url}/api/v1/forms/{form_key}/versions",
        headers=tenant.headers,
        json={"definition": definition},
    )
    assert response.status_code == 201, response.text
    version_id: str = response.json()["id"]
    return version_id


def test_events_stream_live_in_order_and_resume_from_last_event_id(
    server: ApiServer, tenant: TenantKey, neo4j_server: LocalNeo4jServer, tmp_path: Path
) -> None:
    other = create_tenant(settings_for(neo4j_server.bolt_uri, tmp_path))
    live = Listener(f"{server.url}/api/v1/events", tenant.headers)
    try:
        time.sleep(0.5)  # the stream is open: it starts from now
        posted = [post(server, tenant, "sse", title) for title in ("One", "Two", "Three")]
        post(server, other, "sse", "Theirs")
        live.wait_until(lambda: len(live.versions_created()) >= len(posted), "version.created for each post")
        live.wait_until(lambda: bool(live.comments), "heartbeat while quiet")
    finally:
        live.close()
    assert live.status == 200
    assert live.content_type.startswith("text/event-stream")
    assert live.versions_created() == posted
    assert {m["data"]["tenant"] for m in live.messages} == {tenant.name}
    ids = [int(m["id"]) for m in live.messages]
    assert ids == sorted(ids)

    # Reconnect as a browser does, with the last id it saw: what came after, nothing before.
    seen = next(m for m in live.messages if m["data"]["data"].get("version_id") == posted[0])
    resumed = Listener(f"{server.url}/api/v1/events", {**tenant.headers, "Last-Event-ID": seen["id"]})
    expected = [i for i in ids if i > int(seen["id"])]
    try:
        replayed = resumed.wait(len(expected))
    finally:
        resumed.close()
    assert [int(m["id"]) for m in replayed[: len(expected)]] == expected


def test_a_resume_from_beyond_the_retention_window_is_told_to_resync(
    server: ApiServer, tenant: TenantKey
) -> None:
    post(server, tenant, "old", "Old")
    time.sleep(RETENTION_S * 3)  # past the window, and pruned (every second with this retention)
    resumed = Listener(f"{server.url}/api/v1/events?after=0", tenant.headers)
    try:
        first = resumed.wait(1)[0]
    finally:
        resumed.close()
    assert first["event"] == "resync"
    assert first["data"]["resume_after"] >= 1


def test_the_stream_needs_a_reading_credential(server: ApiServer) -> None:
    assert httpx.get(f"{server.url}/api/v1/events").status_code == 401


def stream_token(server: ApiServer, tenant: TenantKey) -> dict[str, Any]:
    response = httpx.post(f"{server.url}/api/v1/events/stream-tokens", headers=tenant.headers)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_a_stream_token_opens_the_stream_without_a_header_and_nothing_else(
    server: ApiServer, tenant: TenantKey, neo4j_server: LocalNeo4jServer, tmp_path: Path
) -> None:
    token = stream_token(server, tenant)
    assert token["stream_url"] == f"/api/v1/events?stream_token={token['token']}"
    live = Listener(server.url + token["stream_url"], {})
    try:
        time.sleep(0.5)
        posted = post(server, tenant, "by-token", "Tokened")
        live.wait_until(lambda: posted in live.versions_created(), "version.created through a stream token")
    finally:
        live.close()
    assert live.status == 200
    assert {m["data"]["tenant"] for m in live.messages} == {tenant.name}

    forms = httpx.get(f"{server.url}/api/v1/forms", params={"stream_token": token["token"]})
    assert forms.status_code == 401
    assert "opens only /api/v1/events" in forms.json()["detail"]
    unknown = httpx.get(f"{server.url}/api/v1/events", params={"stream_token": "pfs_" + "x" * 43})
    assert unknown.status_code == 401
    assert unknown.json()["detail"] == "unknown stream token"

    async def expired() -> str:
        graph = open_graph(settings_for(neo4j_server.bolt_uri, tmp_path))
        try:
            tenants = TenantRepository(graph)
            past = datetime.now(UTC) - timedelta(seconds=1)
            return await tenants.issue_stream_token(await tenants.named(tenant.name), ("forms:read",), past)
        finally:
            await graph.close()

    stale = httpx.get(f"{server.url}/api/v1/events", params={"stream_token": asyncio.run(expired())})
    assert stale.status_code == 401
    assert "stream token expired" in stale.json()["detail"]


def test_a_stream_token_needs_a_reading_credential(
    server: ApiServer, neo4j_server: LocalNeo4jServer, tmp_path: Path
) -> None:
    writer = create_tenant(settings_for(neo4j_server.bolt_uri, tmp_path), scopes=(Scope.FORMS_WRITE,))
    response = httpx.post(f"{server.url}/api/v1/events/stream-tokens", headers=writer.headers)
    assert response.status_code == 403
    assert httpx.post(f"{server.url}/api/v1/events/stream-tokens").status_code == 401


# A page of the server's origin gets a stream token with a key, opens an EventSource with it, says it is
# open, and prints the version.created events it receives once it has as many as it is told on stdin.
EVENT_SOURCE_SCRIPT = r"""
const [playwrightPath, chromium, argsJson, origin, key] = process.argv.slice(1);
const { chromium: launcher } = require(playwrightPath);
(async () => {
  const browser = await launcher.launch({ executablePath: chromium, args: JSON.parse(argsJson) });
  const page = await browser.newPage();
  await page.goto(origin + "/health");
  const opened = await page.evaluate(async (key) => {
    const answer = await fetch("/api/v1/events/stream-tokens", {
      method: "POST", headers: { Authorization: "Bearer " + key },
    });
    const body = await answer.json();
    window.received = [];
    await new Promise((resolve, reject) => {
      const source = new EventSource(body.stream_url);
      source.addEventListener("version.created", (event) => {
        window.received.push({ id: event.lastEventId, data: JSON.parse(event.data) });
      });
      source.onopen = () => resolve();
      setTimeout(() => reject(new Error("the EventSource did not open")), 20000);
    });
    return { status: answer.status, url: body.stream_url };
  }, key);
  process.stdout.write(JSON.stringify(opened) + "\n");
  const count = await new Promise((resolve) => process.stdin.once("data", (d) => resolve(Number(String(d)))));
  await page.waitForFunction((n) => window.received.length >= n, count, { timeout: 30000 });
  process.stdout.write(JSON.stringify(await page.evaluate(() => window.received)) + "\n");
  await browser.close();
})().catch((error) => { console.error(error); process.exit(2); });
"""


def test_a_browser_event_source_receives_the_tenants_events_in_chromium(
    server: ApiServer, tenant: TenantKey
) -> None:
    browser = subprocess.Popen(
        [
            node(),
            "-e",
            EVENT_SOURCE_SCRIPT,
            str(PLAYWRIGHT),
            str(CHROMIUM),
            json.dumps(CHROMIUM_ARGS),
            server.url,
            tenant.key,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert browser.stdout is not None
        assert browser.stdin is not None
        opened_line = browser.stdout.readline()
        assert opened_line, browser.communicate(timeout=10)[1][-2000:]
        opened = json.loads(opened_line)
        assert opened["status"] == 201
        assert opened["url"].startswith("/api/v1/events?stream_token=pfs_")
        posted = [post(server, tenant, "browser", title) for title in ("Uno", "Dos")]
        browser.stdin.write(f"{len(posted)}\n")
        browser.stdin.flush()
        received, errors = browser.communicate(timeout=60)
    finally:
        if browser.poll() is None:
            browser.kill()
    assert browser.returncode == 0, errors[-2000:]
    events = json.loads(received)
    assert [event["data"]["data"]["version_id"] for event in events] == posted
    assert {event["data"]["tenant"] for event in events} == {tenant.name}
    assert [int(event["id"]) for event in events] == sorted(int(event["id"]) for event in events)

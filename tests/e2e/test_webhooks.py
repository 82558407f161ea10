"""Webhooks on the real stack: events written with the changes they announce, delivered to a real receiver
on loopback that checks every signature with the `standardwebhooks` package (the specification's own
library), in commit order per endpoint, retried while the receiver is down, never another tenant's."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from standardwebhooks.webhooks import Webhook

from app.events.targets import TargetRefused, resolve_target
from app.main import create_app
from app.scopes import Scope
from app.settings import Settings, WebhookSettings
from graph.server import LocalNeo4jServer
from tests.conftest import settings_for
from tests.e2e.conftest import TenantKey, create_tenant
from tests.e2e.servers import ApiServer, server_env

WAIT_S = 60.0


class Receiver:
    """An HTTP endpoint that verifies each delivery's signature and keeps what it received; it can be made
    to answer 503 (down) or 410 (gone)."""

    def __init__(self) -> None:
        self.secret: str | None = None
        self.answer = 200
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.refused = 0
        self.bad_signatures = 0
        self.delay_s = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                time.sleep(receiver.delay_s)
                if receiver.answer != 200:
                    receiver.refused += 1
                    self.send_response(receiver.answer)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                headers = {name.lower(): value for name, value in self.headers.items()}
                try:
                    assert receiver.secret is not None
                    event = Webhook(receiver.secret).verify(body, headers)
                except Exception:
                    receiver.bad_signatures += 1
                    self.send_response(400)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                receiver.received.append(event)
                receiver.headers.append(headers)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}/hooks/pageforge"
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()


def wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        assert time.monotonic() < deadline, f"not within {WAIT_S:.0f} s: {what}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def settings(neo4j_server: LocalNeo4jServer, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = settings_for(neo4j_server.bolt_uri, tmp_path_factory.mktemp("webhooks"))
    # The tests deliver to loopback, and retry in seconds rather than the default's minutes to days.
    hooks = WebhookSettings(allow_private_targets=True, retry_schedule_s=[0.5, 1.0, 1.0], poll_s=0.1)
    return settings.model_copy(update={"webhooks": hooks})


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiving = Receiver()
    yield receiving
    receiving.close()


def admin_of(settings: Settings) -> TenantKey:
    return create_tenant(settings, scopes=tuple(Scope))


def register(client: TestClient, tenant: TenantKey, receiver: Receiver, events: list[str]) -> dict[str, Any]:
    response = client.post(
        "/api/v1/webhooks", headers=tenant.headers, json={"url": receiver.url, "events": events}
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    assert created["secret"].startswith("whsec_")
    receiver.secret = created["secret"]
    return created


def form(title: str, *keys: str) -> dict[str, Any]:
    return {"key": "f", "title": title, "layout": [{"node": "field", "key": key} for key in keys]}


def post(client: TestClient, tenant: TenantKey, form_key: str, definition: dict[str, Any]) -> dict[str, Any]:
    response = client.post(
        f"/api/v1/forms/{form_key}/versions", headers=tenant.headers, json={"definition": definition}
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_every_event_arrives_signed_in_commit_order_and_only_the_tenants_own(
    client: TestClient, settings: Settings, receiver: Receiver
) -> None:
    tenant, other = admin_of(settings), admin_of(settings)
    register(client, tenant, receiver, ["version.created", "release.created"])
    versions = [
        post(client, tenant, "alpha", form(f"A{i}", *(f"a{j}" for j in range(i + 1)))) for i in range(3)
    ]
    versions += [
        post(client, tenant, "beta", form(f"B{i}", *(f"b{j}" for j in range(i + 1)))) for i in range(2)
    ]
    post(client, other, "alpha", form("theirs", "x"))  # another tenant's: never delivered here
    manifest = {"version": "2026.1", "forms": [{"form_key": "alpha", "version_id": versions[2]["id"]}]}
    release = client.post("/api/v1/systems/portal/releases", headers=tenant.headers, json=manifest)
    assert release.status_code == 201
    wait_for(lambda: len(receiver.received) >= 6, "six deliveries")
    time.sleep(1.0)  # anything more (a duplicate, the other tenant's) would arrive now

    assert receiver.bad_signatures == 0
    events = receiver.received
    assert [event["type"] for event in events] == ["version.created"] * 5 + ["release.created"]
    assert [event["data"]["version_id"] for event in events[:5]] == [version["id"] for version in versions]
    assert [event["data"]["number"] for event in events[:5]] == [1, 2, 3, 1, 2]
    assert events[1]["data"]["parents"] == [versions[0]["id"]]
    assert events[0]["data"]["path"] == f"/api/v1/form-versions/{versions[0]['id']}"
    assert events[5]["data"]["release_id"] == release.json()["id"]
    assert {event["tenant"] for event in events} == {tenant.name}
    # The webhook-id is the event's id: a receiver drops a redelivery by it.
    assert [headers["webhook-id"] for headers in receiver.headers] == [event["id"] for event in events]
    assert len({event["id"] for event in events}) == 6


def test_a_refused_release_announces_nothing(
    client: TestClient, settings: Settings, receiver: Receiver
) -> None:
    tenant = admin_of(settings)
    register(client, tenant, receiver, ["version.created", "release.created"])
    first = post(client, tenant, "gamma", form("G", "g"))
    manifest = {"version": "1", "forms": [{"form_key": "gamma", "version_id": first["id"]}]}
    assert client.post("/api/v1/systems/s/releases", headers=tenant.headers, json=manifest).status_code == 201
    # The same release name with another (inline, new) form: 409, and neither it nor its version exists.
    clash = {"version": "1", "forms": [{"form_key": "delta", "definition": form("D", "d")}]}
    assert client.post("/api/v1/systems/s/releases", headers=tenant.headers, json=clash).status_code == 409
    post(client, tenant, "gamma", form("G2", "g", "h"))
    wait_for(lambda: len(receiver.received) >= 3, "three deliveries")
    time.sleep(1.0)
    assert [event["type"] for event in receiver.received] == [
        "version.created",
        "release.created",
        "version.created",
    ]
    assert all(event["data"].get("form_key") != "delta" for event in receiver.received)


def test_deliveries_wait_while_the_receiver_is_down_and_all_arrive_in_order_after(
    client: TestClient, settings: Settings, receiver: Receiver
) -> None:
    tenant = admin_of(settings)
    endpoint = register(client, tenant, receiver, ["version.created"])
    receiver.answer = 503
    versions = [
        post(client, tenant, "epsilon", form(f"E{i}", *(f"e{j}" for j in range(i + 1)))) for i in range(3)
    ]
    wait_for(lambda: receiver.refused >= 2, "two refused attempts")
    log = client.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries", headers=tenant.headers).json()["items"]
    head = log[-1]  # newest first: the first event is the one being retried
    assert head["status"] == "pending"
    assert head["attempts"] >= 1
    assert head["last_status"] == 503
    assert head["next_at"] is not None
    assert all(item["attempts"] == 0 for item in log[:-1])  # later events wait their turn

    receiver.answer = 200
    wait_for(lambda: len(receiver.received) >= 3, "every delivery once the receiver is up")
    assert [event["data"]["version_id"] for event in receiver.received] == [v["id"] for v in versions]
    log = client.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries", headers=tenant.headers).json()["items"]
    assert {item["status"] for item in log} == {"delivered"}


def test_an_endpoint_that_answers_410_is_disabled_at_once(
    client: TestClient, settings: Settings, receiver: Receiver
) -> None:
    tenant = admin_of(settings)
    endpoint = register(client, tenant, receiver, ["version.created"])
    receiver.answer = 410
    post(client, tenant, "zeta", form("Z", "z"))

    def disabled() -> bool:
        listed = client.get("/api/v1/webhooks", headers=tenant.headers).json()["items"]
        return not next(item for item in listed if item["id"] == endpoint["id"])["enabled"]

    wait_for(disabled, "the endpoint disabled")
    listed = client.get("/api/v1/webhooks", headers=tenant.headers).json()["items"]
    assert "410" in listed[0]["disabled_reason"]
    assert "secret" not in json.dumps(listed)
    assert receiver.refused == 1
    assert client.delete(f"/api/v1/webhooks/{endpoint['id']}", headers=tenant.headers).status_code == 204
    assert client.get("/api/v1/webhooks", headers=tenant.headers).json()["items"] == []


def test_webhooks_need_the_admin_scope_and_a_public_target(client: TestClient, settings: Settings) -> None:
    writer = create_tenant(settings)
    body = {"url": "https://hooks.example.org/pageforge", "events": ["version.created"]}
    refused = client.post("/api/v1/webhooks", headers=writer.headers, json=body)
    assert refused.status_code == 403
    assert refused.json()["missing_scope"] == "admin"

    for url, why in [
        ("http://127.0.0.1:9/x", "loopback"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://10.1.2.3/x", "private"),
        ("ftp://example.org/x", "only http:// and https://"),
        ("http://user:pw@example.org/x", "credentials"),
    ]:
        with pytest.raises(TargetRefused, match=why):
            asyncio.run(resolve_target(url, allow_private=False))


@pytest.mark.slow
def test_kill_9_between_commit_and_delivery_loses_nothing_and_a_redelivery_keeps_its_id(
    settings: Settings, receiver: Receiver, tmp_path: Path
) -> None:
    """A real server process, killed while deliveries of acknowledged versions are still in flight or
    waiting; restarted on the same data, it delivers every one of them."""
    env = server_env(
        settings.model_copy(update={"vectors": settings.vectors.model_copy(update={"path": tmp_path / "v"})}),
        webhooks__allow_private_targets="true",
        webhooks__retry_schedule_s="[0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]",
        webhooks__poll_s="0.1",
    )
    tenant = admin_of(settings)
    receiver.delay_s = 0.3  # a slow receiver: deliveries lag behind the posts
    first = ApiServer(env, tmp_path / "first.log")
    try:
        first.wait_healthy()
        with httpx.Client(base_url=first.url, headers=tenant.headers, timeout=30) as http:
            hook = http.post("/api/v1/webhooks", json={"url": receiver.url, "events": ["version.created"]})
            assert hook.status_code == 201, hook.text
            receiver.secret = hook.json()["secret"]
            posted = []
            for i in range(12):
                definition = form(f"K{i}", *(f"k{j}" for j in range(i + 1)))
                created = http.post("/api/v1/forms/kappa/versions", json={"definition": definition})
                assert created.status_code == 201, created.text
                posted.append(created.json()["id"])
        first.kill()  # SIGKILL with most deliveries still to make
    finally:
        first.close()
    delivered_before = len(receiver.received)
    assert delivered_before < len(posted), "every delivery was made before the kill: nothing was tested"

    second = ApiServer(env, tmp_path / "second.log")
    try:
        second.wait_healthy()
        wait_for(lambda: {e["data"]["version_id"] for e in receiver.received} >= set(posted), "every version")
    finally:
        second.close()
    assert receiver.bad_signatures == 0
    by_id: dict[str, str] = {}
    for event in receiver.received:
        assert by_id.setdefault(event["id"], event["data"]["version_id"]) == event["data"]["version_id"]
    assert sorted(by_id.values()) == sorted(posted)  # each version one event id, redelivered or not
    first_seen = list(dict.fromkeys(event["data"]["version_id"] for event in receiver.received))
    assert first_seen == posted  # in commit order across the restart


def test_layout_indexed_says_when_a_version_is_in_similar_layout_results(
    client: TestClient, settings: Settings, receiver: Receiver
) -> None:
    tenant = admin_of(settings)
    register(client, tenant, receiver, ["layout.indexed"])
    version = post(client, tenant, "eta", form("H", "h"))
    wait_for(lambda: len(receiver.received) >= 1, "layout.indexed")
    event = receiver.received[0]
    assert event["type"] == "layout.indexed"
    assert event["data"]["version_id"] == version["id"]
    similar = client.get(event["data"]["path"], headers=tenant.headers)
    assert similar.status_code == 200, similar.text


def test_a_rotated_secret_overlaps_the_old_one_and_an_event_can_be_redelivered(
    client: TestClient, settings: Settings, receiver: Receiver
) -> None:
    tenant = admin_of(settings)
    endpoint = register(client, tenant, receiver, ["version.created"])
    old_secret = receiver.secret
    first = post(client, tenant, "theta", form("T", "t"))
    wait_for(lambda: len(receiver.received) == 1, "the first delivery")

    rotated = client.post(f"/api/v1/webhooks/{endpoint['id']}/rotate-secret", headers=tenant.headers)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["secret"] != old_secret
    post(client, tenant, "theta", form("T2", "t", "u"))
    wait_for(lambda: len(receiver.received) == 2, "a delivery verified with the old secret")
    receiver.secret = rotated.json()["secret"]  # the receiver switches over
    post(client, tenant, "theta", form("T3", "t", "u", "v"))
    wait_for(lambda: len(receiver.received) == 3, "a delivery verified with the new secret")
    assert receiver.bad_signatures == 0

    # Disabled, it is sent nothing (events of that time are not kept for it); enabled, it is again.
    url = f"/api/v1/webhooks/{endpoint['id']}"
    assert client.patch(url, headers=tenant.headers, json={"enabled": False}).json()["enabled"] is False
    post(client, tenant, "theta", form("T4", "t", "u", "v", "w"))
    time.sleep(1.0)
    assert len(receiver.received) == 3
    enabled = client.patch(url, headers=tenant.headers, json={"enabled": True}).json()
    assert (enabled["enabled"], enabled["disabled_reason"]) == (True, None)
    fifth = post(client, tenant, "theta", form("T5", "t", "u", "v", "w", "x"))
    wait_for(lambda: len(receiver.received) == 4, "a delivery once enabled again")
    assert receiver.received[3]["data"]["version_id"] == fifth["id"]

    first_event = receiver.received[0]
    redeliver = f"{url}/deliveries/{first_event['id']}/redeliver"
    assert client.post(redeliver, headers=tenant.headers).status_code == 202
    wait_for(lambda: len(receiver.received) == 5, "the redelivery")
    assert receiver.received[4]["id"] == first_event["id"]
    assert receiver.received[4]["data"]["version_id"] == first["id"]
    assert client.post(f"{url}/deliveries/no-such-event/redeliver", headers=tenant.headers).status_code == 404

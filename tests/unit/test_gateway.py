"""The gateway: who owns which route, and what it answers when a service is down or silent."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.gateway import create_gateway
from app.services import SERVICES, RouteOwners
from app.settings import ApiSettings, GatewaySettings, Settings
from graph.server import free_port


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x-1", path)


def test_every_route_has_exactly_one_owner_its_own_service() -> None:
    owners = RouteOwners(SERVICES.values())
    for service in SERVICES.values():
        for route in service.routes():
            for method in route.methods:
                assert owners.owner(concrete(route.path), method) == service.name, (route.path, method)


@pytest.mark.parametrize(
    ("path", "method", "owner"),
    [
        ("/releases/r1", "GET", "sysversions"),
        ("/releases/r1/drift", "GET", "formversions"),
        ("/releases/r1/forms/f/render", "GET", "renderer"),
        ("/form-versions/v1/render", "POST", "renderer"),
        ("/form-versions/v1/similar", "GET", "formversions"),
        ("/systems/s/releases", "POST", "sysversions"),
        # A path one service has, with a method it has not: that service answers 405.
        ("/form-versions/v1", "DELETE", "formversions"),
        ("/no-such-thing", "GET", None),
        ("/form-versions/v1/render/extra", "GET", None),
    ],
)
def test_owner_of_a_path(path: str, method: str, owner: str | None) -> None:
    assert RouteOwners(SERVICES.values()).owner(path, method) == owner


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A port that accepts connections and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


@pytest.fixture
def gateway(silent_url: str) -> Iterator[TestClient]:
    """formversions and renderer not running (nothing on their ports), sysversions silent."""
    settings = Settings(
        service="gateway",
        api=ApiSettings(max_body_bytes=1_000, health_timeout_s=0.5),
        gateway=GatewaySettings(
            formversions_url=f"http://127.0.0.1:{free_port()}",
            sysversions_url=silent_url,
            renderer_url=f"http://127.0.0.1:{free_port()}",
            connect_timeout_s=0.5,
            timeout_s=0.5,
        ),
    )
    with TestClient(create_gateway(settings)) as client:
        yield client


def test_an_unreachable_service_is_503_naming_it(gateway: TestClient) -> None:
    response = gateway.get("/api/v1/forms", headers={"X-Request-ID": "gw-503"})
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["service"] == "formversions"
    assert "formversions unreachable" in body["detail"]
    assert body["request_id"] == "gw-503" == response.headers["x-request-id"]


def test_a_silent_service_is_504_naming_it(gateway: TestClient) -> None:
    response = gateway.get("/api/v1/systems")
    assert response.status_code == 504
    assert response.json()["service"] == "sysversions"


def test_health_names_each_service_that_is_down(gateway: TestClient) -> None:
    response = gateway.get("/health")
    assert response.status_code == 503
    services = response.json()["dependencies"]
    assert {name: dep["status"] for name, dep in services.items()} == {
        "formversions": "down",
        "sysversions": "down",
        "renderer": "down",
    }
    assert "unreachable" in services["renderer"]["detail"]
    assert "no answer within 0.5s" in services["sysversions"]["detail"]


def test_the_gateway_itself_refuses_unknown_routes_and_oversize_bodies(gateway: TestClient) -> None:
    unknown = gateway.get("/api/v1/no-such-thing")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    too_big = gateway.post("/api/v1/forms/f/versions", content=b"x" * 1_001)
    assert too_big.status_code == 413


def test_gateway_metrics_count_its_requests_and_show_no_outbox(gateway: TestClient) -> None:
    gateway.get("/api/v1/no-such-thing")
    metrics = gateway.get("/metrics").text
    assert "pageforge_http_requests_total" in metrics
    assert "pageforge_layout_outbox_pending" not in metrics
    assert "pageforge_lineage_context_pending" not in metrics


class CountingService:
    """A real HTTP service on a local port that counts the connections it accepts. It answers each request
    with `status` and closes the connection (so every request is a new one); with status None it closes
    each connection unanswered, as a service going down does."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.status: int | None = 200
        self.connections = 0
        self.heads: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            with connection:
                self.connections += 1
                if self.status is None:
                    continue
                connection.settimeout(5)
                head = b""
                while b"\r\n\r\n" not in head and (chunk := connection.recv(65536)):
                    head += chunk
                self.heads.append(head.decode("latin-1"))
                connection.sendall(
                    f"HTTP/1.1 {self.status} X\r\ncontent-type: application/json\r\n"
                    "content-length: 2\r\nconnection: close\r\n\r\n{}".encode()
                )

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.listener.close()


@pytest.fixture
def formversions() -> Iterator[CountingService]:
    service = CountingService()
    yield service
    service.close()


def breaker_gateway(formversions_url: str, now: list[float]) -> TestClient:
    """A gateway whose breakers open after 3 failures in a row for 30s, on the clock now[0]."""
    settings = Settings(
        service="gateway",
        api=ApiSettings(health_timeout_s=0.5),
        gateway=GatewaySettings(
            formversions_url=formversions_url,
            sysversions_url=f"http://127.0.0.1:{free_port()}",
            renderer_url=f"http://127.0.0.1:{free_port()}",
            connect_timeout_s=0.5,
            timeout_s=5,
            breaker_failures=3,
            breaker_reset_s=30,
        ),
    )
    return TestClient(create_gateway(settings, clock=lambda: now[0]))


def test_an_open_breaker_answers_503_without_contacting_the_service_until_a_probe_finds_it_back(
    formversions: CountingService,
) -> None:
    now = [100.0]
    formversions.status = None  # the service is going down: connections close unanswered
    with breaker_gateway(formversions.url, now) as gateway:
        for _ in range(3):
            assert gateway.get("/api/v1/forms").status_code == 503
        assert formversions.connections == 3
        now[0] += 12
        refused = gateway.get("/api/v1/forms", headers={"X-Request-ID": "gw-open"})
        assert refused.status_code == 503
        assert formversions.connections == 3  # not contacted
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["retry-after"] == "18"
        body = refused.json()
        assert body["service"] == "formversions"
        assert "formversions unavailable" in body["detail"]
        assert body["request_id"] == "gw-open"
        # After the cool-down one probe goes; it fails, so the breaker opens for another cool-down.
        now[0] += 18
        assert gateway.get("/api/v1/forms").status_code == 503
        assert formversions.connections == 4
        assert gateway.get("/api/v1/forms").status_code == 503
        assert formversions.connections == 4
        # The service is back: the next probe gets through, and then every request does.
        formversions.status = 200
        now[0] += 30
        for _ in range(3):
            assert gateway.get("/api/v1/forms").status_code == 200
        assert formversions.connections == 7


def test_answers_of_a_live_service_never_open_the_breaker(formversions: CountingService) -> None:
    formversions.status = 500
    with breaker_gateway(formversions.url, [0.0]) as gateway:
        for _ in range(6):
            assert gateway.get("/api/v1/forms").status_code == 500
    assert formversions.connections == 6


def test_each_service_has_its_own_breaker_and_health_shows_an_open_one(formversions: CountingService) -> None:
    with breaker_gateway(formversions.url, [0.0]) as gateway:
        for _ in range(3):
            unreachable = gateway.get("/api/v1/systems")
            assert unreachable.status_code == 503
            assert "sysversions unreachable" in unreachable.json()["detail"]
        assert "sysversions unavailable" in gateway.get("/api/v1/systems").json()["detail"]
        assert gateway.get("/api/v1/forms").status_code == 200
        services = gateway.get("/health").json()["dependencies"]
    assert "circuit open after 3 failed attempts in a row" in services["sysversions"]["detail"]
    assert services["sysversions"]["status"] == "down"
    assert services["renderer"]["detail"].startswith("unreachable")
    assert "circuit" not in services["renderer"]["detail"]


def test_the_gateway_passes_the_client_address_on_in_x_forwarded_for(formversions: CountingService) -> None:
    with breaker_gateway(formversions.url, [0.0]) as gateway:
        assert gateway.get("/api/v1/forms").status_code == 200
        forwarded = gateway.get("/api/v1/forms", headers={"X-Forwarded-For": "203.0.113.9, 198.51.100.2"})
        assert forwarded.status_code == 200
    first, second = (
        [line for line in head.lower().split("\r\n") if line.startswith("x-forwarded-for:")]
        for head in formversions.heads
    )
    # TestClient's peer address is "testclient"; what the client sent comes first, then who the gateway saw.
    assert first == ["x-forwarded-for: testclient"]
    assert second == ["x-forwarded-for: 203.0.113.9, 198.51.100.2, testclient"]

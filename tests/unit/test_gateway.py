"""The gateway: who owns which route, and what it answers when a service is down or silent."""

from __future__ import annotations

import re
import socket
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

"""An unexpected error still leaves as problem+json that carries the request's id, in body and header."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.errors import install_error_handlers
from app.observability import BodySizeLimitMiddleware, RequestContextMiddleware


def failing_app() -> FastAPI:
    """The gateway's error handlers and middleware (as create_app adds them) around a route that fails."""
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=1_000)
    app.add_middleware(RequestContextMiddleware)

    @app.get("/fails")
    async def fails() -> None:
        raise RuntimeError("a bug")

    return app


@pytest.mark.parametrize("sent", ["trace-500.a", None])
def test_a_500_names_the_request_id_in_body_and_header(sent: str | None) -> None:
    client = TestClient(failing_app(), raise_server_exceptions=False)
    response = client.get("/fails", headers={"X-Request-ID": sent} if sent else {})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    request_id = response.headers.get("x-request-id")
    if sent:
        assert request_id == sent
    else:
        assert request_id is not None
        assert len(request_id) == 32
    assert response.json()["request_id"] == request_id
    assert response.json()["detail"] == "an unexpected error occurred"

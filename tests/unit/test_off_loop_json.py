"""Large JSON bodies are decoded in a worker thread, small ones on the event loop; both arrive the same."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

import app.observability as observability
from app.observability import OFF_LOOP_JSON_BYTES, OffLoopJsonRoute


def test_a_large_body_is_decoded_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    decoded_on: list[int] = []
    real_loads = observability.json.loads

    class RecordingJson:
        @staticmethod
        def loads(body: bytes) -> Any:
            decoded_on.append(threading.get_ident())
            return real_loads(body)

    monkeypatch.setattr(observability, "json", RecordingJson)
    router = APIRouter(route_class=OffLoopJsonRoute)
    loop_thread: list[int] = []

    @router.post("/echo")
    async def echo(body: dict[str, Any]) -> int:
        loop_thread.append(threading.get_ident())
        return len(body["items"])

    app = FastAPI()
    app.include_router(router)
    large = {"items": ["x" * 100] * (OFF_LOOP_JSON_BYTES // 100)}
    with TestClient(app) as client:
        assert client.post("/echo", json={"items": [1, 2]}).json() == 2
        assert client.post("/echo", json=large).json() == len(large["items"])
        assert (
            client.post(
                "/echo", content=b"{not json", headers={"content-type": "application/json"}
            ).status_code
            == 422
        )
    small_on, large_on = decoded_on[0], decoded_on[1]
    assert small_on == loop_thread[0]
    assert large_on != loop_thread[1]

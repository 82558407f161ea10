"""Request ids, JSON logs, request metrics and the request-size limit, as plain ASGI middleware; large JSON
bodies decoded off the event loop."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from typing import Any

import anyio.to_thread
from fastapi.routing import APIRoute
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
access_logger = logging.getLogger("pageforge.access")

REQUEST_ID_HEADER = "x-request-id"
REQUEST_ID_STATE = "request_id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line, with the request id of the request being served."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str) -> None:
    """Send every log record to stderr as JSON."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # WeasyPrint logs each step and page of every PDF at INFO: noise next to the request's own line.
    logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)


# Requests that matched no route share one label, so unknown paths cannot grow the metrics without bound.
UNMATCHED_ROUTE = "unmatched"


def route_template(scope: Scope) -> str:
    """The matched route's path template with the prefixes of the routers it is included in.

    Routing leaves the matched route in the scope, but with included routers its path lacks their
    (static) prefixes: those are the part of the request path before the route's own pattern matches.
    """
    route = scope.get("route")
    pattern = getattr(route, "path_regex", None)
    if route is None or pattern is None:
        return UNMATCHED_ROUTE
    path: str = scope["path"]
    for cut in range(len(path)):
        if path[cut] == "/" and pattern.match(path[cut:]):
            return path[:cut] + str(route.path)
    return UNMATCHED_ROUTE


class RequestMetrics:
    """The Prometheus metrics of one app: requests by route template and status, durations, outbox backlogs
    (unless `outbox` is False)."""

    def __init__(self, *, outbox: bool = True) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "pageforge_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.durations = Histogram(
            "pageforge_http_request_duration_seconds",
            "Time from receiving a request to the end of its response, by method and route template",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=self.registry,
        )
        # The gateway reads no graph: it has no backlog to show.
        self.outbox_pending = Gauge(
            "pageforge_layout_outbox_pending",
            "Versions committed in Neo4j whose layout is not in the vector index yet (read at each scrape; "
            "NaN when Neo4j did not answer)",
            registry=self.registry if outbox else None,
        )
        self.context_pending = Gauge(
            "pageforge_lineage_context_pending",
            "Versions whose lineage context (is_latest, pin_count) in the vector index trails Neo4j (read at "
            "each scrape; NaN when Neo4j did not answer)",
            registry=self.registry if outbox else None,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.durations.labels(method, route).observe(seconds)

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)


class RequestContextMiddleware:
    """Takes X-Request-ID from the request (or makes one), returns it, logs one access line, counts it."""

    def __init__(self, app: ASGIApp, *, metrics: RequestMetrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        # Also kept in the scope: the 500 handler runs outside this middleware, after the reset below.
        scope.setdefault("state", {})[REQUEST_ID_STATE] = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            if self.metrics is not None:
                self.metrics.observe(scope["method"], route_template(scope), status, seconds)
            access_logger.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "fields": {
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round(seconds * 1000, 2),
                    }
                },
            )
            request_id_var.reset(token)


PAYLOAD_TOO_LARGE = "Payload too large"


class BodyTooLarge(HTTPException):
    """Raised while reading a request body that exceeds the limit; FastAPI lets HTTPExceptions through."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body exceeds {max_bytes} bytes")


class BodySizeLimitMiddleware:
    """Rejects request bodies over max_bytes (or the limit `larger` gives their path) with 413, whether
    announced or streamed."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, larger: dict[str, int] | None = None) -> None:
        self.app = app
        self.default_max_bytes = max_bytes
        self.larger = larger or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.larger.get(scope["path"], self.default_max_bytes)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            await self._reject(scope, send, max_bytes)
            return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise BodyTooLarge(max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started = message["type"] == "http.response.start" or response_started
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not response_started:
                await self._reject(scope, send, max_bytes)

    async def _reject(self, scope: Scope, send: Send, max_bytes: int) -> None:
        body = json.dumps(
            {
                "type": "about:blank",
                "title": PAYLOAD_TOO_LARGE,
                "status": 413,
                "detail": f"request body exceeds {max_bytes} bytes",
                "instance": scope["path"],
                "request_id": request_id_var.get(),
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


# JSON bodies at least this large are decoded in a worker thread: a few MB take the event loop tens to
# hundreds of milliseconds, during which no other request (a health check included) is answered.
OFF_LOOP_JSON_BYTES = 64_000


class OffLoopJsonRequest(Request):
    """A request whose large JSON body is decoded in a worker thread."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            if len(body) >= OFF_LOOP_JSON_BYTES:
                self._json = await anyio.to_thread.run_sync(json.loads, body)
            else:
                self._json = json.loads(body)
        return self._json


class OffLoopJsonRoute(APIRoute):
    """A route that reads its JSON body with OffLoopJsonRequest (the routers that take bodies use it)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            return await handler(OffLoopJsonRequest(request.scope, request.receive))

        return route_handler

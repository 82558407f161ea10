"""The gateway of the per-service deployment: forwards /api/v1 to the service that owns the route."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.background import BackgroundTask

from app import __version__
from app.api import API_PREFIX
from app.breaker import CircuitBreaker
from app.cors import allow_cross_origin
from app.errors import (
    DependencyTimeout,
    DependencyUnavailable,
    NotFound,
    document_problems,
    install_error_handlers,
)
from app.explorer.router import explorer_router
from app.formversions.jobs import INGEST_JOB_PATH
from app.observability import (
    REQUEST_ID_HEADER,
    BodySizeLimitMiddleware,
    RequestContextMiddleware,
    RequestMetrics,
    request_id_var,
)
from app.platform.schemas import DependencyHealth, HealthRead
from app.services import SERVICES, RouteOwners, include_api
from app.settings import Settings

# Headers that describe one connection, not the message (RFC 9110 7.6.1); never forwarded either way.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}
    | {"proxy-authenticate", "proxy-authorization"}
)
# httpx sets these for the forwarded request; the gateway's own middleware sets the request id; the gateway
# sends one X-Forwarded-For: the client's list with the client's address appended.
REQUEST_SET_BY_CLIENT = frozenset({"host", "content-length", REQUEST_ID_HEADER, "x-forwarded-for"})

router = APIRouter()


def _hop_by_hop(headers: Iterable[tuple[str, str]]) -> set[str]:
    """The hop-by-hop header names, with any the Connection header lists."""
    named = {
        token.strip().lower()
        for name, value in headers
        if name.lower() == "connection"
        for token in value.split(",")
    }
    return set(HOP_BY_HOP) | named


@dataclass
class Gateway:
    """The services' base URLs, one HTTP client to reach them, who owns which route, a breaker per service."""

    urls: dict[str, str]
    client: httpx.AsyncClient
    owners: RouteOwners
    health_timeout_s: float
    breakers: dict[str, CircuitBreaker]

    async def forward(self, request: Request) -> Response:
        """The owning service's answer to the request, streamed back as it arrives."""
        path: str = request.scope["path"]
        name = self.owners.owner(path.removeprefix(API_PREFIX), request.method)
        if name is None:
            raise NotFound(f"no route {path}")
        base = self.urls[name]
        raw_path: bytes = request.scope.get("raw_path") or path.encode()
        query: bytes = request.scope["query_string"]
        url = httpx.URL(base).copy_with(raw_path=raw_path + (b"?" + query if query else b""))
        breaker = self.breakers[name]
        probe = breaker.admit()
        try:
            upstream = await self._send(request, url)
        except httpx.PoolTimeout as exc:
            # The gateway's own connection pool was full: that says nothing about the service.
            breaker.abandoned(probe)
            raise DependencyTimeout(f"service {name}: no free connection in time", service=name) from exc
        except httpx.TimeoutException as exc:
            breaker.failed(probe, type(exc).__name__)
            raise DependencyTimeout(
                f"service {name} did not answer in time ({type(exc).__name__})", service=name
            ) from exc
        except httpx.TransportError as exc:
            breaker.failed(probe, str(exc) or type(exc).__name__)
            raise DependencyUnavailable(
                f"service {name} unreachable at {base}: {exc or type(exc).__name__}", service=name
            ) from exc
        except BaseException:
            breaker.abandoned(probe)
            raise
        breaker.succeeded(probe)
        outgoing = upstream.headers.multi_items()
        skip = _hop_by_hop(outgoing) | {REQUEST_ID_HEADER}
        response = StreamingResponse(
            upstream.aiter_raw(), status_code=upstream.status_code, background=BackgroundTask(upstream.aclose)
        )
        response.raw_headers.extend(
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in outgoing if k.lower() not in skip
        )
        return response

    async def _send(self, request: Request, url: httpx.URL) -> httpx.Response:
        """The request sent on to url, its end-to-end headers kept; the service's answer, body unread."""
        incoming = request.headers.items()
        skip = _hop_by_hop(incoming) | REQUEST_SET_BY_CLIENT
        headers = [(k, v) for k, v in incoming if k.lower() not in skip]
        headers.append((REQUEST_ID_HEADER, request_id_var.get() or ""))
        forwarded = [v for k, v in incoming if k.lower() == "x-forwarded-for"]
        if request.client is not None:
            forwarded.append(request.client.host)
        if forwarded:
            headers.append(("X-Forwarded-For", ", ".join(forwarded)))
        body = await request.body()
        upstream_request = self.client.build_request(request.method, url, headers=headers, content=body)
        return await self.client.send(upstream_request, stream=True)

    async def service_health(self, name: str) -> DependencyHealth:
        """Whether the service answers its /health with 200, or why not, and its breaker unless closed."""
        health = await self._probe_health(name)
        breaker = self.breakers[name].describe()
        if breaker is not None:
            health.detail = f"{health.detail}; {breaker}" if health.detail else breaker
        return health

    async def _probe_health(self, name: str) -> DependencyHealth:
        started = time.perf_counter()
        try:
            response = await self.client.get(f"{self.urls[name]}/health", timeout=self.health_timeout_s)
        except httpx.TimeoutException:
            return DependencyHealth(status="down", detail=f"no answer within {self.health_timeout_s:g}s")
        except httpx.TransportError as exc:
            return DependencyHealth(status="down", detail=f"unreachable at {self.urls[name]}: {exc}")
        if response.status_code != 200:
            return DependencyHealth(status="down", detail=_unhealthy(response))
        return DependencyHealth(status="up", latency_ms=round((time.perf_counter() - started) * 1000, 2))


def _unhealthy(response: httpx.Response) -> str:
    """What a service's failing /health says is down."""
    try:
        dependencies: dict[str, Any] = response.json()["dependencies"]
    except (ValueError, KeyError, TypeError):
        return f"/health answered {response.status_code}"
    down = [
        f"{dep} down ({info.get('detail')})"
        for dep, info in dependencies.items()
        if info.get("status") != "up"
    ]
    return f"/health answered {response.status_code}: {'; '.join(down)}"


@asynccontextmanager
async def gateway_lifespan(
    settings: Settings, clock: Callable[[], float], app: FastAPI
) -> AsyncIterator[None]:
    """One HTTP client to the services per gateway process, closed on shutdown, and a breaker per service."""
    config = settings.gateway
    urls = {
        "formversions": config.formversions_url,
        "sysversions": config.sysversions_url,
        "renderer": config.renderer_url,
    }
    timeout = httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s)
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
        app.state.gateway = Gateway(
            urls={name: url.rstrip("/") for name, url in urls.items()},
            client=client,
            owners=RouteOwners(SERVICES.values()),
            health_timeout_s=settings.api.health_timeout_s,
            breakers={
                name: CircuitBreaker(
                    name, failures=config.breaker_failures, reset_s=config.breaker_reset_s, clock=clock
                )
                for name in urls
            },
        )
        yield


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


@router.get("/health", response_model=HealthRead, responses={503: {"model": HealthRead}})
async def get_gateway_health(request: Request) -> JSONResponse:
    """Status of each service behind the gateway; 503 naming whichever is down."""
    gateway = _gateway(request)
    names = list(gateway.urls)
    probes = await asyncio.gather(*(gateway.service_health(name) for name in names))
    services = dict(zip(names, probes, strict=True))
    healthy = all(probe.status == "up" for probe in probes)
    body = HealthRead(status="ok" if healthy else "unavailable", version=__version__, dependencies=services)
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if healthy else 503)


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def get_gateway_metrics(request: Request) -> Response:
    """Prometheus metrics of the gateway process: requests by route and status, durations."""
    metrics: RequestMetrics = request.app.state.metrics
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


@router.api_route(
    API_PREFIX + "/{path:path}",
    methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    include_in_schema=False,
)
async def forward_api(request: Request) -> Response:
    """Forward to the owning service."""
    return await _gateway(request).forward(request)


def create_gateway(settings: Settings, *, clock: Callable[[], float] = time.monotonic) -> FastAPI:
    """The gateway app: /health of every service, /api/v1 forwarded, the API's OpenAPI documents."""
    app = FastAPI(
        title="PageForge",
        version=__version__,
        summary="Form versions and releases in a lineage graph, similar layouts, renders.",
        lifespan=partial(gateway_lifespan, settings, clock),
        redirect_slashes=False,  # as the services: no Location built from the Host header
    )
    app.state.metrics = RequestMetrics(outbox=False)
    install_error_handlers(app)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.api.max_body_bytes,
        larger={API_PREFIX + INGEST_JOB_PATH: settings.jobs.max_archive_bytes},
    )
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics)
    allow_cross_origin(app, settings.api)
    app.include_router(router)
    app.include_router(explorer_router(settings.explorer))
    documented = FastAPI(title=app.title, version=app.version, summary=app.summary)
    documented.include_router(router)
    include_api(documented, SERVICES.values())
    document_problems(documented, api_also=(403, 504))
    app.openapi = documented.openapi  # type: ignore[method-assign]
    return app

"""Health and metrics (no auth), and the caller's own tenant."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from functools import partial

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app import __version__
from app.auth import ResourcesDep, TenantDep
from app.errors import problem_responses
from app.observability import RequestMetrics
from app.platform.schemas import DependencyHealth, HealthRead, TenantRead
from app.resources import EMBEDDER, VECTORS, Resources
from graph.errors import GraphUnavailable
from graph.forms import LayoutOutbox

health_router = APIRouter(tags=["platform"])
router = APIRouter(tags=["platform"])


async def _probe(check: Callable[[], Awaitable[str | None]], timeout_s: float) -> DependencyHealth:
    """Up (with the check's note, if any) or down with the reason."""
    started = time.perf_counter()
    try:
        note = await asyncio.wait_for(check(), timeout_s)
    except TimeoutError:
        return DependencyHealth(status="down", detail=f"no answer within {timeout_s:g}s")
    except Exception as exc:
        return DependencyHealth(status="down", detail=str(exc) or type(exc).__name__)
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    return DependencyHealth(status="up", detail=note, latency_ms=latency_ms)


async def _check_neo4j(resources: Resources) -> None:
    await resources.graph.ping()
    await resources.require_graph()


async def _check_vectors(resources: Resources) -> str | None:
    index = resources.require_index()
    return await anyio.to_thread.run_sync(index.health)


async def _check_embedder(resources: Resources) -> None:
    resources.require_embedder()


@health_router.get("/health", response_model=HealthRead, responses={503: {"model": HealthRead}})
async def get_health(resources: ResourcesDep) -> JSONResponse:
    """Status of PageForge and each dependency this process uses; 503 naming whichever is down."""
    timeout_s = resources.settings.api.health_timeout_s
    checks = {"neo4j": _check_neo4j, VECTORS: _check_vectors, EMBEDDER: _check_embedder}
    used = [name for name in checks if name == "neo4j" or name in resources.uses]
    probes = await asyncio.gather(*(_probe(partial(checks[name], resources), timeout_s) for name in used))
    dependencies = dict(zip(used, probes, strict=True))
    healthy = all(dep.status == "up" for dep in dependencies.values())
    body = HealthRead(
        status="ok" if healthy else "unavailable", version=__version__, dependencies=dependencies
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if healthy else 503)


@health_router.get(
    "/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}}
)
async def get_metrics(request: Request, resources: ResourcesDep) -> Response:
    """Prometheus metrics of this process: requests by route and status, durations, the outbox backlogs."""
    metrics: RequestMetrics = request.app.state.metrics
    backlog: tuple[float, float]
    try:
        backlog = await asyncio.wait_for(
            LayoutOutbox(resources.graph).backlog(), resources.settings.api.health_timeout_s
        )
    except (GraphUnavailable, TimeoutError):
        backlog = (float("nan"), float("nan"))
    metrics.outbox_pending.set(backlog[0])
    metrics.context_pending.set(backlog[1])
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


@router.get("/tenant", response_model=TenantRead, responses=problem_responses(401, 429, 503))
async def get_tenant(tenant: TenantDep) -> TenantRead:
    """The tenant the API key belongs to."""
    return TenantRead(id=tenant.id, name=tenant.name)

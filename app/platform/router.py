"""Health and metrics (no auth), the caller's own tenant, and its API keys (scope admin)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app import __version__
from app.audit import security_event
from app.auth import Admin, ResourcesDep, TenantDep, VerifiedKeys
from app.errors import NotFound, problem_responses
from app.observability import OffLoopJsonRoute, RequestMetrics
from app.platform.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyList,
    ApiKeyRead,
    DependencyHealth,
    HealthRead,
    TenantRead,
)
from app.resources import EMBEDDER, VECTORS, Resources
from app.scopes import KEY_SCOPES
from graph.errors import ApiKeyNotFound, GraphUnavailable
from graph.forms import LayoutOutbox
from graph.tenants import SHOWN_PREFIX, ApiKeyInfo, TenantRepository

health_router = APIRouter(tags=["platform"])
router = APIRouter(tags=["platform"], route_class=OffLoopJsonRoute)


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


def _key_read(key: ApiKeyInfo, now: datetime) -> ApiKeyRead:
    scopes = list(key.scopes) if key.scopes is not None else sorted(KEY_SCOPES[key.scope])
    return ApiKeyRead(
        prefix=key.prefix,
        scopes=scopes,
        label=key.label,
        created_at=key.created_at,
        expires_at=key.expires_at,
        expired=key.expires_at is not None and now >= key.expires_at,
    )


@router.post(
    "/keys",
    response_model=ApiKeyCreated,
    status_code=201,
    responses=problem_responses(400, 401, 403, 413, 415, 422, 429, 503),
)
async def create_key(
    body: ApiKeyCreate, request: Request, tenant: Admin, resources: ResourcesDep
) -> ApiKeyCreated:
    """A new API key of the tenant with the scopes asked for; the key is in this answer only."""
    tenants = TenantRepository(resources.graph)
    scopes = tuple(sorted({scope.value for scope in body.scopes}))
    expires_at = (
        datetime.now(UTC) + timedelta(seconds=body.expires_in_s) if body.expires_in_s is not None else None
    )
    writes = any(scope.endswith(":write") or scope == "admin" for scope in scopes)
    key = await tenants.issue_key(
        tenant.name, "write" if writes else "read", scopes=scopes, expires_at=expires_at, label=body.label
    )
    prefix = key[:SHOWN_PREFIX]
    security_event(
        "key.created", tenant=tenant.name, key_prefix=prefix, scopes=list(scopes), by=request.state.principal
    )
    created = next(info for info in await tenants.keys(tenant.name) if info.prefix == prefix)
    return ApiKeyCreated(**_key_read(created, datetime.now(UTC)).model_dump(), key=key)


@router.get("/keys", response_model=ApiKeyList, responses=problem_responses(401, 403, 429, 503))
async def list_keys(tenant: Admin, resources: ResourcesDep) -> ApiKeyList:
    """The tenant's API keys by their first characters, oldest first (never the keys themselves)."""
    now = datetime.now(UTC)
    keys = await TenantRepository(resources.graph).keys(tenant.name)
    return ApiKeyList(items=[_key_read(key, now) for key in keys])


@router.delete("/keys/{prefix}", status_code=204, responses=problem_responses(401, 403, 404, 429, 503))
async def revoke_key(prefix: str, request: Request, tenant: Admin, resources: ResourcesDep) -> Response:
    """Revoke the tenant's key with these first characters: refused at once by this process, by every
    process within PAGEFORGE_API__KEY_CACHE_S."""
    if len(prefix) != SHOWN_PREFIX:
        raise NotFound(f"no API key of this tenant starts with {prefix!r}")
    try:
        await TenantRepository(resources.graph).revoke_key(tenant.name, prefix)
    except ApiKeyNotFound:
        raise NotFound(f"no API key of this tenant starts with {prefix!r}") from None
    verified: VerifiedKeys = request.app.state.verified_keys
    verified.clear()  # it holds keys by hash: which one was revoked is not known here
    security_event("key.revoked", tenant=tenant.name, key_prefix=prefix, by=request.state.principal)
    return Response(status_code=204)

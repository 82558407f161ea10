"""Webhook endpoints of the caller's tenant (scope admin): register, list, delete, and each one's
delivery log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.audit import security_event
from app.auth import Admin, ResourcesDep
from app.errors import NotFound, problem_responses
from app.events.schemas import (
    DeliveryLog,
    DeliveryRead,
    SecretRotated,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookRead,
    WebhookUpdate,
)
from app.events.signing import new_secret
from app.events.targets import resolve_target
from app.observability import OffLoopJsonRoute
from app.settings import WebhookSettings
from graph.events import WebhookEndpoint, WebhookRepository

router = APIRouter(tags=["webhooks"], route_class=OffLoopJsonRoute)


def _read(endpoint: WebhookEndpoint) -> WebhookRead:
    return WebhookRead(
        id=endpoint.id,
        url=endpoint.url,
        events=endpoint.event_types,
        enabled=endpoint.enabled,
        disabled_reason=endpoint.disabled_reason,
        created_at=endpoint.created_at,
        pending=endpoint.pending,
    )


@router.post(
    "/webhooks",
    response_model=WebhookCreated,
    status_code=201,
    responses=problem_responses(400, 401, 403, 413, 415, 422, 429, 503),
)
async def create_webhook(
    body: WebhookCreate, request: Request, tenant: Admin, resources: ResourcesDep
) -> WebhookCreated:
    """Register an endpoint for the event types: events committed from now on are delivered to it, signed
    with the secret in this answer (shown once)."""
    settings: WebhookSettings = resources.settings.webhooks
    await resolve_target(body.url, allow_private=settings.allow_private_targets)  # 422 naming the problem
    secret = new_secret()
    endpoint = await WebhookRepository(resources.graph).create(tenant.id, body.url, list(body.events), secret)
    security_event("webhook.created", tenant=tenant.name, endpoint=endpoint.id, by=request.state.principal)
    return WebhookCreated(**_read(endpoint).model_dump(), secret=secret)


@router.get("/webhooks", response_model=WebhookList, responses=problem_responses(401, 403, 429, 503))
async def list_webhooks(tenant: Admin, resources: ResourcesDep) -> WebhookList:
    """The tenant's endpoints, oldest first (never their secrets)."""
    endpoints = await WebhookRepository(resources.graph).of_tenant(tenant.id)
    return WebhookList(items=[_read(endpoint) for endpoint in endpoints])


@router.delete(
    "/webhooks/{endpoint_id}", status_code=204, responses=problem_responses(401, 403, 404, 429, 503)
)
async def delete_webhook(
    endpoint_id: str, request: Request, tenant: Admin, resources: ResourcesDep
) -> Response:
    """Delete the endpoint and its deliveries: nothing more is sent to it."""
    if not await WebhookRepository(resources.graph).delete(tenant.id, endpoint_id):
        raise NotFound(f"no webhook endpoint {endpoint_id!r}")
    security_event("webhook.deleted", tenant=tenant.name, endpoint=endpoint_id, by=request.state.principal)
    return Response(status_code=204)


@router.get(
    "/webhooks/{endpoint_id}/deliveries",
    response_model=DeliveryLog,
    responses=problem_responses(401, 403, 404, 422, 429, 503),
)
async def webhook_deliveries(
    endpoint_id: str,
    tenant: Admin,
    resources: ResourcesDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> DeliveryLog:
    """The endpoint's deliveries, newest event first: status, attempts, last answer, next try."""
    repository = WebhookRepository(resources.graph)
    if not any(endpoint.id == endpoint_id for endpoint in await repository.of_tenant(tenant.id)):
        raise NotFound(f"no webhook endpoint {endpoint_id!r}")
    deliveries = await repository.deliveries(tenant.id, endpoint_id, limit)
    return DeliveryLog(items=[DeliveryRead(**vars(delivery)) for delivery in deliveries])


@router.patch(
    "/webhooks/{endpoint_id}",
    response_model=WebhookRead,
    responses=problem_responses(400, 401, 403, 404, 413, 415, 422, 429, 503),
)
async def update_webhook(
    endpoint_id: str, body: WebhookUpdate, request: Request, tenant: Admin, resources: ResourcesDep
) -> WebhookRead:
    """Change the URL, the event types, or enable/disable the endpoint."""
    if body.url is not None:
        await resolve_target(body.url, allow_private=resources.settings.webhooks.allow_private_targets)
    events: list[str] | None = list(body.events) if body.events is not None else None
    updated = await WebhookRepository(resources.graph).update(
        tenant.id, endpoint_id, url=body.url, event_types=events, enabled=body.enabled
    )
    if updated is None:
        raise NotFound(f"no webhook endpoint {endpoint_id!r}")
    security_event("webhook.updated", tenant=tenant.name, endpoint=endpoint_id, by=request.state.principal)
    return _read(updated)


@router.post(
    "/webhooks/{endpoint_id}/rotate-secret",
    response_model=SecretRotated,
    responses=problem_responses(401, 403, 404, 429, 503),
)
async def rotate_webhook_secret(
    endpoint_id: str, request: Request, tenant: Admin, resources: ResourcesDep
) -> SecretRotated:
    """A new signing secret (shown once); deliveries carry a signature with the old one too for
    PAGEFORGE_WEBHOOKS__ROTATION_OVERLAP_S, so the receiver can switch over."""
    secret = new_secret()
    until = datetime.now(UTC) + timedelta(seconds=resources.settings.webhooks.rotation_overlap_s)
    rotated = await WebhookRepository(resources.graph).rotate_secret(
        tenant.id, endpoint_id, secret, int(until.timestamp() * 1000)
    )
    if not rotated:
        raise NotFound(f"no webhook endpoint {endpoint_id!r}")
    security_event(
        "webhook.secret_rotated", tenant=tenant.name, endpoint=endpoint_id, by=request.state.principal
    )
    return SecretRotated(secret=secret, previous_valid_until=until)


@router.post(
    "/webhooks/{endpoint_id}/deliveries/{event_id}/redeliver",
    status_code=202,
    responses=problem_responses(401, 403, 404, 429, 503),
)
async def redeliver(endpoint_id: str, event_id: str, tenant: Admin, resources: ResourcesDep) -> Response:
    """Deliver the event to the endpoint again, whatever became of it (in its turn, in commit order)."""
    if not await WebhookRepository(resources.graph).redeliver(tenant.id, endpoint_id, event_id):
        raise NotFound(f"no delivery of event {event_id!r} to webhook endpoint {endpoint_id!r}")
    return Response(status_code=202)

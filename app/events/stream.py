"""GET /api/v1/events: the caller's tenant's events as Server-Sent Events, live, resumable with
Last-Event-ID within the retention window; the same events the webhooks deliver."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from app.api import API_PREFIX
from app.auth import STREAM_TOKEN_PARAM, FormsReader, ResourcesDep
from app.errors import problem_responses
from app.events.schemas import StreamToken, envelope
from app.observability import OffLoopJsonRoute
from app.settings import EventSettings
from graph.events import EventLog, StoredEvent
from graph.tenants import Tenant, TenantRepository

router = APIRouter(tags=["events"], route_class=OffLoopJsonRoute)

EVENT_STREAM = "text/event-stream"
# The stream's path under the API prefix: where a stream token is accepted in place of a key.
STREAM_PATH = "/events"


def sse(event: StoredEvent, tenant: Tenant) -> str:
    """One event as an SSE message: its number as the id (what Last-Event-ID resumes from)."""
    data = envelope(event.id, event.type, tenant.name, event.created_at, event.payload)
    return f"id: {event.seq}\nevent: {event.type}\ndata: {json.dumps(data, sort_keys=True)}\n\n"


async def stream(
    log: EventLog, tenant: Tenant, after: int | None, settings: EventSettings
) -> AsyncIterator[str]:
    last, oldest = await log.bounds(tenant.id)
    yield f"retry: {int(settings.stream_poll_s * 4000)}\n\n"
    if after is None:
        after = last  # from now on
    elif after < last and (oldest is None or after < oldest - 1):
        # Events the client has not seen are gone: it must read the current state again.
        resync = {"reason": "events after the one you saw are no longer kept", "resume_after": last}
        yield f"id: {last}\nevent: resync\ndata: {json.dumps(resync)}\n\n"
        after = last
    beat = time.monotonic()
    while True:
        events = await log.after(tenant.id, after)
        for event in events:
            yield sse(event, tenant)
            after = event.seq
        if events:
            beat = time.monotonic()
            continue
        if time.monotonic() - beat >= settings.heartbeat_s:
            yield ": heartbeat\n\n"
            beat = time.monotonic()
        await asyncio.sleep(settings.stream_poll_s)


@router.get(
    STREAM_PATH,
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "Server-Sent Events, one per event of the tenant.",
            "content": {EVENT_STREAM: {}},
        },
        **problem_responses(401, 403, 422, 429, 503),
    },
)
async def events(
    tenant: FormsReader,
    resources: ResourcesDep,
    last_event_id: Annotated[int | None, Header(ge=0, description="Resume after this event number.")] = None,
    after: Annotated[int | None, Query(ge=0, description="Resume after this event number.")] = None,
    # Read by authentication, before this runs; declared so the API document shows it.
    stream_token: Annotated[
        str | None,
        Query(description="A stream token, in place of the Authorization header (for EventSource)."),
    ] = None,
) -> StreamingResponse:
    """The tenant's events as they are committed (version.created, release.created, layout.indexed).
    Resume with Last-Event-ID (or `after`) within PAGEFORGE_EVENTS__RETENTION_S; from further back the
    stream opens with a `resync` event. Comment lines every PAGEFORGE_EVENTS__HEARTBEAT_S keep it open.
    A browser's EventSource, which cannot send a key, opens it with `?stream_token=` (see
    POST /api/v1/events/stream-tokens)."""
    start = last_event_id if last_event_id is not None else after
    body = stream(EventLog(resources.graph), tenant, start, resources.settings.events)
    return StreamingResponse(
        body, media_type=EVENT_STREAM, headers={"cache-control": "no-cache", "x-accel-buffering": "no"}
    )


@router.post(
    f"{STREAM_PATH}/stream-tokens",
    response_model=StreamToken,
    status_code=201,
    responses=problem_responses(401, 403, 429, 503),
)
async def create_stream_token(tenant: FormsReader, resources: ResourcesDep) -> StreamToken:
    """A token that opens this tenant's event stream (and nothing else) as `?stream_token=`, for a browser's
    EventSource; valid for PAGEFORGE_EVENTS__STREAM_TOKEN_TTL_S. A stream opened with it stays open past
    that; reopening after it needs a new token (resume with `after=`)."""
    expires_at = datetime.now(UTC) + timedelta(seconds=resources.settings.events.stream_token_ttl_s)
    token = await TenantRepository(resources.graph).issue_stream_token(tenant, ("forms:read",), expires_at)
    stream_url = f"{API_PREFIX}{STREAM_PATH}?{urlencode({STREAM_TOKEN_PARAM: token})}"
    return StreamToken(token=token, expires_at=expires_at, stream_url=stream_url)

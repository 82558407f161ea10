"""Events: what changed, written in the transaction of the change (an outbox), numbered per tenant in commit
order, each with a pending delivery for every webhook endpoint that takes its type."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from neo4j import AsyncManagedTransaction

from graph import queries
from graph.database import Graph, from_epoch_millis


@dataclass(frozen=True)
class EventDraft:
    """An event to record: its type, what it is about (a form or system key: deliveries keep its order),
    and a payload of ids and API paths."""

    type: str
    subject: str
    payload: dict[str, Any]


async def record_events(tx: AsyncManagedTransaction, tenant: str, drafts: list[EventDraft]) -> None:
    """Record the events inside the caller's transaction (with the deliveries they need)."""
    if not drafts:
        return
    counted = await (await tx.run(queries.NEXT_EVENT_SEQS, tenant=tenant, count=len(drafts))).single()
    if counted is None:
        return  # graph data of no tenant (tests write such): there is no one to tell
    first = counted["last"] - len(drafts) + 1
    events = [
        {
            "id": str(uuid.uuid4()),
            "seq": first + offset,
            "type": draft.type,
            "subject": draft.subject,
            "payload": json.dumps(draft.payload, sort_keys=True),
        }
        for offset, draft in enumerate(drafts)
    ]
    await tx.run(queries.RECORD_EVENTS, tenant=tenant, events=events)


@dataclass(frozen=True)
class WebhookEndpoint:
    id: str
    url: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    created_at: datetime
    pending: int = 0


@dataclass(frozen=True)
class DeliveryRecord:
    """One event's delivery to an endpoint, as the delivery log shows it."""

    event_id: str
    type: str
    seq: int
    status: str
    attempts: int
    next_at: datetime | None
    last_status: int | None
    last_error: str | None
    last_latency_ms: float | None


@dataclass(frozen=True)
class DueDelivery:
    """A delivery to make now, with what it carries."""

    id: str
    attempts: int
    endpoint_id: str
    url: str
    secret: str
    previous_secret: str | None
    event_id: str
    type: str
    created_at: datetime
    tenant: str
    payload: dict[str, Any]


def _endpoint(row: dict[str, Any]) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=row["id"],
        url=row["url"],
        event_types=list(row["event_types"]),
        enabled=row["enabled"],
        disabled_reason=row["disabled_reason"],
        created_at=datetime.fromtimestamp(row["created_ms"] / 1000, tz=UTC),
        pending=row.get("pending", 0),
    )


class WebhookRepository:
    """A tenant's webhook endpoints and their delivery logs."""

    def __init__(self, graph: Graph) -> None:
        self._graph = graph

    async def create(self, tenant: str, url: str, event_types: list[str], secret: str) -> WebhookEndpoint:
        result = await self._graph.run(
            queries.CREATE_WEBHOOK,
            id=str(uuid.uuid4()),
            tenant=tenant,
            url=url,
            event_types=sorted(set(event_types)),
            secret=secret,
        )
        return _endpoint(result.records[0]["endpoint"])

    async def rotate_secret(self, tenant: str, endpoint_id: str, secret: str, previous_until_ms: int) -> bool:
        """Sign with `secret` from now on, and with the old one too until `previous_until_ms`."""
        result = await self._graph.run(
            queries.ROTATE_WEBHOOK_SECRET,
            tenant=tenant,
            id=endpoint_id,
            secret=secret,
            previous_until=previous_until_ms,
        )
        return bool(result.records)

    async def update(
        self,
        tenant: str,
        endpoint_id: str,
        *,
        url: str | None,
        event_types: list[str] | None,
        enabled: bool | None,
    ) -> WebhookEndpoint | None:
        result = await self._graph.run(
            queries.UPDATE_WEBHOOK,
            tenant=tenant,
            id=endpoint_id,
            url=url,
            event_types=sorted(set(event_types)) if event_types is not None else None,
            enabled=enabled,
        )
        return _endpoint(result.records[0]["endpoint"]) if result.records else None

    async def redeliver(self, tenant: str, endpoint_id: str, event_id: str) -> bool:
        result = await self._graph.run(
            queries.REDELIVER, tenant=tenant, endpoint_id=endpoint_id, event_id=event_id
        )
        return bool(result.records)

    async def of_tenant(self, tenant: str) -> list[WebhookEndpoint]:
        result = await self._graph.fetch(queries.LIST_WEBHOOKS, tenant=tenant)
        return [_endpoint(row["endpoint"]) for row in result.records]

    async def delete(self, tenant: str, endpoint_id: str) -> bool:
        """Delete the endpoint and its deliveries; False if the tenant has no such endpoint."""
        result = await self._graph.run(queries.DELETE_WEBHOOK, tenant=tenant, id=endpoint_id)
        return bool(result.records[0]["deleted"])

    async def deliveries(self, tenant: str, endpoint_id: str, limit: int) -> list[DeliveryRecord]:
        result = await self._graph.fetch(
            queries.WEBHOOK_DELIVERIES, tenant=tenant, id=endpoint_id, limit=limit
        )
        return [
            DeliveryRecord(
                event_id=d["event_id"],
                type=d["type"],
                seq=d["seq"],
                status=d["status"],
                attempts=d["attempts"],
                next_at=from_epoch_millis(d["next_at"]) if d["status"] == "pending" else None,
                last_status=d.get("last_status"),
                last_error=d.get("last_error"),
                last_latency_ms=d.get("last_latency_ms"),
            )
            for d in (row["delivery"] for row in result.records)
        ]


class DeliveryQueue:
    """The deliveries due, and what became of each attempt."""

    def __init__(self, graph: Graph) -> None:
        self._graph = graph

    async def due(self, now_ms: int, limit: int = 64) -> list[DueDelivery]:
        """For each enabled endpoint, its oldest pending delivery if it is due."""
        result = await self._graph.fetch(queries.DUE_DELIVERIES, now=now_ms, limit=limit)
        return [
            DueDelivery(
                id=row["id"],
                attempts=row["attempts"],
                endpoint_id=row["endpoint_id"],
                url=row["url"],
                secret=row["secret"],
                previous_secret=row["previous_secret"],
                event_id=row["event_id"],
                type=row["type"],
                created_at=datetime.fromtimestamp(row["created_ms"] / 1000, tz=UTC),
                tenant=row["tenant"],
                payload=json.loads(row["payload"]),
            )
            for row in result.records
        ]

    async def next_due_ms(self) -> int | None:
        result = await self._graph.fetch(queries.NEXT_DUE)
        value: int | None = result.records[0]["next_at"]
        return value

    async def attempted(
        self,
        delivery_id: str,
        *,
        outcome: str,
        status: int | None,
        error: str | None,
        latency_ms: float | None,
        next_at_ms: int | None,
    ) -> None:
        """Record an attempt: `outcome` pending (to be retried at next_at_ms), delivered or failed."""
        await self._graph.run(
            queries.DELIVERY_ATTEMPTED,
            id=delivery_id,
            outcome=outcome,
            last_status=status,
            last_error=error,
            latency_ms=latency_ms,
            next_at=next_at_ms,
        )

    async def disable(self, endpoint_id: str, reason: str) -> None:
        await self._graph.run(queries.DISABLE_WEBHOOK, id=endpoint_id, reason=reason)


@dataclass(frozen=True)
class StoredEvent:
    id: str
    seq: int
    type: str
    created_at: datetime
    payload: dict[str, Any]


class EventLog:
    """A tenant's events in order, for the live stream, and their pruning past the retention window."""

    def __init__(self, graph: Graph) -> None:
        self._graph = graph

    async def after(self, tenant: str, seq: int, limit: int = 100) -> list[StoredEvent]:
        result = await self._graph.fetch(queries.EVENTS_AFTER, tenant=tenant, after=seq, limit=limit)
        return [
            StoredEvent(
                id=row["id"],
                seq=row["seq"],
                type=row["type"],
                created_at=datetime.fromtimestamp(row["created_ms"] / 1000, tz=UTC),
                payload=json.loads(row["payload"]),
            )
            for row in result.records
        ]

    async def bounds(self, tenant: str) -> tuple[int, int | None]:
        """The tenant's last event number (0: none yet) and the oldest still kept (None: none kept)."""
        result = await self._graph.fetch(queries.EVENT_BOUNDS, tenant=tenant)
        if not result.records:
            return 0, None
        return result.records[0]["last"], result.records[0]["oldest"]

    async def prune(self, retention_s: float, limit: int = 1000) -> int:
        """Delete up to `limit` events older than the retention window that no delivery waits for."""
        result = await self._graph.run(queries.PRUNE_EVENTS, retention_s=int(retention_s), limit=limit)
        pruned: int = result.records[0]["pruned"]
        return pruned

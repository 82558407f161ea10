"""Request and response bodies of the webhook endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


def envelope(
    event_id: str, event_type: str, tenant: str, created_at: datetime, payload: dict[str, Any]
) -> dict[str, Any]:
    """An event as webhooks and the stream send it: id, type, tenant (by name), time (UTC, Z) and payload."""
    return {
        "id": event_id,
        "type": event_type,
        "tenant": tenant,
        "timestamp": created_at.isoformat().replace("+00:00", "Z"),
        "data": payload,
    }


EventType = Literal["version.created", "release.created", "layout.indexed", "job.completed", "job.failed"]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000, description="Where events are POSTed (http or https).")
    events: list[EventType] = Field(min_length=1, description="The event types to deliver.")


class WebhookRead(BaseModel):
    id: str
    url: str
    events: list[str]
    enabled: bool
    disabled_reason: str | None = Field(description="Why PageForge stopped delivering to it, if it did.")
    created_at: datetime
    pending: int = Field(description="Deliveries waiting for it.")


class WebhookCreated(WebhookRead):
    secret: str = Field(
        description="The signing secret (Standard Webhooks, whsec_...), shown this once: verify each "
        "delivery's webhook-signature with it."
    )


class WebhookUpdate(BaseModel):
    """What to change (what is left out stays): enabling a disabled endpoint delivers what waited."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=1, max_length=2000)
    events: list[EventType] | None = Field(default=None, min_length=1)
    enabled: bool | None = None


class SecretRotated(BaseModel):
    secret: str = Field(description="The new signing secret, shown this once.")
    previous_valid_until: datetime = Field(
        description="Until when deliveries are signed with the old one too."
    )


class WebhookList(BaseModel):
    items: list[WebhookRead]


class DeliveryRead(BaseModel):
    event_id: str
    type: str
    seq: int
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_at: datetime | None = Field(description="When the next attempt is due, while pending.")
    last_status: int | None
    last_error: str | None
    last_latency_ms: float | None


class DeliveryLog(BaseModel):
    items: list[DeliveryRead]


class StreamToken(BaseModel):
    token: str = Field(description="Opens the event stream as ?stream_token= (for clients without headers).")
    expires_at: datetime = Field(description="A stream must be opened (or reopened) before this.")
    stream_url: str = Field(description="The stream's path with the token: what an EventSource opens.")

"""Delivers events to webhook endpoints: at least once, each endpoint's events one at a time in commit
order, retried on a schedule, the endpoint disabled when it answers 410 or fails past the schedule."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass

import httpx

from app.events.schemas import envelope
from app.events.signing import signature
from app.events.targets import TargetRefused, resolve_target
from app.settings import WebhookSettings
from graph.errors import GraphUnavailable
from graph.events import DeliveryQueue, DueDelivery

logger = logging.getLogger(__name__)

# A receiver's answer is not read past this: its body only goes into the delivery log's error line.
MAX_RESPONSE_BYTES = 16_384
USER_AGENT = "PageForge-Webhooks/1"


@dataclass(frozen=True)
class Attempt:
    status: int | None
    error: str | None
    latency_ms: float


def message(delivery: DueDelivery) -> bytes:
    """The body of a delivery: the event's id, type, tenant, time and payload (ids and API paths)."""
    event = envelope(delivery.event_id, delivery.type, delivery.tenant, delivery.created_at, delivery.payload)
    return json.dumps(event, sort_keys=True, separators=(",", ":")).encode()


class WebhookDeliverer:
    """The background task of the process that owns the outbox relay."""

    def __init__(self, queue: DeliveryQueue, settings: WebhookSettings) -> None:
        self.queue = queue
        self.settings = settings
        timeout = httpx.Timeout(settings.timeout_s, connect=settings.connect_timeout_s)
        # No redirects, no proxies from the environment, no cookies kept between deliveries.
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False)

    async def run(self) -> None:
        """Deliver what is due, forever; wait for the next due time (at most poll_s) in between."""
        try:
            while True:
                try:
                    sent = await self.deliver_due()
                except GraphUnavailable as exc:
                    logger.warning("webhook deliveries paused: %s", exc)
                    sent = 0
                except Exception:  # a bug must not end deliveries for the life of the process
                    logger.exception("webhook delivery round failed")
                    sent = 0
                if not sent:
                    await asyncio.sleep(self.settings.poll_s)
        finally:
            await self._client.aclose()

    async def deliver_due(self) -> int:
        """One round: each endpoint's oldest due delivery, all endpoints at once; how many were tried."""
        due = await self.queue.due(int(time.time() * 1000))
        await asyncio.gather(*(self._deliver(delivery) for delivery in due))
        return len(due)

    async def _deliver(self, delivery: DueDelivery) -> None:
        attempt = await self._send(delivery)
        now_ms = int(time.time() * 1000)
        if attempt.status is not None and 200 <= attempt.status < 300:
            await self._record(delivery, attempt, "delivered", None)
        elif attempt.status == 410:
            await self._record(delivery, attempt, "failed", None)
            await self.queue.disable(delivery.endpoint_id, "the endpoint answered 410 Gone")
            logger.warning("webhook endpoint %s disabled: it answered 410 Gone", delivery.endpoint_id)
        elif delivery.attempts < len(self.settings.retry_schedule_s):
            wait_s = self.settings.retry_schedule_s[delivery.attempts] * random.uniform(0.8, 1.2)
            await self._record(delivery, attempt, "pending", now_ms + int(wait_s * 1000))
        else:
            await self._record(delivery, attempt, "failed", None)
            reason = f"deliveries failed for {len(self.settings.retry_schedule_s) + 1} attempts"
            await self.queue.disable(delivery.endpoint_id, reason)
            logger.warning("webhook endpoint %s disabled: %s", delivery.endpoint_id, reason)

    async def _record(
        self, delivery: DueDelivery, attempt: Attempt, outcome: str, next_at: int | None
    ) -> None:
        await self.queue.attempted(
            delivery.id,
            outcome=outcome,
            status=attempt.status,
            error=attempt.error,
            latency_ms=attempt.latency_ms,
            next_at_ms=next_at,
        )

    async def _send(self, delivery: DueDelivery) -> Attempt:
        started = time.perf_counter()

        def took() -> float:
            return round((time.perf_counter() - started) * 1000, 2)

        try:
            target = await resolve_target(delivery.url, allow_private=self.settings.allow_private_targets)
        except TargetRefused as exc:
            return Attempt(None, exc.detail, took())
        body = message(delivery)
        timestamp = int(time.time())
        headers = {
            "host": target.host_header,
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": delivery.event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(
                [delivery.secret, *([delivery.previous_secret] if delivery.previous_secret else [])],
                delivery.event_id,
                timestamp,
                body,
            ),
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        request = self._client.build_request(
            "POST", target.connect_url, content=body, headers=headers, extensions=extensions
        )
        try:
            response = await self._client.send(request, stream=True)
            try:
                said = b""
                async for chunk in response.aiter_bytes():
                    said += chunk
                    if len(said) >= MAX_RESPONSE_BYTES:
                        break
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            return Attempt(None, f"{type(exc).__name__}: {exc}"[:500], took())
        error = None if response.is_success else said[:500].decode(errors="replace")
        return Attempt(response.status_code, error, took())

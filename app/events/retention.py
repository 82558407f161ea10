"""Events past the retention window are deleted (by the process that delivers webhooks)."""

from __future__ import annotations

import asyncio
import logging

from app.settings import EventSettings
from graph.errors import GraphUnavailable
from graph.events import EventLog

logger = logging.getLogger(__name__)


async def prune_forever(log: EventLog, settings: EventSettings) -> None:
    """Every quarter of the retention window (at least each second, at most every ten minutes)."""
    every_s = min(600.0, max(1.0, settings.retention_s / 4))
    while True:
        await asyncio.sleep(every_s)
        try:
            while await log.prune(settings.retention_s):
                pass
        except GraphUnavailable as exc:
            logger.warning("events not pruned: %s", exc)

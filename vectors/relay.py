"""The outbox relay: embeds layouts the graph has committed and puts them into the layout index."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

import anyio.to_thread

from vectors.embedder import Embedder
from vectors.index import LayoutIndex, LayoutPoint

logger = logging.getLogger("pageforge.relay")


class PendingLayout(Protocol):
    """One outbox entry, as the graph hands it over."""

    @property
    def id(self) -> str: ...
    @property
    def tenant(self) -> str: ...
    @property
    def form_key(self) -> str: ...
    @property
    def number(self) -> int: ...
    @property
    def content_hash(self) -> str: ...
    @property
    def layout_text(self) -> str: ...


class LayoutOutbox(Protocol):
    """Where open entries come from and get closed (the graph, in PageForge)."""

    async def pending(self, limit: int) -> Sequence[PendingLayout]: ...
    async def mark_indexed(self, ids: list[str]) -> None: ...


def layout_payload(entry: PendingLayout) -> dict[str, object]:
    """What a layout point carries besides its tenant: enough to show and filter a hit."""
    return {
        "version_id": entry.id,
        "form_key": entry.form_key,
        "number": entry.number,
        "content_hash": entry.content_hash,
    }


class OutboxRelay:
    """Drains the outbox into the index: embed in batches, upsert (applied), then close the entries."""

    def __init__(
        self, *, outbox: LayoutOutbox, index: LayoutIndex, embedder: Embedder, batch_size: int = 64
    ) -> None:
        self.outbox = outbox
        self.index = index
        self.embedder = embedder
        self.batch_size = batch_size

    async def index_layouts(self, entries: Sequence[PendingLayout]) -> None:
        """Embed and upsert these layouts, then close their outbox entries."""
        if not entries:
            return
        vectors = await self.embedder.encode_async(
            [entry.layout_text for entry in entries], batch_size=self.batch_size
        )
        points = [
            LayoutPoint(id=entry.id, tenant=entry.tenant, vector=vector, payload=layout_payload(entry))
            for entry, vector in zip(entries, vectors, strict=True)
        ]
        await anyio.to_thread.run_sync(self.index.upsert, points)
        await self.outbox.mark_indexed([entry.id for entry in entries])

    async def drain(self) -> int:
        """Index every open entry; returns how many were indexed."""
        total = 0
        while entries := await self.outbox.pending(self.batch_size):
            await self.index_layouts(entries)
            total += len(entries)
        return total

    async def run(self, *, interval_s: float = 1.0, max_backoff_s: float = 30.0) -> None:
        """Drain forever; on failure (a dependency down) log it and retry with backoff."""
        backoff = interval_s
        while True:
            try:
                indexed = await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("outbox relay: %s; retrying in %.0fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, max_backoff_s)
                continue
            if indexed:
                logger.info("outbox relay indexed %d layouts", indexed)
            backoff = interval_s
            await asyncio.sleep(interval_s)

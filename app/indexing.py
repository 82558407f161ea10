"""Indexing through the outbox: layouts the graph has committed are embedded and put into the layout index,
and each indexed version's point carries its lineage context (latest? pinned?) as the graph has it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from functools import partial

import anyio.to_thread

from graph.forms import LayoutOutbox, LineageContext, PendingLayout
from vectors.embedder import Embedder
from vectors.index import LayoutIndex, LayoutPoint, Payload

logger = logging.getLogger("pageforge.relay")


# Lineage contexts published per round: no embedding, just a payload update per point.
CONTEXT_BATCH = 512

# The payload fields of a point's lineage context, kept level with the graph through the outbox, and
# the revision that keeps an older context from overwriting a newer one.
IS_LATEST = "is_latest"
PIN_COUNT = "pin_count"
CONTEXT_REV = "context_rev"


def layout_payload(entry: PendingLayout) -> dict[str, object]:
    """What a layout point carries besides its tenant and lineage context: enough to show and filter a hit."""
    return {
        "version_id": entry.id,
        "form_key": entry.form_key,
        "number": entry.number,
        "content_hash": entry.content_hash,
    }


def context_payload(context: LineageContext) -> Payload:
    """The payload fields of a version's lineage context."""
    return {IS_LATEST: context.is_latest, PIN_COUNT: context.pin_count, CONTEXT_REV: context.rev}


class OutboxRelay:
    """Drains the outbox into the index: embed in batches, upsert (applied), then close the entries;
    then publish the lineage context of versions whose context changed."""

    def __init__(
        self, *, outbox: LayoutOutbox, index: LayoutIndex, embedder: Embedder, batch_size: int = 64
    ) -> None:
        self.outbox = outbox
        self.index = index
        self.embedder = embedder
        self.batch_size = batch_size

    async def index_layouts(
        self, entries: Sequence[PendingLayout], *, context_changed: Sequence[str] = ()
    ) -> None:
        """Embed and upsert these layouts, close their outbox entries, then publish the lineage context
        of these versions and of the ones whose context the same write changed, in one round."""
        if entries:
            await self._index(entries)
        await self.publish_context([*(entry.id for entry in entries), *context_changed])

    async def _index(self, entries: Sequence[PendingLayout]) -> None:
        vectors = await self.embedder.encode_async(
            [entry.layout_text for entry in entries], batch_size=self.batch_size
        )
        points = [
            LayoutPoint(id=entry.id, tenant=entry.tenant, vector=vector, payload=layout_payload(entry))
            for entry, vector in zip(entries, vectors, strict=True)
        ]
        # A version's layout never changes, so a point already there stays as it is: it may hold a lineage
        # context published since these entries were read, which a replacement would drop for good.
        await anyio.to_thread.run_sync(partial(self.index.upsert, points, keep_existing=True))
        await self.outbox.mark_indexed([entry.id for entry in entries])

    async def publish_context(self, ids: Sequence[str], *, overwrite: bool = False) -> None:
        """Put the current lineage context of these indexed versions into their points.

        A point that holds a newer context (published concurrently) keeps it, unless `overwrite`: for
        repairs, when nothing else publishes.
        """
        if ids:
            await self._publish(await self.outbox.context_of(list(dict.fromkeys(ids))), overwrite=overwrite)

    async def _publish(self, contexts: Sequence[LineageContext], *, overwrite: bool = False) -> None:
        by_tenant: dict[str, dict[str, Payload]] = {}
        for context in contexts:
            by_tenant.setdefault(context.tenant, {})[context.id] = context_payload(context)
        newer = None if overwrite else CONTEXT_REV
        for tenant, payloads in by_tenant.items():
            await anyio.to_thread.run_sync(partial(self.index.set_payloads, tenant, payloads, newer=newer))
        await self.outbox.mark_context_published(contexts)

    async def drain(self) -> int:
        """Index every open layout entry, then publish every open context entry; returns layouts indexed."""
        total = 0
        while entries := await self.outbox.pending(self.batch_size):
            await self.index_layouts(entries)
            total += len(entries)
        published: set[str] = set()
        while contexts := await self.outbox.pending_context(CONTEXT_BATCH):
            if published.issuperset(context.id for context in contexts):
                break  # each changed again while being published: the next drain takes them
            await self._publish(contexts)
            published.update(context.id for context in contexts)
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


async def index_now(
    relay: OutboxRelay | None, entries: list[PendingLayout], *, context_changed: list[str]
) -> bool:
    """Put a write's new layouts into the index now, with the lineage context of the versions it changed
    (their parents, what a release pins); False when that is left to the relay (no relay in this process,
    or the index or the model failing): the outbox holds every entry until it is done."""
    if relay is None:
        return False
    try:
        await relay.index_layouts(entries, context_changed=context_changed)
    except Exception as exc:
        pending = ", ".join([*(entry.id for entry in entries), *context_changed])
        logger.warning("index updates of %s left in the outbox: %s", pending, exc)
        return False
    return True

"""Process-wide resources (Neo4j driver, layout index, embedding model) and the lifespan owning them."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import anyio
from fastapi import FastAPI

from app.events.deliverer import WebhookDeliverer
from app.events.retention import prune_forever
from app.indexing import OutboxRelay
from app.settings import Settings
from graph.database import Graph
from graph.errors import GraphUnavailable, SchemaOutOfDate
from graph.events import DeliveryQueue, EventLog
from graph.forms import LayoutOutbox
from graph.migrations import Migrator
from vectors.edge import EdgeLayoutIndex
from vectors.embedder import Embedder, EmbedderUnavailable
from vectors.index import IndexInUse, LayoutIndex, VectorIndexUnavailable

T = TypeVar("T")

logger = logging.getLogger("pageforge.resources")

# What a process may open besides Neo4j, which every service uses.
EMBEDDER = "embedder"
VECTORS = "vectors"
EVERY_DEPENDENCY = frozenset({VECTORS, EMBEDDER})


@dataclass
class Resources:
    """What every request may need; a dependency that failed to open is None with its reason kept.

    `uses` names what this process opens besides Neo4j: a dependency it does not use stays None.
    """

    settings: Settings
    graph: Graph
    uses: frozenset[str] = EVERY_DEPENDENCY
    embedder: Embedder | None = None
    index: LayoutIndex | None = None
    relay: OutboxRelay | None = None
    failures: dict[str, str] = field(default_factory=dict)
    # What services opened on first use and must close with the process (the PDF worker processes).
    on_close: list[Callable[[], None]] = field(default_factory=list)
    # Set once the graph was found migrated (or migrated here); until then every request checks again.
    graph_ready: bool = False
    _graph_check: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def require_graph(self) -> Graph:
        """The graph, once it has every migration this PageForge needs (applying them if the settings say
        so); SchemaOutOfDate, saying what to do, if it lacks one."""
        if not self.graph_ready:
            async with self._graph_check:
                if not self.graph_ready:
                    await prepare_graph(self.graph, self.settings)
                    self.graph_ready = True
        return self.graph

    def require_embedder(self) -> Embedder:
        if self.embedder is None:
            raise EmbedderUnavailable(self.failures.get("embedder", "embedding model not loaded"))
        return self.embedder

    def require_index(self) -> LayoutIndex:
        if self.index is None:
            raise VectorIndexUnavailable(self.failures.get("vectors", "layout index not open"))
        return self.index


async def _opened(resources: Resources, name: str, open_it: Callable[[], T]) -> T | None:
    """What `open_it` opens (in a worker thread), or None with the reason kept for /health. An index that
    another process owns is raised: serving without it would take writes it can never index."""
    try:
        return await anyio.to_thread.run_sync(open_it)
    except IndexInUse:
        raise
    except (VectorIndexUnavailable, EmbedderUnavailable) as exc:
        resources.failures[name] = str(exc)
        logger.error("%s unavailable: %s", name, exc)
        return None


def open_graph(settings: Settings) -> Graph:
    """The driver for the configured Neo4j (no connection is made until first use)."""
    neo4j = settings.neo4j
    return Graph(
        uri=neo4j.bolt_uri,
        auth=neo4j.credentials(),
        database=neo4j.database,
        connection_timeout_s=neo4j.connection_timeout_s,
    )


def load_embedder(settings: Settings) -> Embedder:
    """The configured model, refused when its vectors would not fit the index."""
    config = settings.embedder
    embedder = Embedder(
        config.model, backend=config.backend, threads=config.threads, cache_dir=config.cache_dir
    )
    if embedder.dimension != settings.vectors.dimension:
        raise EmbedderUnavailable(
            f"model {settings.embedder.model!r} makes {embedder.dimension}-d vectors, "
            f"the layout index holds {settings.vectors.dimension}-d (PAGEFORGE_VECTORS__DIMENSION)"
        )
    return embedder


def open_index(settings: Settings, *, serving: bool = True) -> LayoutIndex:
    """Qdrant server when a URL is configured, otherwise Qdrant Edge in-process, which optimises itself in
    the background only when `serving`: a command that owns it optimises once, when its writes are done."""
    vectors = settings.vectors
    index: LayoutIndex
    if vectors.qdrant_url:
        api_key = vectors.qdrant_api_key.get_secret_value() if vectors.qdrant_api_key else None
        # Imported here: qdrant-client takes about a second to import, which the embedded default never needs.
        from vectors.qdrant_server import QdrantServerLayoutIndex, Replication

        replication = Replication(
            vectors.shards, vectors.replication_factor, vectors.write_consistency_factor
        )
        index = QdrantServerLayoutIndex.from_url(
            vectors.qdrant_url,
            api_key=api_key,
            collection=vectors.collection,
            dimension=vectors.dimension,
            replication=replication,
            hnsw_m=vectors.hnsw_m,
            hnsw_ef=vectors.hnsw_ef,
        )
    else:
        index = EdgeLayoutIndex(
            vectors.path / vectors.collection,
            dimension=vectors.dimension,
            optimize_after=vectors.optimize_after if serving else None,
            hnsw_m=vectors.hnsw_m,
            hnsw_ef=vectors.hnsw_ef,
        )
    index.ensure()
    return index


async def prepare_graph(graph: Graph, settings: Settings) -> None:
    """Apply pending migrations if the settings say so; otherwise raise SchemaOutOfDate if one is pending."""
    migrator = Migrator(graph)
    if settings.neo4j.migrates_on_start:
        for migration, changed in await migrator.migrate():
            logger.info(
                "applied graph migration %d (%s): %d changed", migration.version, migration.name, changed
            )
    else:
        await migrator.require_current()


async def open_resources(
    settings: Settings, uses: frozenset[str] = EVERY_DEPENDENCY, *, serving: bool = True
) -> Resources:
    """Open Neo4j and what `uses` names; a dependency that is down is recorded, so /health can name it.

    The index opens before the model: it is quick to open and may be owned by another process, which
    should be known before the model takes its seconds to load. The outbox relay runs where both the
    model and the index are open (one process owns the index).
    """
    resources = Resources(settings=settings, graph=open_graph(settings), uses=uses)
    try:
        await resources.require_graph()
    except GraphUnavailable as exc:
        logger.warning("neo4j not reachable at start-up; its migrations are checked when it is: %s", exc)
    except SchemaOutOfDate as exc:
        # Serving nothing but 503s until the graph is migrated, then serving without a restart.
        logger.error("%s; until then every request is answered 503", exc)
    if VECTORS in uses:
        try:
            resources.index = await _opened(resources, VECTORS, lambda: open_index(settings, serving=serving))
        except IndexInUse:
            await resources.graph.close()
            raise
    if EMBEDDER in uses:
        resources.embedder = await _opened(resources, EMBEDDER, lambda: load_embedder(settings))
    if resources.embedder is not None and resources.index is not None:
        resources.relay = OutboxRelay(
            outbox=LayoutOutbox(resources.graph),
            index=resources.index,
            embedder=resources.embedder,
            batch_size=settings.embedder.batch_size,
        )
    return resources


async def close_resources(resources: Resources) -> None:
    for close in resources.on_close:
        close()
    if resources.index is not None:
        resources.index.close()
    await resources.graph.close()


@dataclass(frozen=True)
class OwnedIndex:
    """What a command that owns the layout index works with: the graph, the index, the relay filling it."""

    graph: Graph
    index: LayoutIndex
    relay: OutboxRelay


@asynccontextmanager
async def owned_index(settings: Settings, *, owner: str) -> AsyncIterator[OwnedIndex]:
    """Graph, index and model, for a command that must own the layout index while it runs (`owner` says
    which, for the error). Fails before the model loads when another process holds the index."""
    try:
        resources = await open_resources(settings, frozenset({VECTORS}), serving=False)
    except IndexInUse as exc:
        raise IndexInUse(
            f"{exc} (stop `pageforge serve` first: {owner} must own the index while it runs)"
        ) from exc
    try:
        if resources.index is None:
            raise VectorIndexUnavailable(
                f"{resources.failures.get(VECTORS, 'layout index not open')} "
                f"(stop `pageforge serve` first: {owner} must own the index while it runs)"
            )
        embedder = await anyio.to_thread.run_sync(lambda: load_embedder(settings))
        relay = OutboxRelay(
            outbox=LayoutOutbox(resources.graph),
            index=resources.index,
            embedder=embedder,
            batch_size=settings.embedder.batch_size,
        )
        yield OwnedIndex(graph=resources.graph, index=resources.index, relay=relay)
    finally:
        await close_resources(resources)


def freeze_startup_heap() -> None:
    """Keep what a serving process loaded at start (modules, the model, the app) out of the garbage
    collector's full passes: it lives as long as the process, and each pass that scanned it held the event
    loop (bench_fresh_index prints the longest pass while serving; `--no-freeze` serves without this)."""
    gc.collect()
    gc.freeze()


@asynccontextmanager
async def lifespan(settings: Settings, uses: frozenset[str], app: FastAPI) -> AsyncIterator[None]:
    """Create the driver, and the index and model when used, once per process; close them on shutdown."""
    resources = await open_resources(settings, uses)
    app.state.resources = resources
    tasks = []
    if resources.relay is not None:
        # The process that owns the outbox relay delivers the events too (one deliverer per deployment).
        tasks.append(asyncio.create_task(resources.relay.run()))
        deliverer = WebhookDeliverer(DeliveryQueue(resources.graph), settings.webhooks)
        tasks.append(asyncio.create_task(deliverer.run()))
        tasks.append(asyncio.create_task(prune_forever(EventLog(resources.graph), settings.events)))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await close_resources(resources)

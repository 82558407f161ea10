"""Bring the layout index level with the graph (the source of truth): reconcile drift, or rebuild."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio.to_thread

from app.indexing import IS_LATEST, PIN_COUNT, OutboxRelay
from app.resources import owned_index
from app.settings import Settings
from graph.forms import LayoutInventory, VersionFingerprint
from vectors.index import TENANT_FIELD, LayoutIndex, Payload

GRAPH_PAGE = 1000
REPAIR_BATCH = 256

# What a point must carry to match its version: tenant, version id, form key, number, content hash.
Fingerprint = tuple[object, object, object, object, object]


@dataclass(frozen=True, slots=True)
class DriftCounts:
    """How far the index is from the graph."""

    missing: int
    orphaned: int
    stale: int
    # Points whose lineage context (is_latest, pin_count) is not the graph's.
    stale_context: int = 0

    @property
    def clean(self) -> bool:
        return self.missing == self.orphaned == self.stale == self.stale_context == 0

    def __str__(self) -> str:
        return (
            f"missing {self.missing}, orphaned {self.orphaned}, stale {self.stale}, "
            f"stale context {self.stale_context}"
        )


@dataclass(frozen=True, slots=True)
class PointRef:
    """A point to delete: its id and the tenant it is stored under."""

    id: str
    tenant: str


@dataclass
class IndexDrift:
    """The differences one survey found, by id."""

    versions: int = 0
    points: int = 0
    missing: list[str] = field(default_factory=list)
    # Points whose layout or place is not their version's (another tenant's included), where they are stored:
    # deleted before their versions are indexed again.
    stale: list[PointRef] = field(default_factory=list)
    stale_context: list[str] = field(default_factory=list)
    orphaned: list[PointRef] = field(default_factory=list)

    def counts(self) -> DriftCounts:
        return DriftCounts(
            missing=len(self.missing),
            orphaned=len(self.orphaned),
            stale=len(self.stale),
            stale_context=len(self.stale_context),
        )


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """Drift found, and drift left after repairing (None on a dry run)."""

    versions: int
    points: int
    before: DriftCounts
    after: DriftCounts | None


def expected_fingerprint(version: VersionFingerprint) -> Fingerprint:
    return (version.tenant, version.id, version.form_key, version.number, version.content_hash)


def expected_context(version: VersionFingerprint) -> dict[str, object]:
    return {IS_LATEST: version.is_latest, PIN_COUNT: version.pin_count}


def point_context(payload: Payload) -> dict[str, object]:
    return {IS_LATEST: payload.get(IS_LATEST), PIN_COUNT: payload.get(PIN_COUNT)}


def point_fingerprint(payload: Payload) -> Fingerprint:
    return (
        payload.get(TENANT_FIELD),
        payload.get("version_id"),
        payload.get("form_key"),
        payload.get("number"),
        payload.get("content_hash"),
    )


def chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class IndexReconciler:
    """Compares graph and index by ids and content hashes, and repairs or rebuilds the index."""

    def __init__(
        self,
        *,
        inventory: LayoutInventory,
        index: LayoutIndex,
        relay: OutboxRelay,
        page_size: int = GRAPH_PAGE,
        repair_batch: int = REPAIR_BATCH,
    ) -> None:
        self.inventory = inventory
        self.index = index
        self.relay = relay
        self.page_size = page_size
        self.repair_batch = repair_batch

    def _points(self, tenant: str | None) -> dict[str, tuple[Fingerprint, dict[str, object]]]:
        return {
            point_id: (point_fingerprint(payload), point_context(payload))
            for point_id, payload in self.index.scroll_ids(tenant)
        }

    async def survey(self, tenant: str | None) -> IndexDrift:
        """Missing, stale, orphaned and stale-context points of one tenant (or all), streaming the graph."""
        points = await anyio.to_thread.run_sync(self._points, tenant)
        drift = IndexDrift(points=len(points))
        after = ""
        while page := await self.inventory.fingerprints(tenant, after=after, limit=self.page_size):
            drift.versions += len(page)
            for version in page:
                found = points.pop(version.id, None)
                point, context = found if found is not None else (None, None)
                if point is not None and point != expected_fingerprint(version):
                    drift.stale.append(PointRef(version.id, str(point[0])))
                elif point is None or version.pending:
                    drift.missing.append(version.id)
                elif context != expected_context(version):
                    drift.stale_context.append(version.id)
            after = page[-1].id
        drift.orphaned = [PointRef(point_id, str(point[0])) for point_id, (point, _) in points.items()]
        return drift

    async def repair(self, drift: IndexDrift) -> None:
        """Delete orphaned and stale points (indexing keeps a point already there); embed and insert the
        layouts of missing and stale versions (with their lineage context); publish the lineage context of
        the rest."""
        await self._delete([*drift.orphaned, *drift.stale])
        for batch in chunks([*drift.missing, *(point.id for point in drift.stale)], self.repair_batch):
            await self.relay.index_layouts(await self.inventory.layouts(batch))
        for batch in chunks(drift.stale_context, self.repair_batch):
            await self.relay.publish_context(batch, overwrite=True)

    async def reconcile(self, tenant: str | None, *, dry_run: bool = False) -> ReconcileReport:
        """Survey, repair unless this is a dry run, and survey again."""
        before = await self.survey(tenant)
        if dry_run:
            return ReconcileReport(before.versions, before.points, before.counts(), None)
        await self.repair(before)
        after = await self.survey(tenant)
        return ReconcileReport(before.versions, before.points, before.counts(), after.counts())

    async def reindex(self, tenant: str | None) -> int:
        """Delete the points of one tenant (or all), index every version's layout again, optimise."""
        stored = await anyio.to_thread.run_sync(
            lambda: [
                PointRef(point_id, str(payload.get(TENANT_FIELD)))
                for point_id, payload in self.index.scroll_ids(tenant)
            ]
        )
        await self._delete(stored)
        indexed = 0
        after = ""
        while page := await self.inventory.fingerprints(tenant, after=after, limit=self.repair_batch):
            layouts = await self.inventory.layouts([version.id for version in page])
            await self.relay.index_layouts(layouts)
            indexed += len(layouts)
            after = page[-1].id
        await anyio.to_thread.run_sync(self.index.optimize)
        return indexed

    async def _delete(self, points: Iterable[PointRef]) -> None:
        by_tenant: dict[str, list[str]] = {}
        for point in points:
            by_tenant.setdefault(point.tenant, []).append(point.id)
        for tenant, ids in by_tenant.items():
            for batch in chunks(ids, self.repair_batch):
                await anyio.to_thread.run_sync(self.index.delete, tenant, batch)


@asynccontextmanager
async def owning_index(settings: Settings) -> AsyncIterator[IndexReconciler]:
    """Open graph, model and index as the server does; fail clearly when another process holds the index."""
    async with owned_index(settings, owner="reconcile or reindex") as owned:
        yield IndexReconciler(inventory=LayoutInventory(owned.graph), index=owned.index, relay=owned.relay)

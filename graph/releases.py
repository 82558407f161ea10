"""Systems and their releases in the lineage graph: pins to form versions and lineage between releases."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from neo4j import AsyncManagedTransaction
from neo4j.exceptions import ConstraintError

from graph import queries
from graph.database import Graph
from graph.events import EventDraft, record_events
from graph.forms import LatestGuard, NewVersion, create_versions_in


class PinnedVersionMissing(LookupError):
    """A version a release was to pin is not (or no longer) a version of that tenant and form."""


class PinnedContentRaced(RuntimeError):
    """A form a release was to add a version to changed meanwhile (its content became a version, or another
    version became the latest its new version was derived from); nothing was written."""


@dataclass(frozen=True, slots=True)
class Pin:
    """A form version a release includes."""

    form_key: str
    version_id: str
    number: int
    content_hash: str


@dataclass(frozen=True, slots=True)
class ReleaseParent:
    """A lineage edge between releases as stored: the parent and the release diff from it."""

    id: str
    version: str
    summary: str
    diff: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredRelease:
    id: str
    tenant: str
    system_key: str
    version: str
    number: int
    created_at: datetime
    pins: list[Pin]
    parents: list[ReleaseParent]


@dataclass(frozen=True, slots=True)
class ReleaseSummary:
    id: str
    system_key: str
    version: str
    number: int
    created_at: datetime
    parents: list[str]
    pin_count: int


@dataclass(frozen=True, slots=True)
class NewRelease:
    id: str
    system_key: str
    version: str
    pins: dict[str, str]  # form_key -> version_id
    parents: list[ReleaseParent]


@dataclass(frozen=True, slots=True)
class StoredSystem:
    key: str
    release_count: int
    latest_id: str | None
    created_at: datetime


def _stored_release(row: dict[str, Any]) -> StoredRelease:
    pins = [Pin(p["form_key"], p["version_id"], p["number"], p["content_hash"]) for p in row["pins"]]
    parents = [
        ReleaseParent(
            id=p["id"],
            version=p["version"],
            summary=p.get("summary") or "",
            diff=json.loads(p["diff"]) if p.get("diff") else {},
        )
        for p in row["parents"]
    ]
    return StoredRelease(
        id=row["id"],
        tenant=row["tenant"],
        system_key=row["system_key"],
        version=row["version"],
        number=row["number"],
        created_at=row["created_at"].to_native(),
        pins=sorted(pins, key=lambda p: p.form_key),
        parents=sorted(parents, key=lambda p: p.id),
    )


def _stored_system(row: Any) -> StoredSystem:
    return StoredSystem(
        key=row["key"],
        release_count=row["release_count"],
        latest_id=row["latest_id"],
        created_at=row["created_at"].to_native(),
    )


class ReleaseRepository:
    """Reads and writes systems and releases of one tenant at a time; every query filters by tenant."""

    def __init__(self, graph: Graph) -> None:
        self._graph = graph

    async def pin_candidates(self, tenant: str, ids: list[str]) -> dict[str, Pin]:
        """The tenant's form versions among `ids`, by id; ids of other tenants are simply absent."""
        result = await self._graph.run(queries.PIN_CANDIDATES, tenant=tenant, ids=ids)
        return {
            r["version_id"]: Pin(r["form_key"], r["version_id"], r["number"], r["content_hash"])
            for r in result.records
        }

    async def lineage_summaries(
        self, tenant: str, pairs: list[tuple[str, str]]
    ) -> dict[tuple[str, str], str]:
        """The stored diff summary of each (child, parent) pair of form versions joined by DERIVED_FROM."""
        result = await self._graph.run(
            queries.FORM_LINEAGE_EDGES,
            tenant=tenant,
            pairs=[{"child": child, "parent": parent} for child, parent in pairs],
        )
        return {(r["child"], r["parent"]): r["summary"] or "" for r in result.records}

    async def find_by_version(self, tenant: str, system_key: str, version: str) -> StoredRelease | None:
        """The system's release with this name, if any."""
        result = await self._graph.run(
            queries.RELEASE_BY_NAME, tenant=tenant, system_key=system_key, version=version
        )
        return _stored_release(result.records[0]["release"]) if result.records else None

    async def get(self, tenant: str, release_id: str) -> StoredRelease | None:
        """One release of the tenant, with its pins and parents."""
        result = await self._graph.run(queries.RELEASE_BY_ID, tenant=tenant, id=release_id)
        return _stored_release(result.records[0]["release"]) if result.records else None

    async def releases(self, tenant: str, ids: list[str]) -> dict[str, StoredRelease]:
        """The tenant's releases among `ids`, by id; ids of other tenants are simply absent."""
        result = await self._graph.run(queries.RELEASES_BY_IDS, tenant=tenant, ids=ids)
        return {r["release"]["id"]: _stored_release(r["release"]) for r in result.records}

    async def latest(self, tenant: str, system_key: str) -> StoredRelease | None:
        """The system's most recent release, if it has any."""
        result = await self._graph.run(queries.LATEST_RELEASE, tenant=tenant, system_key=system_key)
        return _stored_release(result.records[0]["release"]) if result.records else None

    async def create(
        self,
        tenant: str,
        new: NewRelease,
        *,
        versions: list[NewVersion] | None = None,
        if_latest: dict[str, LatestGuard] | None = None,
    ) -> tuple[StoredRelease, bool]:
        """Write the release, the new form versions it pins, its pins and its lineage in one transaction.

        Returns (release, True), or (the existing release, False) when the system already has a release
        of this name: then nothing is written, `versions` included. Raises PinnedContentRaced, writing
        nothing, when a form got one of `versions`' content meanwhile, or when a form of `if_latest` (by form
        key) has another latest version than its guard names (checked under the form's lock, as a single
        post is: concurrent writers never both derive from one latest).
        """

        async def work(tx: AsyncManagedTransaction) -> tuple[StoredRelease, bool]:
            await tx.run(queries.LOCK_SYSTEM, tenant=tenant, system_key=new.system_key)
            existing = await (
                await tx.run(
                    queries.RELEASE_BY_NAME, tenant=tenant, system_key=new.system_key, version=new.version
                )
            ).single()
            if existing is not None:
                return _stored_release(existing["release"]), False
            for form_key, guard in sorted((if_latest or {}).items()):
                await tx.run(queries.LOCK_FORM, tenant=tenant, form_key=form_key)
                latest = await (
                    await tx.run(queries.LATEST_VERSION, tenant=tenant, form_key=form_key)
                ).single()
                if (latest["id"] if latest is not None else None) != guard.latest_id:
                    raise PinnedContentRaced(f"form {form_key!r} got another latest version")
            if versions:
                written = await create_versions_in(tx, tenant, versions)
                raced = sorted(version.form_key for version, created in written if not created)
                if raced:
                    raise PinnedContentRaced(f"forms written concurrently: {', '.join(raced)}")
            created = await (
                await tx.run(
                    queries.CREATE_RELEASE,
                    tenant=tenant,
                    system_key=new.system_key,
                    id=new.id,
                    version=new.version,
                    pins=[{"form_key": k, "version_id": v} for k, v in new.pins.items()],
                    parents=[
                        {"id": p.id, "summary": p.summary, "diff": json.dumps(p.diff, sort_keys=True)}
                        for p in new.parents
                    ],
                )
            ).single()
            assert created is not None
            release = _stored_release(created["release"])
            if {p.form_key: p.version_id for p in release.pins} != new.pins:
                missing = sorted(set(new.pins.values()) - {p.version_id for p in release.pins})
                raise PinnedVersionMissing(f"form version not found: {', '.join(missing)}")
            announced = EventDraft(
                type="release.created",
                subject=f"system:{release.system_key}",
                payload={
                    "release_id": release.id,
                    "system_key": release.system_key,
                    "version": release.version,
                    "pins": {pin.form_key: pin.version_id for pin in release.pins},
                    "path": f"/api/v1/releases/{release.id}",
                },
            )
            await record_events(tx, tenant, [announced])
            return release, True

        try:
            return await self._graph.write(work)
        except ConstraintError as exc:
            # Another writer committed a release of this name, or one of the new versions' content,
            # between our lock and create: theirs stands.
            found = await self.find_by_version(tenant, new.system_key, new.version)
            if found is not None:
                return found, False
            if versions:
                raise PinnedContentRaced(str(exc)) from exc
            raise

    async def get_system(self, tenant: str, system_key: str) -> StoredSystem | None:
        result = await self._graph.run(queries.SYSTEM_BY_KEY, tenant=tenant, system_key=system_key)
        return _stored_system(result.records[0]) if result.records else None

    async def list_systems(self, tenant: str, *, after: str, limit: int) -> list[StoredSystem]:
        """Systems by key, starting after the given key."""
        result = await self._graph.run(queries.LIST_SYSTEMS, tenant=tenant, after=after, limit=limit)
        return [_stored_system(r) for r in result.records]

    async def list_releases(
        self, tenant: str, system_key: str, *, after: int, limit: int
    ) -> list[ReleaseSummary]:
        """A system's releases in the order they were created, starting after the given number."""
        result = await self._graph.run(
            queries.LIST_RELEASES, tenant=tenant, system_key=system_key, after=after, limit=limit
        )
        return [
            ReleaseSummary(
                id=r["id"],
                system_key=r["system_key"],
                version=r["version"],
                number=r["number"],
                created_at=r["created_at"].to_native(),
                parents=sorted(r["parents"]),
                pin_count=r["pin_count"],
            )
            for r in result.records
        ]

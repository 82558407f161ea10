"""Forms and their immutable versions in the lineage graph, and the index outbox they feed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from neo4j import AsyncManagedTransaction
from neo4j.exceptions import ConstraintError

from graph import queries
from graph.database import Graph
from graph.errors import LatestMoved, ParentsNotFound
from graph.events import EventDraft, record_events

# The text index finds forms by a substring of at least three characters (it indexes trigrams); it is read
# for at most SEARCH_BOUND forms of all tenants before the tenant's forms are read in key order instead.
TRIGRAM = 3
SEARCH_BOUND = 2_000


@dataclass(frozen=True, slots=True)
class ParentDiff:
    """A lineage edge as stored: the parent and the diff from it."""

    id: str
    summary: str
    changes: list[dict[str, Any]] | None = None


@dataclass(frozen=True, slots=True)
class StoredVersion:
    id: str
    tenant: str
    form_key: str
    number: int
    content_hash: str
    created_at: datetime
    label: str | None
    metadata: dict[str, Any]
    source_format: str
    title: str
    parents: list[ParentDiff]
    definition: dict[str, Any] | None = None
    # Its layout still waits in the outbox (read where a write finds the version it would repeat).
    index_pending: bool = False


@dataclass(frozen=True, slots=True)
class VersionRef:
    """An existing version a new one may derive from, with its definition for diffing."""

    id: str
    form_key: str
    number: int
    definition: dict[str, Any]


@dataclass(frozen=True, slots=True)
class LatestGuard:
    """A write's condition: the form's latest version is `latest_id` (None: the form has no version yet)."""

    latest_id: str | None


@dataclass(frozen=True, slots=True)
class NewVersion:
    id: str
    form_key: str
    content_hash: str
    definition: dict[str, Any]
    source_format: str
    title: str
    layout_text: str
    field_count: int
    parents: list[ParentDiff]
    label: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # What parent suggestion compares (ingest.prints): node and field-key hashes and the layout hash.
    # Left None, suggested-parents computes them from the definition whenever it meets the version.
    layout_nodes: list[int] | None = None
    layout_keys: list[int] | None = None
    layout_hash: str | None = None


@dataclass(frozen=True, slots=True)
class StoredForm:
    key: str
    title: str
    version_count: int
    latest_id: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PendingLayout:
    """An outbox entry: a version whose layout is not in the index yet."""

    id: str
    tenant: str
    form_key: str
    number: int
    content_hash: str
    layout_text: str


@dataclass(frozen=True, slots=True)
class LineageContext:
    """A version's place in the graph as its index point carries it: latest of its lineage? pins?"""

    id: str
    tenant: str
    is_latest: bool
    pin_count: int
    # Counts the writes that changed it: the index takes a context only over an older one.
    rev: int


@dataclass(frozen=True, slots=True)
class AncestorRef:
    """A version on the lineage of another, `depth` DERIVED_FROM steps away from it."""

    id: str
    form_key: str
    number: int
    content_hash: str
    depth: int


@dataclass(frozen=True, slots=True)
class TenantGraphCounts:
    """What one tenant holds in the graph."""

    forms: int
    versions: int
    edges: int
    pending: int


def _version_params(new: NewVersion) -> dict[str, Any]:
    return {
        "id": new.id,
        "form_key": new.form_key,
        "content_hash": new.content_hash,
        "label": new.label,
        "metadata": json.dumps(new.metadata, sort_keys=True),
        "definition": json.dumps(new.definition, sort_keys=True, ensure_ascii=False),
        "source_format": new.source_format,
        "title": new.title,
        "layout_text": new.layout_text,
        "field_count": new.field_count,
        "layout_nodes": new.layout_nodes,
        "layout_keys": new.layout_keys,
        "layout_hash": new.layout_hash,
        "parents": [
            {"id": p.id, "summary": p.summary, "changes": json.dumps(p.changes or [])} for p in new.parents
        ],
    }


def _stored_version(row: dict[str, Any], *, with_definition: bool = True) -> StoredVersion:
    parents = [
        ParentDiff(
            id=p["id"],
            summary=p.get("summary") or "",
            changes=json.loads(p["changes"]) if p.get("changes") else None,
        )
        for p in row.get("parents", [])
    ]
    definition = row.get("definition")
    return StoredVersion(
        id=row["id"],
        tenant=row.get("tenant", ""),
        form_key=row["form_key"],
        number=row["number"],
        content_hash=row["content_hash"],
        created_at=row["created_at"].to_native(),
        label=row.get("label"),
        metadata=json.loads(row["metadata"]) if row.get("metadata") else {},
        source_format=row.get("source_format") or "",
        title=row.get("title") or "",
        parents=sorted(parents, key=lambda p: p.id),
        definition=json.loads(definition) if with_definition and definition else None,
        index_pending=bool(row.get("index_pending")),
    )


def _stored_form(row: Any) -> StoredForm:
    return StoredForm(
        key=row["key"],
        title=row["title"] or "",
        version_count=row["version_count"],
        latest_id=row["latest_id"],
        created_at=row["created_at"].to_native(),
    )


class FormVersionRepository:
    """Reads and writes forms and versions of one tenant at a time; every query filters by tenant."""

    def __init__(self, graph: Graph) -> None:
        self._graph = graph

    async def find_by_content(self, tenant: str, form_key: str, content_hash: str) -> StoredVersion | None:
        """The version of the form with exactly this content, if any."""
        result = await self._graph.run(
            queries.VERSION_BY_CONTENT, tenant=tenant, form_key=form_key, content_hash=content_hash
        )
        return _stored_version(result.records[0]["version"]) if result.records else None

    async def refs(self, tenant: str, ids: list[str]) -> dict[str, VersionRef]:
        """The tenant's versions among `ids`, by id; ids of other tenants are simply absent."""
        result = await self._graph.run(queries.VERSIONS_BY_IDS, tenant=tenant, ids=ids)
        return {
            r["id"]: VersionRef(r["id"], r["form_key"], r["number"], json.loads(r["definition"]))
            for r in result.records
        }

    async def latest(self, tenant: str, form_key: str) -> VersionRef | None:
        """The form's highest-numbered version, if it has any."""
        result = await self._graph.run(queries.LATEST_VERSION, tenant=tenant, form_key=form_key)
        if not result.records:
            return None
        r = result.records[0]
        return VersionRef(r["id"], r["form_key"], r["number"], json.loads(r["definition"]))

    async def create(
        self, tenant: str, new: NewVersion, *, if_latest: LatestGuard | None = None
    ) -> tuple[StoredVersion, bool]:
        """Write the version, its lineage and its outbox entry in one transaction.

        Returns (version, True), or (the existing version, False) when the form already has this content.
        With `if_latest`, raises LatestMoved (and writes nothing) unless the form's latest version is still
        the one it names, checked under the form's lock: concurrent writers cannot both derive from it.
        Raises ParentsNotFound (and writes nothing) when a parent it names is not in the graph.
        """

        async def work(tx: AsyncManagedTransaction) -> tuple[StoredVersion, bool]:
            await tx.run(queries.LOCK_FORM, tenant=tenant, form_key=new.form_key)
            existing = await (
                await tx.run(
                    queries.VERSION_BY_CONTENT,
                    tenant=tenant,
                    form_key=new.form_key,
                    content_hash=new.content_hash,
                )
            ).single()
            if existing is not None:
                return _stored_version(existing["version"]), False
            if if_latest is not None:
                # Read under the form's lock: a writer that committed before us is seen.
                latest = await (
                    await tx.run(queries.LATEST_VERSION, tenant=tenant, form_key=new.form_key)
                ).single()
                latest_id = latest["id"] if latest is not None else None
                if latest_id != if_latest.latest_id:
                    raise LatestMoved(new.form_key, latest_id)
            created = await (
                await tx.run(queries.CREATE_VERSION, tenant=tenant, **_version_params(new))
            ).single()
            assert created is not None
            stored = _stored_version(created["version"])
            _check_parents(new, stored)
            await record_events(tx, tenant, [version_created(stored)])
            return stored, True

        try:
            return await self._graph.write(work)
        except ConstraintError:
            # Another writer committed the same content between our lock and create: theirs stands.
            found = await self.find_by_content(tenant, new.form_key, new.content_hash)
            if found is None:
                raise
            return found, False

    async def get(self, tenant: str, version_id: str) -> StoredVersion | None:
        """One version of the tenant, with its definition and parents."""
        result = await self._graph.run(queries.VERSION_BY_ID, tenant=tenant, id=version_id)
        return _stored_version(result.records[0]["version"]) if result.records else None

    async def get_form(self, tenant: str, form_key: str) -> StoredForm | None:
        result = await self._graph.run(queries.FORM_BY_KEY, tenant=tenant, form_key=form_key)
        return _stored_form(result.records[0]) if result.records else None

    async def list_forms(
        self, tenant: str, *, after: str, limit: int, containing: str | None = None
    ) -> list[StoredForm]:
        """Forms by key, starting after the given key; with `containing` (no line break: the API refuses
        control characters), only those whose key or title contains it, ignoring case, within their first
        8,000 characters. A word of three characters or more is looked up in the forms' text index first; a
        shorter one, or one in more than SEARCH_BOUND forms, is matched reading the tenant's forms in key
        order, which fills a page soon when the word is that common."""
        q = containing.lower() if containing else None
        if q is not None and len(q) >= TRIGRAM:
            found = await self._graph.run(
                queries.SEARCH_FORMS, tenant=tenant, after=after, limit=limit, q=q, bound=SEARCH_BOUND
            )
            if found.records[0]["matches"] < SEARCH_BOUND:
                return [_stored_form(form) for form in found.records[0]["forms"]]
        result = await self._graph.run(queries.LIST_FORMS, tenant=tenant, after=after, limit=limit, q=q)
        return [_stored_form(r) for r in result.records]

    async def list_versions(
        self, tenant: str, form_key: str, *, after: int, limit: int
    ) -> list[StoredVersion]:
        """A form's versions by number, starting after the given number."""
        result = await self._graph.run(
            queries.LIST_VERSIONS, tenant=tenant, form_key=form_key, after=after, limit=limit
        )
        return [_stored_version(r["version"], with_definition=False) for r in result.records]

    async def find_by_contents(
        self, tenant: str, pairs: list[tuple[str, str]]
    ) -> dict[tuple[str, str], StoredVersion]:
        """The versions that already hold these (form_key, content_hash) pairs, by pair."""
        if not pairs:
            return {}
        result = await self._graph.run(
            queries.VERSIONS_BY_CONTENTS,
            tenant=tenant,
            pairs=[{"form_key": key, "content_hash": digest} for key, digest in pairs],
        )
        found = [_stored_version(r["version"], with_definition=False) for r in result.records]
        return {(v.form_key, v.content_hash): v for v in found}

    async def latest_many(self, tenant: str, form_keys: list[str]) -> dict[str, VersionRef]:
        """The latest version of each form that has one, by form key."""
        if not form_keys:
            return {}
        result = await self._graph.run(queries.LATEST_VERSIONS, tenant=tenant, form_keys=form_keys)
        return {
            r["form_key"]: VersionRef(r["id"], r["form_key"], r["number"], json.loads(r["definition"]))
            for r in result.records
        }

    async def create_many(self, tenant: str, versions: list[NewVersion]) -> list[tuple[StoredVersion, bool]]:
        """Write new versions in one transaction, in the order given.

        Each is (version, True) when created, or (the existing version, False) when its form already
        holds that content, exactly as `create` decides it. A parent is either in the graph already or a
        version before it in the list, named by its id (which stands for the existing version when that
        one's content was already there). Raises ParentsNotFound, writing nothing, when it is neither.
        """
        if not versions:
            return []

        async def at_once(tx: AsyncManagedTransaction) -> list[tuple[StoredVersion, bool]]:
            return await create_versions_in(tx, tenant, versions)

        async def in_order(tx: AsyncManagedTransaction) -> list[tuple[StoredVersion, bool]]:
            stored_as: dict[str, str] = {}
            written: list[tuple[StoredVersion, bool]] = []
            for new in versions:
                [(stored, created)] = await create_versions_in(tx, tenant, [_parents_renamed(new, stored_as)])
                stored_as[new.id] = stored.id
                written.append((stored, created))
            return written

        try:
            return await self._graph.write(at_once)
        except (ConstraintError, ParentsNotFound):
            # A concurrent writer raced us on a new form, or a version the list derives from was stored
            # already under another id: again, a statement per version, naming what each turned out to be.
            return await self._graph.write(in_order)

    async def ancestry(self, tenant: str, version_id: str) -> list[AncestorRef]:
        """The version and every version it derives from, transitively, nearest first."""
        result = await self._graph.run(queries.VERSION_ANCESTRY, tenant=tenant, id=version_id)
        return [
            AncestorRef(r["id"], r["form_key"], r["number"], r["content_hash"], r["depth"])
            for r in result.records
        ]

    async def counts(self, tenant: str) -> TenantGraphCounts:
        """How many forms, versions, lineage edges and open outbox entries the tenant has."""
        result = await self._graph.run(queries.TENANT_GRAPH_COUNTS, tenant=tenant)
        r = result.records[0]
        return TenantGraphCounts(r["forms"], r["versions"], r["edges"], r["pending"])


async def create_versions_in(
    tx: AsyncManagedTransaction, tenant: str, versions: list[NewVersion]
) -> list[tuple[StoredVersion, bool]]:
    """Write new versions inside the caller's transaction, as `create_many` decides them."""
    # A content given twice for one form is written once; the later copy stands for the first.
    first_of: dict[tuple[str, str], str] = {}
    stands_for: dict[str, str] = {}
    sent: list[NewVersion] = []
    for new in versions:
        content = (new.form_key, new.content_hash)
        if content in first_of:
            stands_for[new.id] = first_of[content]
        else:
            first_of[content] = new.id
            sent.append(_parents_renamed(new, stands_for))
    result = await tx.run(
        queries.CREATE_VERSIONS, tenant=tenant, versions=[_version_params(new) for new in sent]
    )
    by_request = {
        r["request_id"]: (_stored_version(r["version"], with_definition=False), r["created"])
        async for r in result
    }
    for new in sent:
        stored, created = by_request[new.id]
        if created:
            _check_parents(new, stored)
    written = [
        (by_request[stands_for[new.id]][0], False) if new.id in stands_for else by_request[new.id]
        for new in versions
    ]
    await record_events(tx, tenant, [version_created(version) for version, created in written if created])
    return written


def _parents_renamed(new: NewVersion, renamed: dict[str, str]) -> NewVersion:
    """The version with each parent id that `renamed` maps replaced by what it maps to."""
    if not any(parent.id in renamed for parent in new.parents):
        return new
    parents = [replace(parent, id=renamed.get(parent.id, parent.id)) for parent in new.parents]
    return replace(new, parents=parents)


def _check_parents(new: NewVersion, stored: StoredVersion) -> None:
    """Raise ParentsNotFound unless the version was written with an edge to every parent it names."""
    missing = {parent.id for parent in new.parents} - {parent.id for parent in stored.parents}
    if missing:
        raise ParentsNotFound(new.id, sorted(missing))


def version_created(version: StoredVersion) -> EventDraft:
    """The event announcing a new version: its ids, number, parents and API path."""
    return EventDraft(
        type="version.created",
        subject=f"form:{version.form_key}",
        payload={
            "version_id": version.id,
            "form_key": version.form_key,
            "number": version.number,
            "parents": [parent.id for parent in version.parents],
            "path": f"/api/v1/form-versions/{version.id}",
        },
    )


def _pending_layout(row: Any) -> PendingLayout:
    return PendingLayout(
        id=row["id"],
        tenant=row["tenant"],
        form_key=row["form_key"],
        number=row["number"],
        content_hash=row["content_hash"],
        layout_text=row["layout_text"] or "",
    )


class LayoutOutbox:
    """The outbox: versions whose layout is not indexed yet (:IndexPending), and versions whose lineage
    context changed since their point got it (:ContextPending)."""

    def __init__(self, graph: Graph) -> None:
        self._graph = graph

    async def backlog(self) -> tuple[int, int]:
        """How many layout entries and context entries are open, over all tenants."""
        result = await self._graph.run(queries.OUTBOX_BACKLOG)
        return int(result.records[0]["layouts"]), int(result.records[0]["contexts"])

    async def pending(self, limit: int) -> list[PendingLayout]:
        """The oldest open entries."""
        result = await self._graph.run(queries.PENDING_INDEX, limit=limit)
        return [_pending_layout(r) for r in result.records]

    async def mark_indexed(self, ids: list[str]) -> None:
        """Close the entries whose points are now in the index, announcing each (layout.indexed: the version
        is in similar-layout results now) in the same transaction."""

        async def work(tx: AsyncManagedTransaction) -> None:
            cleared = [record async for record in await tx.run(queries.CLEAR_PENDING, ids=ids)]
            by_tenant: dict[str, list[EventDraft]] = {}
            for row in cleared:
                by_tenant.setdefault(row["tenant"], []).append(
                    EventDraft(
                        type="layout.indexed",
                        subject=f"form:{row['form_key']}",
                        payload={
                            "version_id": row["id"],
                            "form_key": row["form_key"],
                            "number": row["number"],
                            "path": f"/api/v1/form-versions/{row['id']}/similar",
                        },
                    )
                )
            for tenant, drafts in sorted(by_tenant.items()):
                await record_events(tx, tenant, drafts)

        await self._graph.write(work)

    async def pending_context(self, limit: int) -> list[LineageContext]:
        """Versions whose lineage context changed since their point got it, as it is now."""
        result = await self._graph.run(queries.PENDING_CONTEXT, limit=limit)
        return [_lineage_context(r) for r in result.records]

    async def context_of(self, ids: list[str]) -> list[LineageContext]:
        """The lineage context of these versions as it is now; versions not indexed yet are left out."""
        result = await self._graph.run(queries.CONTEXT_OF_VERSIONS, ids=ids)
        return [_lineage_context(r) for r in result.records]

    async def mark_context_published(self, published: Sequence[LineageContext]) -> None:
        """Close the context entries of these versions, given as the contexts published, unless the graph's
        context is not (or no longer) what was published."""
        await self._graph.run(
            queries.CLEAR_CONTEXT_PENDING,
            published=[
                {"id": c.id, "rev": c.rev, "is_latest": c.is_latest, "pin_count": c.pin_count}
                for c in published
            ],
        )


def _lineage_context(row: Any) -> LineageContext:
    return LineageContext(
        id=row["id"],
        tenant=row["tenant"],
        is_latest=row["is_latest"],
        pin_count=row["pin_count"],
        rev=row["rev"],
    )


@dataclass(frozen=True, slots=True)
class VersionFingerprint:
    """What a version's index point must carry, and whether its outbox entries are still open."""

    id: str
    tenant: str
    form_key: str
    number: int
    content_hash: str
    pending: bool
    # Its lineage context changed since its point got it (see LayoutOutbox).
    context_pending: bool
    is_latest: bool
    pin_count: int


class LayoutInventory:
    """The graph's side of reconciling the layout index: versions by id and their layouts."""

    def __init__(self, graph: Graph) -> None:
        self._graph = graph

    async def fingerprints(self, tenant: str | None, *, after: str, limit: int) -> list[VersionFingerprint]:
        """A page of versions ordered by id, starting after `after`; all tenants when tenant is None."""
        result = await self._graph.run(queries.VERSION_FINGERPRINTS, tenant=tenant, after=after, limit=limit)
        return [
            VersionFingerprint(
                id=r["id"],
                tenant=r["tenant"],
                form_key=r["form_key"],
                number=r["number"],
                content_hash=r["content_hash"],
                pending=r["pending"],
                context_pending=r["context_pending"],
                is_latest=r["is_latest"],
                pin_count=r["pin_count"],
            )
            for r in result.records
        ]

    async def layouts(self, ids: list[str]) -> list[PendingLayout]:
        """The layouts of these versions, ready to embed; unknown ids are left out."""
        result = await self._graph.run(queries.LAYOUTS_BY_IDS, ids=ids)
        return [_pending_layout(r) for r in result.records]

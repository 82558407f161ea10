"""LineageService: answers lineage questions from one graph query each, scoped to the caller's tenant."""

from __future__ import annotations

from typing import Any

import anyio.to_thread

from app.errors import Invalid, NotFound
from app.lineage.schemas import (
    Direction,
    FieldHistoryEntry,
    ImpactRead,
    LineageEdgeRead,
    LineageNodeRead,
    LineageRead,
    MergeBaseRead,
    NewerVersionRead,
    ParentSummaryRead,
    PinDriftRead,
    ReleaseDriftRead,
    ReleaseRefRead,
    UsedByRead,
    VersionDiffRead,
    VersionRefRead,
)
from graph.forms import FormVersionRepository
from graph.lineage import LINEAGE_MAX_DEPTH, AncestorNode, HistoryVersion, LineageRepository, ReleaseRef
from ingest import diff_definitions
from ingest.native import import_native

FIELD_CHANGE_KINDS = {"field_added", "field_removed", "field_changed", "field_renamed", "field_moved"}


def _release_read(ref: ReleaseRef) -> ReleaseRefRead:
    return ReleaseRefRead(id=ref.id, system_key=ref.system_key, version=ref.version, number=ref.number)


def lowest_common_ancestors(left: list[AncestorNode], right: list[AncestorNode]) -> list[AncestorNode]:
    """The common ancestors none of whose children is also a common ancestor."""
    right_ids = {node.id for node in right}
    common = [node for node in left if node.id in right_ids]
    # A common ancestor's parents are common too, so a common ancestor with a common child is not lowest.
    below_another = {parent for node in common for parent in node.parents}
    return sorted((n for n in common if n.id not in below_another), key=lambda n: (n.form_key, n.number))


def _field_aliases(field_key: str, versions: list[HistoryVersion]) -> set[str]:
    """The keys the field had along the lineage, following renames from newest to oldest."""
    aliases = {field_key}
    for version in sorted(versions, key=lambda v: v.number, reverse=True):
        for parent in version.parents:
            for change in parent.changes:
                renamed = change.get("kind") == "field_renamed" and change.get("key") in aliases
                if renamed and change.get("old_key"):
                    aliases.add(change["old_key"])
    return aliases


def field_history(field_key: str, versions: list[HistoryVersion]) -> list[FieldHistoryEntry]:
    """Each version, oldest first, in which the field (under any of its keys) was introduced or changed."""
    aliases = _field_aliases(field_key, versions)
    entries: list[FieldHistoryEntry] = []
    for version in sorted(versions, key=lambda v: v.number):
        if version.definition is not None:
            present = [f.key for f in import_native(version.definition).fields() if f.key in aliases]
            entries.extend(
                FieldHistoryEntry(
                    version_id=version.id,
                    number=version.number,
                    created_at=version.created_at,
                    parent_id=None,
                    action="added",
                    key=key,
                )
                for key in present
            )
        for parent in version.parents:
            for change in parent.changes:
                if change.get("kind") not in FIELD_CHANGE_KINDS:
                    continue
                if change.get("key") not in aliases and change.get("old_key") not in aliases:
                    continue
                entries.append(_history_entry(version, parent.parent_id, change))
    return entries


def _history_entry(version: HistoryVersion, parent_id: str, change: dict[str, Any]) -> FieldHistoryEntry:
    return FieldHistoryEntry(
        version_id=version.id,
        number=version.number,
        created_at=version.created_at,
        parent_id=parent_id,
        action=change["action"],
        key=change["key"],
        old_key=change.get("old_key"),
        properties=change.get("properties") or {},
        old_path=change.get("old_path"),
        new_path=change.get("new_path"),
    )


class LineageService:
    """Lineage reads of the caller's tenant; 404 for anything that is not the tenant's."""

    def __init__(self, *, lineage: LineageRepository, versions: FormVersionRepository) -> None:
        self.lineage = lineage
        self.versions = versions

    async def lineage_of(
        self, *, tenant: str, version_id: str, direction: Direction, depth: int
    ) -> LineageRead:
        """The version's ancestors and/or descendants within `depth` steps, with the edges among them."""
        if depth > LINEAGE_MAX_DEPTH:
            raise Invalid(f"depth {depth} is over the cap of {LINEAGE_MAX_DEPTH} lineage steps")
        if depth < 1:
            raise Invalid("depth must be at least 1")
        nodes = await self.lineage.lineage(tenant, version_id, direction=direction, depth=depth)
        if not nodes:
            raise NotFound(f"form version {version_id} not found")
        members = {node.id for node in nodes}
        edges = [
            LineageEdgeRead(child_id=node.id, parent_id=edge.parent_id, summary=edge.summary)
            for node in nodes
            for edge in node.parents
            if edge.parent_id in members
        ]
        return LineageRead(
            version_id=version_id,
            direction=direction,
            depth=depth,
            nodes=[
                LineageNodeRead(
                    id=n.id,
                    form_key=n.form_key,
                    number=n.number,
                    content_hash=n.content_hash,
                    created_at=n.created_at,
                    label=n.label,
                    distance=n.distance,
                    relation=n.relation,
                    parent_count=len(n.parents),
                    child_count=n.child_count,
                    release_count=n.release_count,
                )
                for n in nodes
            ],
            edges=edges,
        )

    async def diff(self, *, tenant: str, version_id: str, against_id: str) -> VersionDiffRead:
        """The structural diff that turns `against_id` into `version_id` (any two versions of the tenant)."""
        refs = await self.versions.refs(tenant, [version_id, against_id])
        missing = [i for i in (version_id, against_id) if i not in refs]
        if missing:
            raise NotFound(f"form version {', '.join(dict.fromkeys(missing))} not found")
        old, new = refs[against_id].definition, refs[version_id].definition
        result = await anyio.to_thread.run_sync(
            lambda: diff_definitions(import_native(old), import_native(new))
        )
        body = result.model_dump(mode="json")
        return VersionDiffRead(version_id=version_id, against_id=against_id, **body)

    async def merge_base(self, *, tenant: str, version_id: str, other_id: str) -> MergeBaseRead:
        """The lowest common ancestors of two versions."""
        ancestries = await self.lineage.ancestries(tenant, version_id, other_id)
        if ancestries is None:
            raise NotFound(f"form version {version_id} or {other_id} not found")
        bases = lowest_common_ancestors(*ancestries)
        return MergeBaseRead(
            version_id=version_id,
            other_id=other_id,
            merge_bases=[VersionRefRead(id=b.id, form_key=b.form_key, number=b.number) for b in bases],
        )

    async def field_history(
        self, *, tenant: str, form_key: str, field_key: str, version_id: str | None
    ) -> tuple[str, list[FieldHistoryEntry]]:
        """The start version and the field's history along its lineage, oldest first."""
        found = await self.lineage.field_lineage(tenant, form_key, version_id)
        if found is None:
            what = f"version {version_id} of form {form_key!r}" if version_id else f"form {form_key!r}"
            raise NotFound(f"{what} not found")
        start_id, versions = found
        entries = await anyio.to_thread.run_sync(field_history, field_key, versions)
        return start_id, entries

    async def used_by(
        self, *, tenant: str, version_id: str, whole_form: bool, after: tuple[str, int], limit: int
    ) -> list[UsedByRead]:
        """A page of the releases pinning the version (or, with whole_form, any version of its form)."""
        releases = await self.lineage.used_by(
            tenant, version_id, whole_form=whole_form, after=after, limit=limit
        )
        if releases is None:
            raise NotFound(f"form version {version_id} not found")
        return [
            UsedByRead(
                **_release_read(r.release).model_dump(),
                created_at=r.created_at,
                pinned_version_id=r.version_id,
                pinned_number=r.version_number,
            )
            for r in releases
        ]

    async def impact(
        self, *, tenant: str, version_id: str, after: tuple[int, int], limit: int
    ) -> list[ImpactRead]:
        """A page of the version and its descendants, nearest first, with the releases pinning each."""
        items = await self.lineage.impact(tenant, version_id, after=after, limit=limit)
        if items is None:
            raise NotFound(f"form version {version_id} not found")
        return [
            ImpactRead(
                version_id=i.id,
                form_key=i.form_key,
                number=i.number,
                content_hash=i.content_hash,
                created_at=i.created_at,
                distance=i.distance,
                releases=[_release_read(r) for r in i.releases],
            )
            for i in items
        ]

    async def drift(self, *, tenant: str, release_id: str, after: str, limit: int) -> ReleaseDriftRead:
        """A page of the release's pins, each with the newer versions on its lineage."""
        drift = await self.lineage.drift(tenant, release_id, after=after, limit=limit)
        if drift is None:
            raise NotFound(f"release {release_id} not found")
        return ReleaseDriftRead(
            release_id=drift.id,
            system_key=drift.system_key,
            version=drift.version,
            items=[
                PinDriftRead(
                    form_key=p.form_key,
                    version_id=p.version_id,
                    number=p.number,
                    newer=[
                        NewerVersionRead(
                            id=d.id,
                            number=d.number,
                            created_at=d.created_at,
                            distance=d.distance,
                            diffs=[
                                ParentSummaryRead(parent_id=e.parent_id, summary=e.summary) for e in d.parents
                            ],
                        )
                        for d in p.newer
                    ],
                )
                for p in drift.pins
            ],
        )

"""Lineage reads: ancestors, descendants, merge bases, field histories, pins and drift, one query each."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, LiteralString

from graph import queries
from graph.database import Graph
from graph.forms import NewVersion

LINEAGE_MAX_DEPTH = queries.LINEAGE_MAX_DEPTH
DIRECTIONS = tuple(queries.LINEAGE_TEMPLATES)


def lineage_statement(direction: str, depth: int) -> LiteralString:
    """The lineage statement for a direction (up, down, both) walking at most `depth` steps."""
    if type(depth) is not int or not 1 <= depth <= LINEAGE_MAX_DEPTH:
        raise ValueError(f"lineage depth must be an int in 1..{LINEAGE_MAX_DEPTH}, not {depth!r}")
    # Cypher 5 takes no $parameter as a variable-length bound, so the bound is the one value formatted
    # in: an int checked just above, which cannot carry Cypher (why values are otherwise parameters).
    return queries.LINEAGE_TEMPLATES[direction].replace("__DEPTH__", str(depth))


@dataclass(frozen=True, slots=True, order=True)
class EdgeSummary:
    """A DERIVED_FROM edge seen from the child: the parent and the diff summary from it."""

    parent_id: str
    summary: str


@dataclass(frozen=True, slots=True)
class LineageNode:
    """A version on a lineage, `distance` steps from where the walk started."""

    id: str
    form_key: str
    number: int
    content_hash: str
    created_at: datetime
    label: str | None
    distance: int
    relation: str  # self, ancestor or descendant
    parents: list[EdgeSummary]
    # All its children and the releases that include it, whether or not the walk reached them.
    child_count: int = 0
    release_count: int = 0


@dataclass(frozen=True, slots=True)
class AncestorNode:
    """A version among the ancestors of another, with its parents' ids."""

    id: str
    form_key: str
    number: int
    parents: list[str]


@dataclass(frozen=True, slots=True)
class ChangesFromParent:
    """The stored machine-readable changes of one DERIVED_FROM edge."""

    parent_id: str
    changes: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class HistoryVersion:
    """A version on a field's lineage: its changes from each parent; a root carries its definition."""

    id: str
    number: int
    created_at: datetime
    parents: list[ChangesFromParent]
    definition: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class ReleaseRef:
    id: str
    system_key: str
    version: str
    number: int


@dataclass(frozen=True, slots=True)
class PinningRelease:
    """A release and the version (of the form asked about) it pins."""

    release: ReleaseRef
    created_at: datetime
    version_id: str
    version_number: int


@dataclass(frozen=True, slots=True)
class ImpactedVersion:
    """The version or one of its descendants, with the releases that pin it."""

    id: str
    form_key: str
    number: int
    content_hash: str
    created_at: datetime
    distance: int
    releases: list[ReleaseRef]


@dataclass(frozen=True, slots=True)
class NewerVersion:
    """A descendant of a pinned version, with the diff summaries from its parents."""

    id: str
    number: int
    created_at: datetime
    distance: int
    parents: list[EdgeSummary]


@dataclass(frozen=True, slots=True)
class PinDrift:
    form_key: str
    version_id: str
    number: int
    newer: list[NewerVersion]


@dataclass(frozen=True, slots=True)
class ReleaseDrift:
    id: str
    system_key: str
    version: str
    pins: list[PinDrift]


def _edges(rows: list[dict[str, Any]]) -> list[EdgeSummary]:
    return sorted((EdgeSummary(r["id"], r["summary"] or "") for r in rows), key=lambda e: e.parent_id)


def _release_ref(row: dict[str, Any]) -> ReleaseRef:
    return ReleaseRef(row["id"], row["system_key"], row["version"], row["number"])


def _ancestors(rows: list[dict[str, Any]]) -> list[AncestorNode]:
    return [AncestorNode(r["id"], r["form_key"], r["number"], sorted(r["parents"])) for r in rows]


class LineageRepository:
    """Lineage reads of one tenant at a time; each method is one Cypher statement."""

    def __init__(self, graph: Graph) -> None:
        self._graph = graph

    async def lineage(self, tenant: str, version_id: str, *, direction: str, depth: int) -> list[LineageNode]:
        """The version and its ancestors and/or descendants within `depth` steps; [] if not the tenant's."""
        result = await self._graph.run(lineage_statement(direction, depth), tenant=tenant, id=version_id)
        rows = result.records[0]["nodes"]
        return [
            LineageNode(
                id=node_id,
                form_key=form_key,
                number=number,
                content_hash=digest,
                created_at=datetime.fromtimestamp(millis / 1000, tz=UTC),
                label=label,
                distance=distance,
                relation="self" if distance == 0 else relation,
                parents=sorted(EdgeSummary(p_id, summary or "") for p_id, summary in parents),
                child_count=children,
                release_count=releases,
            )
            for (
                node_id,
                form_key,
                number,
                digest,
                millis,
                label,
                distance,
                relation,
                parents,
                children,
                releases,
            ) in rows
        ]

    async def ancestries(
        self, tenant: str, version_id: str, other_id: str
    ) -> tuple[list[AncestorNode], list[AncestorNode]] | None:
        """The ancestors (self included) of both versions; None unless both are the tenant's."""
        result = await self._graph.run(
            queries.MERGE_BASE_ANCESTRIES, tenant=tenant, id=version_id, other=other_id
        )
        if not result.records:
            return None
        record = result.records[0]
        return _ancestors(record["left"]), _ancestors(record["right"])

    async def field_lineage(
        self, tenant: str, form_key: str, version_id: str | None
    ) -> tuple[str, list[HistoryVersion]] | None:
        """The start version (the form's latest by default) and its ancestors with their stored changes."""
        result = await self._graph.run(
            queries.FIELD_LINEAGE, tenant=tenant, form_key=form_key, version_id=version_id
        )
        if not result.records:
            return None
        record = result.records[0]
        versions = [
            HistoryVersion(
                id=v["id"],
                number=v["number"],
                created_at=v["created_at"].to_native(),
                parents=[
                    ChangesFromParent(p["id"], json.loads(p["changes"]) if p["changes"] else [])
                    for p in sorted(v["parents"], key=lambda p: str(p["id"]))
                ],
                definition=json.loads(v["definition"]) if v["definition"] else None,
            )
            for v in record["versions"]
        ]
        return record["id"], sorted(versions, key=lambda v: v.number)

    async def used_by(
        self,
        tenant: str,
        version_id: str,
        *,
        whole_form: bool,
        after: tuple[str, int],
        limit: int,
    ) -> list[PinningRelease] | None:
        """A page of the releases pinning the version (or any version of its form); None if not found."""
        statement = queries.USED_BY_FORM if whole_form else queries.USED_BY_VERSION
        result = await self._graph.run(
            statement,
            tenant=tenant,
            id=version_id,
            after_system=after[0],
            after_number=after[1],
            limit=limit,
        )
        if not result.records:
            return None
        return [
            PinningRelease(_release_ref(r), r["created_at"].to_native(), r["version_id"], r["version_number"])
            for r in result.records[0]["releases"]
        ]

    async def impact(
        self, tenant: str, version_id: str, *, after: tuple[int, int], limit: int
    ) -> list[ImpactedVersion] | None:
        """A page of the version and its descendants by distance, with their pinning releases."""
        result = await self._graph.run(
            queries.IMPACT,
            tenant=tenant,
            id=version_id,
            after_distance=after[0],
            after_number=after[1],
            limit=limit,
        )
        if not result.records:
            return None
        items = [
            ImpactedVersion(
                id=d["id"],
                form_key=d["form_key"],
                number=d["number"],
                content_hash=d["content_hash"],
                created_at=d["created_at"].to_native(),
                distance=d["distance"],
                releases=[_release_ref(r) for r in d["releases"]],
            )
            for d in result.records[0]["items"]
        ]
        return sorted(items, key=lambda item: (item.distance, item.number))

    async def drift(self, tenant: str, release_id: str, *, after: str, limit: int) -> ReleaseDrift | None:
        """A release and a page of its pins by form key, each with the newer versions on its lineage."""
        result = await self._graph.run(queries.DRIFT, tenant=tenant, id=release_id, after=after, limit=limit)
        if not result.records:
            return None
        record = result.records[0]
        pins = [
            PinDrift(
                form_key=p["form_key"],
                version_id=p["version_id"],
                number=p["number"],
                newer=sorted(
                    (
                        NewerVersion(
                            id=d["id"],
                            number=d["number"],
                            created_at=d["created_at"].to_native(),
                            distance=d["distance"],
                            parents=_edges(d["parents"]),
                        )
                        for d in p["newer"]
                    ),
                    key=lambda d: (d.distance, d.number),
                ),
            )
            for p in record["pins"]
        ]
        return ReleaseDrift(
            id=record["id"],
            system_key=record["system_key"],
            version=record["version"],
            pins=sorted(pins, key=lambda p: p.form_key),
        )

    async def create_chain(self, tenant: str, form_key: str, versions: list[NewVersion]) -> int:
        """Write new versions of one form in one statement, each derived from the one before it.

        Seeds long lineages (benchmarks); each version's first parent diff is stored on its edge to the
        version before it. Returns how many lineage edges were written.
        """
        rows = [
            {
                "id": new.id,
                "content_hash": new.content_hash,
                "label": new.label,
                "metadata": json.dumps(new.metadata, sort_keys=True),
                "definition": json.dumps(new.definition, sort_keys=True, ensure_ascii=False),
                "source_format": new.source_format,
                "title": new.title,
                "layout_text": new.layout_text,
                "field_count": new.field_count,
                "summary": new.parents[0].summary if new.parents else "",
                "changes": json.dumps(new.parents[0].changes or [] if new.parents else []),
            }
            for new in versions
        ]
        result = await self._graph.run(
            queries.CREATE_VERSION_CHAIN, tenant=tenant, form_key=form_key, versions=rows
        )
        return int(result.records[0]["edges"]) if result.records else 0

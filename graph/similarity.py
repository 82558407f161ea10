"""The graph side of similar-layout queries: scopes (lineage, system pins, created before) and hit context."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from graph import queries
from graph.database import Graph


@dataclass(frozen=True, slots=True)
class SimilaritySource:
    """A version a similarity query starts from, with its lineage (when asked for)."""

    id: str
    form_key: str
    lineage: frozenset[str]


@dataclass(frozen=True, slots=True)
class StoredPrints:
    """A version's layout prints as stored (ingest.prints), or its definition when stored without them."""

    layout_nodes: list[int] | None
    layout_keys: list[int] | None
    layout_hash: str | None
    definition: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class VersionsAround:
    """A version's layout prints, and the tenant's other versions created before it or not; a side with
    more versions than the read was bounded to is None."""

    prints: StoredPrints
    before: list[str] | None
    not_before: list[str] | None


@dataclass(frozen=True, slots=True)
class HitContext:
    """What a similarity hit shows about its version and lineage."""

    id: str
    form_key: str
    number: int
    created_at: datetime
    is_latest: bool
    pin_count: int
    prints: StoredPrints | None = None


def _stored_prints(row: Any) -> StoredPrints:
    definition = row["definition"]
    return StoredPrints(
        layout_nodes=row["layout_nodes"],
        layout_keys=row["layout_keys"],
        layout_hash=row["layout_hash"],
        definition=json.loads(definition) if definition else None,
    )


class SimilarityRepository:
    """Reads the graph facts that scope and explain similar-layout results; always per tenant."""

    def __init__(self, graph: Graph) -> None:
        self._graph = graph

    async def source(self, tenant: str, version_id: str, *, lineage: bool) -> SimilaritySource | None:
        """The tenant's version, with its ancestors and descendants when `lineage`; None if absent."""
        result = await self._graph.fetch(
            queries.SIMILARITY_SOURCE, tenant=tenant, id=version_id, lineage=lineage
        )
        if not result.records:
            return None
        row = result.records[0]
        return SimilaritySource(
            id=row["id"],
            form_key=row["form_key"],
            lineage=frozenset(row["ancestors"]) | frozenset(row["descendants"]),
        )

    async def pinned_by_system(self, tenant: str, system_key: str) -> set[str]:
        """Ids of the form versions pinned by any release of the system."""
        result = await self._graph.fetch(queries.SYSTEM_PINNED_VERSIONS, tenant=tenant, system_key=system_key)
        return set(result.records[0]["ids"]) if result.records else set()

    async def pinned_by_release(self, tenant: str, release_id: str) -> set[str] | None:
        """Ids of the form versions the release pins; None when the tenant has no such release."""
        result = await self._graph.fetch(
            queries.RELEASE_PINNED_VERSIONS, tenant=tenant, release_id=release_id
        )
        return set(result.records[0]["ids"]) if result.records else None

    async def versions_around(self, tenant: str, version_id: str, *, bound: int) -> VersionsAround | None:
        """The version's layout prints and the other versions created before it or not, each side only when
        it holds at most `bound` versions (the read stops after bound + 1); None if the version is absent."""
        result = await self._graph.fetch(queries.VERSIONS_AROUND, tenant=tenant, id=version_id, bound=bound)
        if not result.records:
            return None
        row = result.records[0]
        before, not_before = list(row["before"]), list(row["not_before"])
        return VersionsAround(
            prints=_stored_prints(row),
            before=before if len(before) <= bound else None,
            not_before=not_before if len(not_before) <= bound else None,
        )

    async def created_before(self, tenant: str, version_id: str, ids: list[str]) -> set[str]:
        """Those of the tenant's versions among `ids` that were created before the version."""
        if not ids:
            return set()
        result = await self._graph.fetch(
            queries.VERSIONS_CREATED_BEFORE, tenant=tenant, id=version_id, ids=ids
        )
        return set(result.records[0]["ids"]) if result.records else set()

    async def hit_context(
        self, tenant: str, ids: list[str], *, with_prints: bool = False
    ) -> dict[str, HitContext]:
        """Lineage context of the tenant's versions among `ids`, by id, in one query (and their layout
        prints with `with_prints`)."""
        if not ids:
            return {}
        result = await self._graph.fetch(queries.HIT_CONTEXT, tenant=tenant, ids=ids, with_prints=with_prints)
        return {
            row["id"]: HitContext(
                id=row["id"],
                form_key=row["form_key"],
                number=row["number"],
                created_at=datetime.fromtimestamp(row["created_at"] / 1000, tz=UTC),
                is_latest=row["is_latest"],
                pin_count=row["pin_count"],
                prints=_stored_prints(row) if with_prints else None,
            )
            for row in result.records
        }

"""What a render needs from the graph: a version's content, or the version a release pins for a form."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from graph import queries
from graph.database import Graph


@dataclass(frozen=True, slots=True)
class RenderSource:
    """A form version's canonical definition (native export) with its content hash."""

    id: str
    form_key: str
    content_hash: str
    field_count: int
    definition: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ReleasePin:
    """A release looked up for one form: `source` is None when the release does not pin that form."""

    release_id: str
    source: RenderSource | None


def _source(row: dict[str, Any]) -> RenderSource:
    return RenderSource(
        id=row["id"],
        form_key=row["form_key"],
        content_hash=row["content_hash"],
        field_count=row["field_count"],
        definition=json.loads(row["definition"]),
    )


class RenderSourceRepository:
    """Reads render inputs of one tenant at a time; every query filters by tenant."""

    def __init__(self, graph: Graph) -> None:
        self._graph = graph

    async def version(self, tenant: str, version_id: str) -> RenderSource | None:
        """The tenant's version with this id, or None (also for another tenant's id)."""
        result = await self._graph.run(queries.RENDER_SOURCE, tenant=tenant, id=version_id)
        return _source(result.records[0]["version"]) if result.records else None

    async def pinned(self, tenant: str, release_id: str, form_key: str) -> ReleasePin | None:
        """The version the tenant's release pins for the form; None when there is no such release."""
        result = await self._graph.run(
            queries.RELEASE_PINNED_RENDER_SOURCE, tenant=tenant, release_id=release_id, form_key=form_key
        )
        if not result.records:
            return None
        row = result.records[0]
        return ReleasePin(
            release_id=row["release_id"], source=_source(row["version"]) if row["version"] else None
        )

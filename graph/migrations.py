"""Versioned changes to the graph's schema and data, recorded in the graph itself and applied in order.

Each applied migration leaves a (:SchemaMigration {version, name, applied_at}) node. A PageForge whose
migrations are not all recorded refuses to serve (SchemaOutOfDate) until `pageforge migrate` has run;
one that finds a migration it does not know was started against a graph a newer PageForge migrated.
Every migration is idempotent, so two processes migrating at once, or a run cut short, leave it right.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from graph import queries
from graph.database import Graph
from graph.errors import SchemaOutOfDate
from ingest.native import import_native
from ingest.prints import layout_prints

BACKFILL_BATCH = 500
# How long a migration waits for a new index to come online (Neo4j fills it from the graph).
INDEX_ONLINE_TIMEOUT_S = 3600


# Applies a change; returns how many things it created or changed.
Step = Callable[[Graph], Awaitable[int]]
# What applying it would do now, for a dry run.
Preview = Callable[[Graph], Awaitable[str]]


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Step
    preview: Preview


@dataclass(frozen=True)
class AppliedMigration:
    version: int
    name: str
    applied_at: datetime


@dataclass(frozen=True)
class MigrationStatus:
    applied: list[AppliedMigration]
    pending: list[Migration]
    # Recorded in the graph but unknown to this PageForge (a newer one migrated the graph).
    unknown: list[AppliedMigration]

    @property
    def current(self) -> bool:
        return not self.pending and not self.unknown

    def problem(self) -> str:
        """What is wrong, in one sentence that says what to do."""
        if self.unknown:
            versions = ", ".join(str(m.version) for m in self.unknown)
            return (
                f"the graph has migration(s) {versions}, which this PageForge does not know: a newer "
                "PageForge migrated it"
            )
        names = ", ".join(f"{m.version} ({m.name})" for m in self.pending)
        return f"the graph lacks migration(s) {names}: run `pageforge migrate`"


# --- the migrations, oldest first ------------------------------------------------------------------

_CONSTRAINT_NAME = re.compile(r"CREATE (?:CONSTRAINT|(?:TEXT )?INDEX) (\w+) IF NOT EXISTS")
SCHEMA_STATEMENTS = (
    *queries.SCHEMA,
    "CREATE CONSTRAINT schema_migration_version IF NOT EXISTS "
    "FOR (m:SchemaMigration) REQUIRE m.version IS UNIQUE",
)


async def _missing_schema(graph: Graph, statements: tuple[str, ...] = SCHEMA_STATEMENTS) -> list[str]:
    existing = {
        row["name"]
        for names in (queries.SCHEMA_NAMES, queries.INDEX_NAMES)
        for row in (await graph.fetch(names)).records
    }
    wanted = [match.group(1) for match in map(_CONSTRAINT_NAME.match, statements) if match]
    return [name for name in wanted if name not in existing]


async def _create_schema(graph: Graph) -> int:
    missing = len(await _missing_schema(graph))
    for statement in SCHEMA_STATEMENTS:
        await graph.run(statement)
    return missing


async def _preview_schema(graph: Graph) -> str:
    missing = await _missing_schema(graph)
    return f"would create {len(missing)} constraint(s)" + (f": {', '.join(missing)}" if missing else "")


def _prints_row(version_id: str, definition: str) -> dict[str, Any]:
    prints = layout_prints(import_native(json.loads(definition)))
    return {
        "id": version_id,
        "layout_nodes": sorted(prints.nodes),
        "layout_keys": sorted(prints.field_keys),
        "layout_hash": prints.layout,
    }


async def _backfill_prints(graph: Graph) -> int:
    done = 0
    while True:
        rows = (await graph.fetch(queries.VERSIONS_WITHOUT_PRINTS, limit=BACKFILL_BATCH)).records
        if not rows:
            return done
        await graph.run(queries.SET_PRINTS, rows=[_prints_row(row["id"], row["definition"]) for row in rows])
        done += len(rows)


async def _preview_prints(graph: Graph) -> str:
    count = (await graph.fetch(queries.COUNT_VERSIONS_WITHOUT_PRINTS)).records[0]["count"]
    return f"would store layout prints on {count} version(s) stored without them"


def _constraints(statements: tuple[str, ...]) -> tuple[Step, Preview]:
    """A migration's two halves for a set of constraints and indexes: create those missing, or say which
    would be."""

    async def create(graph: Graph) -> int:
        missing = len(await _missing_schema(graph, statements))
        for statement in statements:
            await graph.run(statement)
        return missing

    async def preview(graph: Graph) -> str:
        missing = await _missing_schema(graph, statements)
        return f"would create {len(missing)} constraint(s) or index(es)" + (
            f": {', '.join(missing)}" if missing else ""
        )

    return create, preview


_create_search_index, _preview_search_index = _constraints(queries.SEARCH_SCHEMA)


async def _search_forms(graph: Graph) -> int:
    done = await _create_search_index(graph)
    await graph.run(queries.AWAIT_SEARCH_INDEX, timeout_s=INDEX_ONLINE_TIMEOUT_S)
    while True:
        count = (await graph.run(queries.SET_MISSING_FORM_SEARCH, limit=BACKFILL_BATCH)).records[0]["count"]
        if not count:
            return done
        done += count


async def _preview_search_forms(graph: Graph) -> str:
    count = (await graph.fetch(queries.COUNT_FORMS_WITHOUT_SEARCH)).records[0]["count"]
    return f"{await _preview_search_index(graph)}, and would store the search text of {count} form(s)"


MIGRATIONS = (
    Migration(1, "constraints", _create_schema, _preview_schema),
    Migration(2, "layout prints on versions stored without them", _backfill_prints, _preview_prints),
    Migration(3, "event and webhook constraints", *_constraints(queries.EVENT_SCHEMA)),
    Migration(4, "stream token and job constraints", *_constraints(queries.JOB_SCHEMA)),
    Migration(5, "delivery, event and version-age indexes", *_constraints(queries.GROWTH_SCHEMA)),
    Migration(6, "form search text and its index", _search_forms, _preview_search_forms),
)


class Migrator:
    """Reads which migrations the graph has and applies the missing ones, in order."""

    def __init__(self, graph: Graph, migrations: tuple[Migration, ...] = MIGRATIONS) -> None:
        self._graph = graph
        self._migrations = migrations

    async def status(self) -> MigrationStatus:
        rows = (await self._graph.fetch(queries.APPLIED_MIGRATIONS)).records
        applied = [
            AppliedMigration(row["version"], row["name"], row["applied_at"].to_native()) for row in rows
        ]
        known = {migration.version for migration in self._migrations}
        done = {migration.version for migration in applied}
        return MigrationStatus(
            applied=[m for m in applied if m.version in known],
            pending=[m for m in self._migrations if m.version not in done],
            unknown=[m for m in applied if m.version not in known],
        )

    async def migrate(self) -> list[tuple[Migration, int]]:
        """Apply every pending migration in order, recording each; what was applied, with its count."""
        status = await self.status()
        if status.unknown:
            raise SchemaOutOfDate(status.problem())
        applied = []
        for migration in status.pending:
            changed = await migration.apply(self._graph)
            await self._graph.run(queries.RECORD_MIGRATION, version=migration.version, name=migration.name)
            applied.append((migration, changed))
        return applied

    async def preview(self) -> list[tuple[Migration, str]]:
        """What `migrate` would apply now, and what each would do; changes nothing."""
        return [
            (migration, await migration.preview(self._graph)) for migration in (await self.status()).pending
        ]

    async def require_current(self) -> None:
        """Raise SchemaOutOfDate, saying what to do, unless every migration is recorded and none unknown."""
        status = await self.status()
        if not status.current:
            raise SchemaOutOfDate(status.problem())

"""No statement PageForge runs reads every node of a label that grows with the graph (versions, releases,
events, deliveries, forms): each finds what it needs through an index or by walking from a node it found
so. bench_graph_scale measures what that buys (lineage calls at 10k and 1M versions); this catches, from
Neo4j's own EXPLAIN, a statement written so that no index can serve it (LATEST_VERSION ordered by number
alone scanned every version in the graph). The outbox labels are left out: they hold the backlog only."""

from __future__ import annotations

from typing import Any

import pytest

from graph import queries
from graph.database import Graph
from graph.lineage import lineage_statement

pytestmark = pytest.mark.anyio

GROWING = {"FormVersion", "SysVersion", "Event", "Delivery", "Form", "System"}

# Statements that read every node of a growing label by design, and why.
WHOLE_GRAPH = {
    "TENANT_GRAPH_COUNTS": "counts a tenant's forms, versions and edges (reconcile reports them)",
    "VERSIONS_WITHOUT_PRINTS": "a migration's backfill, once per graph",
    "COUNT_VERSIONS_WITHOUT_PRINTS": "a migration's preview, once per graph",
    "SET_MISSING_FORM_SEARCH": "a migration's backfill, once per graph",
    "COUNT_FORMS_WITHOUT_SEARCH": "a migration's preview, once per graph",
}

STATEMENTS = {
    name: statement
    for name, statement in vars(queries).items()
    if name.isupper()
    and not name.startswith("_")
    and isinstance(statement, str)
    and ("MATCH" in statement or "MERGE" in statement)
} | {f"LINEAGE_{direction.upper()}": lineage_statement(direction, 50) for direction in ("up", "down", "both")}

PARAMS: dict[str, Any] = {
    "tenant": "t",
    "id": "v",
    "ids": ["v"],
    "other": "w",
    "version_id": "v",
    "release_id": "r",
    "form_key": "f",
    "form_keys": ["f"],
    "system_key": "s",
    "version": "1.0",
    "after": "",
    "after_system": "",
    "after_number": 0,
    "after_distance": -1,
    "limit": 50,
    "q": "benefit",
    "bound": 2000,
    "pairs": [{"child": "v", "parent": "w", "form_key": "f", "content_hash": "h"}],
    "published": [{"id": "v", "rev": 1, "is_latest": True, "pin_count": 0}],
    "retention_s": 60.0,
}


def label_scans(plan: dict[str, Any]) -> list[str]:
    """The growing labels a plan scans whole (its NodeByLabelScan and AllNodesScan operators)."""
    found = []
    operator = plan["operatorType"].split("@")[0]
    details = plan.get("args", {}).get("Details", "")
    if operator == "AllNodesScan":
        found.append("all nodes")
    if operator == "NodeByLabelScan":
        label = details.rsplit(":", 1)[-1].strip()
        if label in GROWING:
            found.append(label)
    for child in plan.get("children", []):
        found.extend(label_scans(child))
    return found


@pytest.mark.parametrize("name", sorted(set(STATEMENTS) - set(WHOLE_GRAPH)))
async def test_the_statement_reads_no_growing_label_whole(graph: Graph, name: str) -> None:
    result = await graph.run("EXPLAIN " + STATEMENTS[name], **PARAMS)  # type: ignore[arg-type]
    assert result.summary.plan is not None
    assert label_scans(result.summary.plan) == [], f"{name} scans every node of a growing label"


@pytest.mark.parametrize("name", sorted(WHOLE_GRAPH))
async def test_a_whole_graph_statement_is_one_that_does_scan(graph: Graph, name: str) -> None:
    result = await graph.run("EXPLAIN " + STATEMENTS[name], **PARAMS)  # type: ignore[arg-type]
    assert result.summary.plan is not None
    assert label_scans(result.summary.plan), f"{name} no longer scans: take it off WHOLE_GRAPH"

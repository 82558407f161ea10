"""Reconcile and reindex on the real stack: Neo4j of the test run, Qdrant Edge in a tmp dir, real model."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.formversions.reconcile import DriftCounts, IndexReconciler, PointRef
from app.formversions.schemas import FormVersionCreate
from app.formversions.service import FormVersionProcessor
from app.indexing import IS_LATEST, PIN_COUNT, OutboxRelay
from graph.database import Graph
from graph.forms import FormVersionRepository, LayoutInventory, LayoutOutbox
from graph.tenants import TenantRepository
from vectors.edge import EdgeLayoutIndex
from vectors.embedder import Embedder
from vectors.index import LayoutPoint

pytestmark = pytest.mark.anyio

REVISIONS = "nav-formio/test-forms-revisions"
CLEAN = DriftCounts(missing=0, orphaned=0, stale=0)


@dataclass
class Stack:
    """The write path (indexed or not) and the reconciler, over one graph and one index."""

    graph: Graph
    index: EdgeLayoutIndex
    embedder: Embedder
    relay: OutboxRelay
    reconciler: IndexReconciler
    corpora: Path

    def processor(self, *, indexing: bool = True) -> FormVersionProcessor:
        return FormVersionProcessor(
            versions=FormVersionRepository(self.graph),
            relay=self.relay if indexing else None,
            index=self.index,
        )

    async def tenant(self) -> str:
        return (await TenantRepository(self.graph).create(f"reconcile-{uuid.uuid4().hex[:8]}")).id

    async def post(
        self, tenant: str, form_key: str, form: str, revision: int, *, indexing: bool = True
    ) -> str:
        """Post one corpus revision as the next version of form_key; returns the version id."""
        path = sorted((self.corpora / REVISIONS / form).glob("*.json"))[revision]
        body = FormVersionCreate(definition=json.loads(path.read_text()))
        created = await self.processor(indexing=indexing).ingest(tenant=tenant, form_key=form_key, body=body)
        assert created.created
        return created.id

    async def orphan(self, tenant: str) -> str:
        """A point for an id no version has, as left by a graph transaction that never committed."""
        point_id = str(uuid.uuid4())
        vector = self.embedder.encode(["Page Ghost: text Never committed"])[0]
        payload = {"version_id": point_id, "form_key": "ghost", "number": 1, "content_hash": "sha256:0"}
        self.index.upsert([LayoutPoint(id=point_id, tenant=tenant, vector=vector, payload=payload)])
        return point_id

    def corrupt(self, tenant: str, version_id: str) -> None:
        """Upsert the version's point again with another content hash: a stale point."""
        [point] = self.index.get(tenant, [version_id], with_vectors=True)
        payload = {**point.payload, "content_hash": "sha256:outdated"}
        self.index.upsert([LayoutPoint(id=version_id, tenant=tenant, vector=point.vector, payload=payload)])


@pytest.fixture
async def stack(graph: Graph, index: EdgeLayoutIndex, embedder: Embedder, corpora: Path) -> Stack:
    relay = OutboxRelay(outbox=LayoutOutbox(graph), index=index, embedder=embedder)
    reconciler = IndexReconciler(
        inventory=LayoutInventory(graph), index=index, relay=relay, page_size=2, repair_batch=2
    )
    return Stack(graph, index, embedder, relay, reconciler, corpora)


async def pending_ids(stack: Stack, tenant: str) -> set[str]:
    versions = await LayoutInventory(stack.graph).fingerprints(tenant, after="", limit=1000)
    return {version.id for version in versions if version.pending}


async def test_reconcile_reports_and_repairs_each_kind_of_drift(stack: Stack) -> None:
    tenant = await stack.tenant()
    first = await stack.post(tenant, "activities", "activities", 0)
    second = await stack.post(tenant, "activities", "activities", 1)
    await stack.post(tenant, "accordion", "accordion", 0)
    never_indexed = await stack.post(tenant, "activities", "activities", 2, indexing=False)
    ghost = await stack.orphan(tenant)
    stack.corrupt(tenant, first)
    assert stack.index.get(tenant, [never_indexed]) == []
    assert await pending_ids(stack, tenant) == {never_indexed}

    # The version never indexed is a child: its parent's point still says it is the latest.
    drift = DriftCounts(missing=1, orphaned=1, stale=1, stale_context=1)
    dry = await stack.reconciler.reconcile(tenant, dry_run=True)
    assert (dry.before, dry.after) == (drift, None)
    assert (dry.versions, dry.points) == (4, 4)
    assert [p.id for p in stack.index.get(tenant, [ghost])] == [ghost], "a dry run must not repair"

    report = await stack.reconciler.reconcile(tenant)
    assert report.before == drift
    assert report.after == CLEAN
    assert stack.index.get(tenant, [ghost]) == []
    [repaired] = stack.index.get(tenant, [first])
    [stored] = await LayoutInventory(stack.graph).layouts([first])
    assert repaired.payload["content_hash"] == stored.content_hash != "sha256:outdated"
    [indexed] = stack.index.get(tenant, [never_indexed])
    assert indexed.payload["number"] == 3
    assert (indexed.payload[IS_LATEST], indexed.payload[PIN_COUNT]) == (True, 0)
    [parent] = stack.index.get(tenant, [second])
    assert (parent.payload[IS_LATEST], parent.payload[PIN_COUNT]) == (False, 0)
    assert await pending_ids(stack, tenant) == set()
    assert stack.index.count(tenant) == 4

    again = await stack.reconciler.reconcile(tenant)
    assert (again.before, again.after) == (CLEAN, CLEAN)


async def test_a_tenant_scoped_run_touches_only_that_tenant(stack: Stack) -> None:
    tenant_a, tenant_b = await stack.tenant(), await stack.tenant()
    for tenant in (tenant_a, tenant_b):
        indexed = await stack.post(tenant, "accordion", "accordion", 0)
        await stack.post(tenant, "accordion", "accordion", 1, indexing=False)
        stack.corrupt(tenant, indexed)
    ghost_b = await stack.orphan(tenant_b)
    await stack.orphan(tenant_a)

    report_a = await stack.reconciler.reconcile(tenant_a)
    assert (report_a.before, report_a.after) == (DriftCounts(missing=1, orphaned=1, stale=1), CLEAN)

    untouched_b = await stack.reconciler.reconcile(tenant_b, dry_run=True)
    assert untouched_b.before == DriftCounts(missing=1, orphaned=1, stale=1)
    assert [p.id for p in stack.index.get(tenant_b, [ghost_b])] == [ghost_b]
    assert len(await pending_ids(stack, tenant_b)) == 1

    report_b = await stack.reconciler.reconcile(tenant_b)
    assert (report_b.before, report_b.after) == (DriftCounts(missing=1, orphaned=1, stale=1), CLEAN)
    assert stack.index.count(tenant_a) == stack.index.count(tenant_b) == 2


async def test_reindex_restores_a_wiped_index(stack: Stack) -> None:
    tenant, other = await stack.tenant(), await stack.tenant()
    for revision in range(3):
        await stack.post(tenant, "activities", "activities", revision)
    await stack.post(tenant, "accordion", "accordion", 0)
    await stack.post(tenant, "conditional-page", "conditional-page", 0)
    pending = await stack.post(tenant, "accordion", "accordion", 1, indexing=False)
    await stack.post(other, "accordion", "accordion", 0)
    query = stack.embedder.encode(["Page Accordion: accordion Details, text Your name"])[0]
    before = [hit.id for hit in stack.index.search(tenant, query, k=3, exact=True)]
    other_before = stack.index.search(other, query, k=1, exact=True)

    stored = [point_id for point_id, _ in stack.index.scroll_ids(tenant)]
    stack.index.delete(tenant, stored)
    assert stack.index.count(tenant) == 0

    assert await stack.reconciler.reindex(tenant) == 6
    assert stack.index.count(tenant) == 6
    assert await pending_ids(stack, tenant) == set()
    assert [p.id for p in stack.index.get(tenant, [pending])] == [pending]
    after = [hit.id for hit in stack.index.search(tenant, query, k=4, exact=True)]
    assert [point_id for point_id in after if point_id != pending][:3] == before
    assert stack.index.search(other, query, k=1, exact=True) == other_before
    report = await stack.reconciler.reconcile(tenant, dry_run=True)
    assert report.before == CLEAN


async def test_a_point_stored_under_another_tenant_is_found_and_moved_back(stack: Stack) -> None:
    owner, intruder = await stack.tenant(), await stack.tenant()
    version_id = await stack.post(owner, "accordion", "accordion", 0)
    [point] = stack.index.get(owner, [version_id], with_vectors=True)
    stack.index.delete(owner, [version_id])
    payload = {key: value for key, value in point.payload.items() if key != "tenant"}
    stack.index.upsert([LayoutPoint(id=version_id, tenant=intruder, vector=point.vector, payload=payload)])

    everything = await stack.reconciler.survey(None)
    assert [p for p in everything.stale if p.id == version_id] == [PointRef(version_id, intruder)]
    assert version_id not in {p.id for p in everything.orphaned}

    intruder_report = await stack.reconciler.reconcile(intruder)
    assert (intruder_report.before, intruder_report.after) == (DriftCounts(0, 1, 0), CLEAN)
    owner_report = await stack.reconciler.reconcile(owner)
    assert (owner_report.before, owner_report.after) == (DriftCounts(1, 0, 0), CLEAN)
    assert [p.id for p in stack.index.get(owner, [version_id])] == [version_id]
    assert stack.index.count(intruder) == 0

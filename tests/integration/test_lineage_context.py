"""Lineage context in the index: the outbox keeps each point's is_latest and pin_count level with the graph.

Real stack: the Neo4j of the test run, Qdrant Edge in a tmp dir, the real model.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path

import pytest

from app.formversions.schemas import FormVersionCreate
from app.formversions.service import FormVersionProcessor
from app.indexing import CONTEXT_REV, IS_LATEST, PIN_COUNT, OutboxRelay, context_payload
from app.similarity.service import SimilarityService
from graph.database import Graph
from graph.forms import FormVersionRepository, LayoutInventory, LayoutOutbox, LineageContext
from graph.releases import NewRelease, ReleaseRepository
from graph.similarity import SimilarityRepository
from graph.tenants import TenantRepository
from vectors.edge import EdgeLayoutIndex
from vectors.embedder import Embedder
from vectors.index import LayoutPoint

pytestmark = pytest.mark.anyio

REVISIONS = "nav-formio/test-forms-revisions"


@pytest.fixture
def relay(graph: Graph, index: EdgeLayoutIndex, embedder: Embedder) -> OutboxRelay:
    return OutboxRelay(outbox=LayoutOutbox(graph), index=index, embedder=embedder)


async def new_tenant(graph: Graph) -> str:
    return (await TenantRepository(graph).create(f"context-{uuid.uuid4().hex[:8]}")).id


async def post(
    graph: Graph, relay: OutboxRelay | None, corpora: Path, tenant: str, form: str, revision: int
) -> str:
    """Post a corpus revision as the next version of its form (child of the latest); indexed now when
    a relay is given, else left in the outbox."""
    path = sorted((corpora / REVISIONS / form).glob("*.json"))[revision]
    processor = FormVersionProcessor(versions=FormVersionRepository(graph), relay=relay, index=None)
    body = FormVersionCreate(definition=json.loads(path.read_text()))
    created = await processor.ingest(tenant=tenant, form_key=form, body=body)
    assert created.created
    return created.id


def context(index: EdgeLayoutIndex, tenant: str, version_id: str) -> tuple[object, object]:
    [point] = index.get(tenant, [version_id])
    return point.payload.get(IS_LATEST), point.payload.get(PIN_COUNT)


async def open_context_entries(graph: Graph, tenant: str) -> set[str]:
    versions = await LayoutInventory(graph).fingerprints(tenant, after="", limit=1000)
    return {version.id for version in versions if version.context_pending}


async def test_the_relay_publishes_lineage_and_pins_into_the_points(
    graph: Graph, index: EdgeLayoutIndex, relay: OutboxRelay, corpora: Path
) -> None:
    tenant = await new_tenant(graph)
    first = await post(graph, None, corpora, tenant, "activities", 0)
    second = await post(graph, None, corpora, tenant, "activities", 1)
    assert {first, second} <= await open_context_entries(graph, tenant)

    await relay.drain()
    assert context(index, tenant, first) == (False, 0)
    assert context(index, tenant, second) == (True, 0)
    assert not {first, second} & await open_context_entries(graph, tenant)

    for version in ("1", "2"):
        release = NewRelease(
            id=str(uuid.uuid4()),
            system_key="benefits",
            version=version,
            pins={"activities": second},
            parents=[],
        )
        await ReleaseRepository(graph).create(tenant, release)
    assert second in await open_context_entries(graph, tenant)
    await relay.drain()
    assert context(index, tenant, second) == (True, 2)
    assert context(index, tenant, first) == (False, 0)


async def test_a_context_that_changed_while_published_stays_in_the_outbox(
    graph: Graph, index: EdgeLayoutIndex, relay: OutboxRelay, corpora: Path
) -> None:
    tenant = await new_tenant(graph)
    first = await post(graph, relay, corpora, tenant, "accordion", 0)
    assert context(index, tenant, first) == (True, 0)
    outbox = LayoutOutbox(graph)
    read_before = await outbox.context_of([first])

    # A child arrives after the relay read the context and before it closed the entry.
    child = await post(graph, None, corpora, tenant, "accordion", 1)
    await outbox.mark_context_published(read_before)
    assert first in await open_context_entries(graph, tenant)

    await relay.drain()
    assert context(index, tenant, first) == (False, 0)
    assert context(index, tenant, child) == (True, 0)
    assert not {first, child} & await open_context_entries(graph, tenant)


async def test_a_context_read_while_a_write_was_applied_is_published_again(
    graph: Graph, index: EdgeLayoutIndex, relay: OutboxRelay, corpora: Path
) -> None:
    tenant = await new_tenant(graph)
    first = await post(graph, relay, corpora, tenant, "components", 0)
    await post(graph, None, corpora, tenant, "components", 1)
    outbox = LayoutOutbox(graph)
    [now] = await outbox.context_of([first])
    assert not now.is_latest
    # What a read without locks can see while the child's commit is applied: the new revision, not yet the
    # child. Published and closed, it would stay in the point: nothing would publish the context again.
    torn = dataclasses.replace(now, is_latest=True)
    index.set_payloads(tenant, {first: context_payload(torn)}, newer=CONTEXT_REV)
    await outbox.mark_context_published([torn])
    assert first in await open_context_entries(graph, tenant)

    await relay.drain()
    assert context(index, tenant, first) == (False, 0)
    assert first not in await open_context_entries(graph, tenant)


class StopsBeforePublishing(LayoutOutbox):
    """An outbox whose relay is stopped (as by `kill -9`) after it upserted and before it read any context."""

    async def context_of(self, ids: list[str]) -> list[LineageContext]:
        raise RuntimeError("stopped before publishing")


async def test_a_layout_indexed_again_keeps_the_context_published_since_it_was_read(
    graph: Graph, index: EdgeLayoutIndex, relay: OutboxRelay, embedder: Embedder, corpora: Path
) -> None:
    tenant = await new_tenant(graph)
    first = await post(graph, None, corpora, tenant, "attachments", 0)
    # A second indexer (the background relay, beside the request that wrote it) read the entry before
    # the request indexed the layout and published its context.
    read_early = await LayoutInventory(graph).layouts([first])
    await post(graph, relay, corpora, tenant, "attachments", 1)
    await relay.drain()
    assert context(index, tenant, first) == (False, 0)
    assert first not in await open_context_entries(graph, tenant)

    late = OutboxRelay(outbox=StopsBeforePublishing(graph), index=index, embedder=embedder)
    with pytest.raises(RuntimeError, match="stopped before publishing"):
        await late.index_layouts(read_early)

    # Nothing would publish the context again: the entry is closed, so the point must still hold it.
    assert context(index, tenant, first) == (False, 0)


async def test_a_context_read_before_a_write_never_overwrites_the_one_published_after_it(
    graph: Graph, index: EdgeLayoutIndex, relay: OutboxRelay, corpora: Path
) -> None:
    tenant = await new_tenant(graph)
    first = await post(graph, relay, corpora, tenant, "radio", 0)
    [read_before] = await LayoutOutbox(graph).context_of([first])
    await post(graph, relay, corpora, tenant, "radio", 1)
    assert context(index, tenant, first) == (False, 0)

    # A publisher that read before the child arrived comes in last: the point keeps the newer context.
    index.set_payloads(tenant, {first: context_payload(read_before)}, newer=CONTEXT_REV)
    assert read_before.is_latest
    assert context(index, tenant, first) == (False, 0)


async def test_a_write_through_an_open_index_publishes_its_parents_context_at_once(
    graph: Graph, index: EdgeLayoutIndex, relay: OutboxRelay, corpora: Path
) -> None:
    tenant = await new_tenant(graph)
    first = await post(graph, relay, corpora, tenant, "datagrid", 0)
    second = await post(graph, relay, corpora, tenant, "datagrid", 1)
    assert context(index, tenant, first) == (False, 0)
    assert context(index, tenant, second) == (True, 0)
    assert not {first, second} & await open_context_entries(graph, tenant)


async def test_hits_show_the_context_their_points_carry_and_the_graphs_when_they_carry_none(
    graph: Graph, index: EdgeLayoutIndex, relay: OutboxRelay, embedder: Embedder, corpora: Path
) -> None:
    tenant = await new_tenant(graph)
    first = await post(graph, relay, corpora, tenant, "conditional-page", 0)
    second = await post(graph, relay, corpora, tenant, "conditional-page", 1)
    other = await post(graph, relay, corpora, tenant, "radio", 0)
    similarity = SimilarityService(repository=SimilarityRepository(graph), index=index, embedder=embedder)

    # A point's own context is what a hit shows: here one the graph never had.
    index.set_payloads(tenant, {other: {IS_LATEST: False, PIN_COUNT: 7}})
    # A point stored before points carried context (or whose context is being published).
    [point] = index.get(tenant, [first], with_vectors=True)
    bare = {key: value for key, value in point.payload.items() if key not in (IS_LATEST, PIN_COUNT, "tenant")}
    index.upsert([LayoutPoint(id=first, tenant=tenant, vector=point.vector, payload=bare)])

    hits = {hit.version_id: hit for hit in await similarity.similar(tenant=tenant, version_id=second, k=5)}
    assert set(hits) == {first, other}
    assert (hits[other].is_latest, hits[other].pin_count) == (False, 7)
    assert (hits[first].is_latest, hits[first].pin_count, hits[first].number) == (False, 0, 1)

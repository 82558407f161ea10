"""Many versions in one write (FormVersionRepository.create_many), against the real Neo4j of the test run.

A bulk ingest hands it a form's revision chain in order, each version deriving from the one before:
whatever the list holds, the graph must end as the same versions written one at a time with `create`
would leave it (numbers, lineage edges, repeats settled to the version already holding the content,
one event per created version), or, when a parent is nowhere, unchanged.
"""

from __future__ import annotations

import uuid

import pytest

from graph.database import Graph
from graph.errors import ParentsNotFound
from graph.events import EventLog
from graph.forms import FormVersionRepository, NewVersion, ParentDiff, StoredVersion
from graph.tenants import TenantRepository

pytestmark = pytest.mark.anyio


def version(form_key: str, content: str, parent: NewVersion | StoredVersion | None = None) -> NewVersion:
    title = f"{form_key} {content}"
    return NewVersion(
        id=str(uuid.uuid4()),
        form_key=form_key,
        content_hash=f"hash-{content}",
        definition={"key": form_key, "title": title, "layout": []},
        source_format="native",
        title=title,
        layout_text=title,
        field_count=0,
        parents=[] if parent is None else [ParentDiff(parent.id, f"from {parent.id}")],
    )


def chain(form_key: str, contents: list[str], start: StoredVersion | None = None) -> list[NewVersion]:
    """Versions of the contents, each deriving from the one before; the first from `start`, if given."""
    written: list[NewVersion] = []
    for content in contents:
        written.append(version(form_key, content, written[-1] if written else start))
    return written


async def new_tenant(graph: Graph) -> str:
    return (await TenantRepository(graph).create(f"writes-{uuid.uuid4().hex[:8]}")).id


async def lineage(
    repository: FormVersionRepository, tenant: str, form_key: str
) -> list[tuple[int, str, list[int]]]:
    """Each version of the form as (number, content hash, parents' numbers), by number."""
    versions = await repository.list_versions(tenant, form_key, after=0, limit=1000)
    number_of = {stored.id: stored.number for stored in versions}
    return [
        (stored.number, stored.content_hash, sorted(number_of[parent.id] for parent in stored.parents))
        for stored in versions
    ]


async def created_events(graph: Graph, tenant: str) -> list[tuple[str, int]]:
    events = await EventLog(graph).after(tenant, 0, limit=1000)
    return [(e.payload["form_key"], e.payload["number"]) for e in events if e.type == "version.created"]


async def test_a_chain_written_at_once_is_numbered_and_linked_as_one_written_version_by_version(
    graph: Graph,
) -> None:
    repository = FormVersionRepository(graph)
    at_once, one_by_one = await new_tenant(graph), await new_tenant(graph)
    contents = [f"c{i}" for i in range(40)]
    # Two forms interleaved, and the first already holding a version the chain continues from.
    for tenant in (at_once, one_by_one):
        await repository.create(tenant, version("alpha", "seed"))
    seeds = {
        tenant: await repository.find_by_content(tenant, "alpha", "hash-seed")
        for tenant in (at_once, one_by_one)
    }

    def interleaved(tenant: str) -> list[NewVersion]:
        alpha, beta = chain("alpha", contents, start=seeds[tenant]), chain("beta", contents[:25])
        mixed = [new for pair in zip(alpha, beta, strict=False) for new in pair]
        return mixed + alpha[len(beta) :]

    batch = interleaved(at_once)
    results = await repository.create_many(at_once, batch)
    for new in interleaved(one_by_one):
        await repository.create(one_by_one, new)

    assert [created for _, created in results] == [True] * len(batch)
    assert [stored.form_key for stored, _ in results] == [new.form_key for new in batch]
    assert [stored.id for stored, _ in results] == [new.id for new in batch]
    for form_key in ("alpha", "beta"):
        written = await lineage(repository, at_once, form_key)
        assert written == await lineage(repository, one_by_one, form_key)
        assert [number for number, _, _ in written] == list(range(1, len(written) + 1))
        assert all(parents == [number - 1] for number, _, parents in written[1:] if number > 1)
    assert sorted(await created_events(graph, at_once)) == sorted(await created_events(graph, one_by_one))
    form = await repository.get_form(at_once, "alpha")
    assert form is not None
    assert (form.version_count, form.latest_id) == (41, batch[-1].id)


async def test_a_content_repeated_in_the_list_is_written_once_and_its_children_derive_from_the_first(
    graph: Graph,
) -> None:
    repository = FormVersionRepository(graph)
    tenant = await new_tenant(graph)
    first = version("form", "a")
    middle = version("form", "b", first)
    repeat = version("form", "a", middle)  # the same content as `first`: it is `first`
    child = version("form", "c", repeat)

    results = await repository.create_many(tenant, [first, middle, repeat, child])

    assert [(stored.id, created) for stored, created in results] == [
        (first.id, True),
        (middle.id, True),
        (first.id, False),
        (child.id, True),
    ]
    assert await lineage(repository, tenant, "form") == [
        (1, "hash-a", []),
        (2, "hash-b", [1]),
        (3, "hash-c", [1]),
    ]
    assert len(await created_events(graph, tenant)) == 3


async def test_a_version_the_graph_already_holds_stands_for_its_copy_in_the_list(graph: Graph) -> None:
    repository = FormVersionRepository(graph)
    tenant = await new_tenant(graph)
    stored, _ = await repository.create(tenant, version("form", "a"))
    copy = version("form", "a")  # another id for content the form already holds
    child = version("form", "b", copy)

    results = await repository.create_many(tenant, [copy, child])

    assert [(written.id, created) for written, created in results] == [(stored.id, False), (child.id, True)]
    assert [parent.id for parent in results[1][0].parents] == [stored.id]
    assert await lineage(repository, tenant, "form") == [(1, "hash-a", []), (2, "hash-b", [1])]


async def test_a_parent_that_is_nowhere_fails_the_write_and_leaves_the_graph_unchanged(graph: Graph) -> None:
    repository = FormVersionRepository(graph)
    tenant = await new_tenant(graph)
    before = chain("form", ["a", "b"])
    orphan = version("form", "c")
    orphan.parents.append(ParentDiff(str(uuid.uuid4()), "from a version never written"))

    with pytest.raises(ParentsNotFound) as raised:
        await repository.create_many(tenant, [*before, orphan])
    with pytest.raises(ParentsNotFound):
        await repository.create(tenant, version("other", "x", orphan))

    assert raised.value.missing == [orphan.parents[0].id]
    assert await repository.get_form(tenant, "form") is None
    assert await repository.get_form(tenant, "other") is None
    assert await created_events(graph, tenant) == []

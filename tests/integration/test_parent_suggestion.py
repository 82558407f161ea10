"""Parent suggestion and family retrieval on the real corpora (real Neo4j, Qdrant Edge, the real model).

Every revision of a corpus is ingested in commit-date order, each under a fresh form key and without
lineage, so neither the form nor the order gives the answer away. Each non-first revision then asks for
its parent among everything ingested before it; the manifest's `prev_file` is the truth. The figures
are printed (run with -s) next to the baseline "the earlier version whose field labels overlap most".
The corpus revisions, the fresh-form ingest and the baseline are those of bench/bench_parent_suggestion.py,
so the test and the bench measure the same thing.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from app.formversions.service import FormVersionProcessor
from app.similarity.schemas import LayoutFilters
from app.similarity.service import SimilarityService
from bench.bench_parent_suggestion import (
    Figures,
    Revision,
    baseline_ranking,
    count_out_of_reach,
    index_ingested,
    ingest_fresh,
    revisions_in_commit_order,
)
from graph.database import Graph
from graph.forms import FormVersionRepository
from graph.similarity import SimilarityRepository
from graph.tenants import TenantRepository
from vectors.edge import EdgeLayoutIndex
from vectors.embedder import Embedder

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@dataclass(frozen=True)
class Expected:
    # Strict: the suggestion's own version is the parent (the definition).
    top1: float
    top3: float
    # Which strict figures beat the label-Jaccard baseline's in the same run.
    beats_baseline: Literal["both", "top-1", "neither"]
    # Identical layouts as one: the parent is the suggestion or among its same-layout versions.
    same_top1: float
    same_top3: float
    # Both of those beat the baseline's with identical layouts as one, in the same run.
    as_one_beats_baseline: bool
    # Share of chains whose last definition finds another version of its own chain first.
    family: float


# Issue 5's targets: top-1 >= 0.80, top-3 >= 0.95, and beating the label-Jaccard baseline in the same run.
# Suggested-parents returns one suggestion per distinct layout. That cannot change the strict top-1, but
# the strict top-3 moves: a parent with an identical newer copy now sits in that copy's same_layout instead
# of taking a place of its own. Measured with this file (-s, ASK_EVERY 2), strict before -> after the
# grouping, then identical layouts as one (the baseline likewise, by the corpus's layout hashes):
#   NAV 0.889/0.961 -> 0.889/0.954 (baseline 0.765/0.810); as one 0.895/0.961
#   VA  0.887/0.928 -> 0.887/0.928 (baseline 0.910/0.939); as one 0.908/0.968 (baseline 0.942/0.980)
#   BC  0.831/0.912 -> 0.831/0.889 (baseline 0.821/0.909); as one 0.855/0.922 (baseline 0.845/0.916)
# So BC's strict top-1 still beats the baseline, its strict top-3 no longer does; as one, BC beats it and
# VA does not. VA and BC miss top-3 0.95 strictly (as one, VA reaches it): versions of sibling forms sharing
# more structure than the parent, reverts to an older version of the chain, rewrites (some parents are not
# among the closest layouts at all).
# Family retrieval measured: NAV 27/31, VA 26/36 (28/36 in the last run), BC 48/88 (46-50/88); most misses
# have an identical or near-identical copy in another chain (the embedding sees only the start of a text).
EXPECTED = {
    "nav-formio": Expected(
        top1=0.80,
        top3=0.95,
        beats_baseline="both",
        same_top1=0.89,
        same_top3=0.96,
        as_one_beats_baseline=True,
        family=0.85,
    ),
    "va-jsonschema": Expected(
        top1=0.87,
        top3=0.91,
        beats_baseline="neither",
        same_top1=0.90,
        same_top3=0.96,
        as_one_beats_baseline=False,
        family=0.70,
    ),
    "bcgov-fla-surveyjs": Expected(
        top1=0.80,
        top3=0.88,
        beats_baseline="top-1",
        same_top1=0.85,
        same_top3=0.92,
        as_one_beats_baseline=True,
        family=0.50,
    ),
}
CORPORA = tuple(EXPECTED)
# Parents are asked for the chains at every ASK_EVERY-th position of the sorted chain keys (the whole
# corpus is still ingested, so every earlier revision is a candidate): keeps a corpus within minutes.
ASK_EVERY = 2


@pytest.mark.parametrize("corpus", CORPORA)
async def test_parent_suggestion_and_family_retrieval(
    corpus: str, graph: Graph, index: EdgeLayoutIndex, embedder: Embedder, corpora: Path
) -> None:
    started = time.perf_counter()
    revisions = revisions_in_commit_order(corpora / corpus)
    tenants = TenantRepository(graph)
    tenant = (await tenants.create(f"parents-{uuid.uuid4().hex[:8]}")).id
    twin = (await tenants.create(f"parents-twin-{uuid.uuid4().hex[:8]}")).id
    processor = FormVersionProcessor(versions=FormVersionRepository(graph), relay=None, index=None)
    ids = await ingest_fresh(processor, tenant, revisions)
    asked_chains = sorted({revision.chain for revision in revisions})[::ASK_EVERY]
    asked_set = set(asked_chains)
    last_of_chain = {revision.chain: revision for revision in revisions}
    # The twin tenant holds exact copies of the definitions the family queries search with: the most
    # tempting cross-tenant hits there are. None may ever come back to `tenant`.
    twin_ids = set((await ingest_fresh(processor, twin, [last_of_chain[c] for c in asked_chains])).values())
    written_s = time.perf_counter() - started
    await index_ingested(graph, index, embedder)
    ingested_s = time.perf_counter() - started

    service = SimilarityService(repository=SimilarityRepository(graph), index=index, embedder=embedder)
    file_of = {version_id: file for file, version_id in ids.items()}
    # The corpus's own layout hashes (one form key for all), independent of the service's.
    layout_of = {ids[revision.file]: revision.layout for revision in revisions if revision.file in ids}
    figures = Figures()
    foreign_hits = 0
    questions = []
    for position, revision in enumerate(revisions):
        if revision.chain not in asked_set or revision.parent_file not in ids:
            continue
        questions.append((position, revision))
        suggested = await service.suggested_parents(tenant=tenant, version_id=ids[revision.file], k=3)
        for hit in suggested:
            foreign_hits += sum(v in twin_ids for v in (hit.version_id, *hit.same_layout))
            # Only byte-identical layouts are grouped. (Not every identical document is: a format
            # without a title takes the form key as title, so such copies differ in their title.)
            assert all(layout_of[v] == layout_of[hit.version_id] for v in hit.same_layout)
        figures.add(suggested, revision, ids, layout_of, baseline_ranking(revisions, position))

    parents_s = time.perf_counter() - started - ingested_s
    count_out_of_reach(figures, revisions, questions, ids, index, tenant)
    chain_of = {revision.file: revision.chain for revision in revisions}
    chains: dict[str, list[Revision]] = {}
    for revision in revisions:
        chains.setdefault(revision.chain, []).append(revision)
    missed = []
    family_asked = tied_first = 0
    family_first = 0.0
    for chain in asked_chains:
        members = chains[chain]
        if len(members) < 2:
            continue
        last = members[-1]
        hits = await service.search(
            tenant=tenant,
            text=None,
            definition=last.definition,
            source_format=None,
            k=20,  # enough to hold a whole tie for first place
            filters=LayoutFilters(),
        )
        foreign_hits += sum(hit.version_id in twin_ids for hit in hits)
        others = [hit for hit in hits if hit.version_id != ids[last.file]]
        family_asked += 1
        # Hits of one score (identical layouts in other chains) come in id order, and ids are random:
        # a tie for first place counts as the share of its hits that are of the chain, what a random
        # order of the tie finds on average, so the figure does not change from run to run.
        first = [hit for hit in others if hit.score == others[0].score]
        own = sum(chain_of[file_of[hit.version_id]] == last.chain for hit in first)
        family_first += own / len(first) if first else 0
        tied_first += len(first) > 1
        if own < len(first):
            missed.append(
                f"{last.chain} -> {chain_of[file_of[first[0].version_id]]}"
                if own == 0
                else f"{last.chain} (tied {own}/{len(first)})"
            )

    print(
        f"\n{corpus}: {len(revisions)} revisions, {figures.asked} with a parent, "
        f"{len(asked_chains)} chains asked; graph writes {written_s:.0f}s, "
        f"embedding {ingested_s - written_s:.0f}s, "
        f"parent queries {parents_s:.0f}s, total {time.perf_counter() - started:.0f}s\n"
        f"{figures.report()}\n{figures.target_gap()}\n"
        f"  family retrieval   {family_first:.1f}/{family_asked} chains find another "
        f"version of their own chain first ({tied_first} with a tie for first, counted by share)\n"
        f"  family misses      {', '.join(missed) or 'none'}\n"
        f"  cross-tenant hits  {foreign_hits}"
    )
    assert figures.asked > 0
    assert foreign_hits == 0
    assert figures.not_identical == 0
    expected = EXPECTED[corpus]
    assert figures.rate(figures.top1) >= expected.top1
    assert figures.rate(figures.top3) >= expected.top3
    assert figures.rate(figures.same_top1) >= expected.same_top1
    assert figures.rate(figures.same_top3) >= expected.same_top3
    if expected.beats_baseline != "neither":
        assert figures.top1 > figures.baseline_top1
    if expected.beats_baseline == "both":
        assert figures.top3 >= figures.baseline_top3
    if expected.as_one_beats_baseline:
        assert figures.same_top1 > figures.same_baseline_top1
        assert figures.same_top3 >= figures.same_baseline_top3
    assert family_first >= expected.family * family_asked


WIDENING_BOUND = 5
WIDENING_REVISIONS = 60


async def test_a_version_with_many_versions_on_both_sides_gets_the_suggestions_a_filter_gives(
    graph: Graph, index: EdgeLayoutIndex, embedder: Embedder, corpora: Path
) -> None:
    # With a bound of 5, a version with more than 5 versions created before it and after it cannot name
    # either side in the vector filter: the service searches wider and keeps the earlier hits instead.
    # 60 layouts stay under Qdrant Edge's indexing threshold, so both ways search exactly and must agree.
    revisions = revisions_in_commit_order(corpora / "nav-formio")[:WIDENING_REVISIONS]
    tenant = (await TenantRepository(graph).create(f"widening-{uuid.uuid4().hex[:8]}")).id
    processor = FormVersionProcessor(versions=FormVersionRepository(graph), relay=None, index=None)
    ids = await ingest_fresh(processor, tenant, revisions)
    await index_ingested(graph, index, embedder)
    repository = SimilarityRepository(graph)
    named = SimilarityService(repository=repository, index=index, embedder=embedder)
    widening = SimilarityService(
        repository=repository, index=index, embedder=embedder, around_bound=WIDENING_BOUND
    )
    in_order = list(dict.fromkeys(ids[revision.file] for revision in revisions))
    both_sides_long = 0
    for position, version_id in enumerate(in_order):
        around = await repository.versions_around(tenant, version_id, bound=WIDENING_BOUND)
        assert around is not None
        both_sides_long += around.before is None and around.not_before is None
        expected = await named.suggested_parents(tenant=tenant, version_id=version_id, k=3)
        assert await widening.suggested_parents(tenant=tenant, version_id=version_id, k=3) == expected
        assert (expected == []) == (position == 0)
    assert both_sides_long >= len(in_order) - 2 * (WIDENING_BOUND + 1)

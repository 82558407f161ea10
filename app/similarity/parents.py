"""Parent suggestions: which earlier versions a version ingested without lineage was most likely made from."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from graph.similarity import HitContext, StoredPrints
from ingest.native import import_native
from ingest.prints import LayoutPrints, layout_prints, stored_prints
from vectors.index import LayoutHit

# Candidates the vector query hands to the structural re-rank. Measured on the real corpora, the true
# parent is among the 30 closest earlier layouts in 95-100% of cases (among the 100 closest: 97-100%),
# but a pool of 100 ranked no better and cost about 3x per query on VA's large definitions.
PARENT_POOL = 30
# Weight of the field-key overlap next to the node overlap (1). Keys are the stable names a form's data
# is stored under: a version of another form with the same layout usually names its fields differently.
FIELD_KEY_WEIGHT = 0.25
# Cosine orders candidates whose structural scores tie; closer than this, embeddings of near-identical
# layouts differ by noise, and the newer candidate goes first.
COSINE_DECIMALS = 2

T = TypeVar("T")


def prints_of(stored: StoredPrints) -> LayoutPrints | None:
    """The prints a version was stored with; computed from its definition for one stored without them
    (before they were kept), None when neither is there."""
    if stored.layout_nodes is not None and stored.layout_keys is not None and stored.layout_hash is not None:
        return stored_prints(stored.layout_nodes, stored.layout_keys, stored.layout_hash)
    if stored.definition is None:
        return None
    return layout_prints(import_native(stored.definition))


def jaccard(a: frozenset[T], b: frozenset[T]) -> float:
    """|a & b| / |a | b|, 0 for two empty sets."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def parent_overlap(target: LayoutPrints, candidate: LayoutPrints) -> float:
    """How much of the candidate the target kept, in [0, 1]: unchanged nodes, then shared field keys."""
    nodes = jaccard(target.nodes, candidate.nodes)
    keys = jaccard(target.field_keys, candidate.field_keys)
    return (nodes + FIELD_KEY_WEIGHT * keys) / (1 + FIELD_KEY_WEIGHT)


def rank_parents(
    target: LayoutPrints,
    hits: Sequence[LayoutHit],
    context: Mapping[str, HitContext],
    prints: Mapping[str, LayoutPrints],
) -> list[tuple[LayoutHit, float]]:
    """Candidates by structural overlap with the target, then cosine (2 decimals), then recency.

    A child is a small edit of its parent: it keeps more of its parent's nodes and field keys than of
    older ancestors or of other forms. Recency only orders candidates that tie on both scores (identical
    or near-identical layouts), so the order of ingestion never outweighs the content. Candidates
    without context or prints are left out.
    """
    scored: list[tuple[LayoutHit, float, HitContext]] = []
    for hit in hits:
        ctx, candidate = context.get(hit.id), prints.get(hit.id)
        if ctx is None or candidate is None:
            continue
        scored.append((hit, parent_overlap(target, candidate), ctx))
    scored.sort(
        key=lambda item: (round(item[1], 9), round(item[0].score, COSINE_DECIMALS), item[2].created_at),
        reverse=True,
    )
    return [(hit, overlap) for hit, overlap, _ in scored]


@dataclass(frozen=True, slots=True)
class LayoutSuggestion:
    """One distinct layout among ranked candidates: its likeliest version, then the other versions with it."""

    hit: LayoutHit
    overlap: float
    same_layout: list[LayoutHit] = field(default_factory=list)


def one_per_layout(
    ranked: Sequence[tuple[LayoutHit, float]], prints: Mapping[str, LayoutPrints]
) -> list[LayoutSuggestion]:
    """The ranked candidates grouped by layout hash, in the order of each layout's first candidate.

    Byte-identical layouts cannot be told apart by content: a user gains nothing from seeing each copy
    as a suggestion of its own.
    """
    groups: dict[str, LayoutSuggestion] = {}
    for hit, overlap in ranked:
        layout = prints[hit.id].layout
        group = groups.get(layout)
        if group is None:
            groups[layout] = LayoutSuggestion(hit=hit, overlap=overlap)
        else:
            group.same_layout.append(hit)
    return list(groups.values())

"""Parent suggestions: which earlier versions a version ingested without lineage was most likely made from."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from graph.similarity import HitContext
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


@dataclass(frozen=True, slots=True)
class LayoutPrints:
    """What the parent ranking compares of a definition: its layout nodes and its field keys."""

    nodes: frozenset[str]
    field_keys: frozenset[str]


def layout_fingerprints(definition: dict[str, Any]) -> frozenset[str]:
    """Each node of a (native) definition as a string of its own properties, children left out."""
    prints: set[str] = set()

    def walk(node: dict[str, Any], top: bool) -> None:
        own = {
            key: value
            for key, value in node.items()
            if not (top and key == "key")
            and not (isinstance(value, list) and value and all(isinstance(v, dict) for v in value))
        }
        prints.add(json.dumps(own, sort_keys=True, ensure_ascii=False, default=str))
        for value in node.values():
            if isinstance(value, list):
                for child in value:
                    if isinstance(child, dict):
                        walk(child, False)

    walk(definition, True)
    return frozenset(prints)


def field_keys(definition: dict[str, Any]) -> frozenset[str]:
    """The keys of the field nodes of a (native) definition, at any depth."""
    keys: set[str] = set()

    def walk(nodes: Sequence[Any]) -> None:
        for node in nodes:
            if not isinstance(node, dict):
                continue
            if node.get("node") == "field" and isinstance(node.get("key"), str):
                keys.add(node["key"])
            walk(node.get("children") or ())

    walk(definition.get("layout") or ())
    return frozenset(keys)


def layout_prints(definition: dict[str, Any]) -> LayoutPrints:
    """The node fingerprints and field keys of a (native) definition."""
    return LayoutPrints(nodes=layout_fingerprints(definition), field_keys=field_keys(definition))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|a & b| / |a | b|, 0 for two empty sets."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def parent_overlap(target: LayoutPrints, candidate: LayoutPrints) -> float:
    """How much of the candidate the target kept, in [0, 1]: unchanged nodes, then shared field keys."""
    nodes = jaccard(target.nodes, candidate.nodes)
    keys = jaccard(target.field_keys, candidate.field_keys)
    return (nodes + FIELD_KEY_WEIGHT * keys) / (1 + FIELD_KEY_WEIGHT)


def rank_parents(
    target: dict[str, Any], hits: Sequence[LayoutHit], context: dict[str, HitContext]
) -> list[tuple[LayoutHit, float]]:
    """Candidates by structural overlap with the target, then cosine (2 decimals), then recency.

    A child is a small edit of its parent: it keeps more of its parent's nodes and field keys than of
    older ancestors or of other forms. Recency only orders candidates that tie on both scores (identical
    or near-identical layouts), so the order of ingestion never outweighs the content.
    """
    target_prints = layout_prints(target)
    scored: list[tuple[LayoutHit, float, HitContext]] = []
    for hit in hits:
        ctx = context.get(hit.id)
        if ctx is None or ctx.definition is None:
            continue
        overlap = parent_overlap(target_prints, layout_prints(ctx.definition))
        scored.append((hit, overlap, ctx))
    scored.sort(
        key=lambda item: (round(item[1], 9), round(item[0].score, COSINE_DECIMALS), item[2].created_at),
        reverse=True,
    )
    return [(hit, overlap) for hit, overlap, _ in scored]

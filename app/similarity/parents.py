"""Parent suggestions: which earlier versions a version ingested without lineage was most likely made from."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from graph.similarity import HitContext
from vectors.index import LayoutHit

# Candidates the vector query hands to the structural re-rank of parent suggestions.
PARENT_POOL = 30


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


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|a & b| / |a | b|, 0 for two empty sets."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def rank_parents(
    target: dict[str, Any], hits: Sequence[LayoutHit], context: dict[str, HitContext]
) -> list[tuple[LayoutHit, float]]:
    """Candidates by structural overlap with the target (unchanged nodes), then cosine, then recency.

    A child is a small edit of its parent: it shares more unchanged nodes with it than with older
    ancestors; among equal overlaps the newer version is the likelier parent.
    """
    target_prints = layout_fingerprints(target)
    scored: list[tuple[LayoutHit, float, HitContext]] = []
    for hit in hits:
        ctx = context.get(hit.id)
        if ctx is None or ctx.definition is None:
            continue
        scored.append((hit, jaccard(target_prints, layout_fingerprints(ctx.definition)), ctx))
    scored.sort(key=lambda item: (item[1], round(item[0].score, 4), item[2].created_at), reverse=True)
    return [(hit, overlap) for hit, overlap, _ in scored]

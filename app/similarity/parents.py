"""Parent suggestions: which earlier versions a version ingested without lineage was most likely made from."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from graph.similarity import HitContext
from ingest import content_hash
from ingest.native import import_native
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
# Layout prints kept in memory, by the content hash of the stored definition (content never changes).
# The prints of a VA definition (83 kB of JSON on average) take about 85 kB: about 90 MB at most.
PRINTS_CACHE_SIZE = 1024


@dataclass(frozen=True, slots=True)
class LayoutPrints:
    """What parent suggestion compares of a definition: its layout nodes, field keys and layout hash."""

    nodes: frozenset[str]
    field_keys: frozenset[str]
    # The content hash with the form key left out: equal for byte-identical layouts of different forms.
    layout: str


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


def layout_hash(definition: dict[str, Any]) -> str:
    """The content hash of a (native) definition as the layout of no particular form."""
    return content_hash(import_native(definition, key=""))


def layout_prints(definition: dict[str, Any]) -> LayoutPrints:
    """The node fingerprints, field keys and layout hash of a (native) definition."""
    return LayoutPrints(
        nodes=layout_fingerprints(definition),
        field_keys=field_keys(definition),
        layout=layout_hash(definition),
    )


class LayoutPrintsCache:
    """LayoutPrints by content hash, the least recently used dropped beyond `max_entries`; thread-safe."""

    def __init__(self, max_entries: int = PRINTS_CACHE_SIZE) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, LayoutPrints] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: str) -> LayoutPrints | None:
        """The prints stored for this content hash, if any."""
        with self._lock:
            prints = self._entries.get(digest)
            if prints is not None:
                self._entries.move_to_end(digest)
            return prints

    def prints(self, digest: str, definition: dict[str, Any]) -> LayoutPrints:
        """The prints of the definition with this content hash, computed once while cached."""
        prints = self.get(digest)
        if prints is None:
            prints = layout_prints(definition)
            with self._lock:
                self._entries[digest] = prints
                self._entries.move_to_end(digest)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        return prints

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()


# One per process: parent suggestion meets the same candidates query after query.
LAYOUT_PRINTS = LayoutPrintsCache()


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

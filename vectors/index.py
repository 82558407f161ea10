"""The layout index port: what PageForge needs from a vector store, whichever engine serves it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

Vector = Sequence[float] | NDArray[np.floating[Any]]
Payload = dict[str, Any]

# Payload fields with a keyword index: the ones filters and tenant isolation run on.
INDEXED_FIELDS: tuple[str, ...] = ("tenant", "version_id", "form_key", "content_hash")
TENANT_FIELD = "tenant"


class VectorIndexUnavailable(RuntimeError):
    """The vector index cannot serve requests right now; the message says why."""

    status_code = 503


# Raised inside an adapter, these are PageForge's mistakes (a value of the wrong type, a missing key), not the
# engine's state: they propagate as bugs (500, with a traceback in the log), never as "index unavailable".
PROGRAMMING_ERRORS: tuple[type[Exception], ...] = (TypeError, AttributeError, KeyError, NameError)


class IndexInUse(VectorIndexUnavailable):
    """Another process owns the embedded index: it will not become available while that process runs."""


def canonical_point_id(point_id: str) -> str:
    """The canonical lowercase, hyphenated form of a UUID point id; ValueError if it is not a UUID."""
    try:
        return str(uuid.UUID(point_id))
    except (ValueError, AttributeError, TypeError) as exc:
        raise ValueError(f"point id {point_id!r} is not a UUID string") from exc


@dataclass(frozen=True, slots=True)
class LayoutPoint:
    """One embedded layout: a UUID id, its tenant, its vector (None when not fetched) and payload."""

    id: str
    tenant: str
    # Left out of ==: comparing numpy arrays has no single truth value, and ids say which layout it is.
    vector: Vector | None = field(compare=False)
    payload: Payload = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", canonical_point_id(self.id))
        if not self.tenant:
            raise ValueError("a layout point needs a tenant")
        stored_tenant = self.payload.get(TENANT_FIELD, self.tenant)
        if stored_tenant != self.tenant:
            raise ValueError(f"point {self.id}: payload tenant {stored_tenant!r} != tenant {self.tenant!r}")

    def stored_payload(self) -> Payload:
        """The payload as stored: the caller's fields plus the tenant."""
        return {**self.payload, TENANT_FIELD: self.tenant}


@dataclass(frozen=True, slots=True)
class LayoutFilter:
    """Payload conditions (every `must` field has one of its values, no `must_not` field has any) and point
    id conditions (one of `ids` when given, none of `exclude_ids`). The engines check ids without reading
    payloads: a similar-by-id query that left its version out by the version_id field instead took 1.53x
    as long (bench_similarity, 5,000 layouts)."""

    must: Mapping[str, Sequence[str]] = field(default_factory=dict)
    must_not: Mapping[str, Sequence[str]] = field(default_factory=dict)
    ids: Sequence[str] | None = None
    exclude_ids: Sequence[str] = ()

    def __post_init__(self) -> None:
        for clause in (self.must, self.must_not):
            for key, values in clause.items():
                if isinstance(values, str):
                    raise TypeError(f"filter field {key!r} takes a list of values, not a string")
        for name, ids in (("ids", self.ids), ("exclude_ids", self.exclude_ids)):
            if isinstance(ids, str):
                raise TypeError(f"filter {name} takes a list of point ids, not a string")


@dataclass(frozen=True, slots=True)
class LayoutHit:
    """One search result: the point id, its similarity score (higher is closer) and its payload."""

    id: str
    score: float
    payload: Payload


def vector_as_list(vector: Vector | None, dimension: int) -> list[float]:
    """The vector as a plain list of floats, after checking it is present and of the right length."""
    if vector is None:
        raise ValueError("a vector is required here")
    values = np.asarray(vector, dtype=np.float32).reshape(-1)
    if values.shape[0] != dimension:
        raise ValueError(f"vector has {values.shape[0]} dimensions, the index expects {dimension}")
    if not np.all(np.isfinite(values)):
        raise ValueError("vector contains NaN or infinite values")
    result: list[float] = values.tolist()
    return result


def payload_updates(payloads: Mapping[str, Payload], newer: str | None = None) -> dict[str, Payload]:
    """The fields to merge per canonical point id; ValueError if any would change a point's tenant, or
    lacks an integer `newer` field when one is named."""
    updates: dict[str, Payload] = {}
    for point_id, fields in payloads.items():
        if TENANT_FIELD in fields:
            raise ValueError(f"point {point_id}: set_payloads cannot change the {TENANT_FIELD!r} field")
        if newer is not None and not isinstance(fields.get(newer), int):
            raise ValueError(f"point {point_id}: set_payloads(newer={newer!r}) needs an integer {newer!r}")
        if fields:
            updates.setdefault(canonical_point_id(point_id), {}).update(fields)
    return updates


# What both engine adapters do alike around their client calls.


def vectors_by_tenant(
    points: Sequence[LayoutPoint], dimension: int
) -> dict[str, list[tuple[str, list[float], Payload]]]:
    """Points to upsert as (id, checked vector, stored payload), grouped by tenant: each group is written
    under its tenant's filter, so that an id another tenant holds is never overwritten."""
    groups: dict[str, list[tuple[str, list[float], Payload]]] = {}
    for point in points:
        vector = vector_as_list(point.vector, dimension)
        groups.setdefault(point.tenant, []).append((point.id, vector, point.stored_payload()))
    return groups


def recommend_vectors(
    positive: Sequence[Vector], negative: Sequence[Vector], dimension: int
) -> tuple[list[list[float]], list[list[float]]]:
    """The checked positive and negative vectors of a recommend query; it needs a positive one."""
    if not positive:
        raise ValueError("recommend needs at least one positive vector")
    return (
        [vector_as_list(vector, dimension) for vector in positive],
        [vector_as_list(vector, dimension) for vector in negative],
    )


# The HNSW graph both engines build: links per node (m) and candidates while linking (ef_construct, Qdrant's
# default). Layouts with the same text (a revision that changed only metadata) are identical vectors, and
# Qdrant 1.18.2's neighbour pruning leaves such a group few links to the rest: on perturbed corpus pages, a
# quarter of them duplicates, its default of 16 links found 91-94% of the true top 10 and 48 found 98%, as
# fast (bench_hnsw_links). The server still prunes so. On Edge, duplicate-links.diff mends the pruning and
# 16 found 99.2-99.4% against 48's 99.3-99.6% at 100k, but at 1M it varied more between builds: 93.5-97.8%
# over four builds, against 96.3% and 96.9% for two builds with 48 (bench_index_scale).
HNSW_M = 48
HNSW_EF_CONSTRUCT = 100
# Candidates a search keeps while it walks the graph (Qdrant's default: ef_construct). Copies of a layout
# still crowd the beam: at 1M perturbed pages 100 found 91-96% of the true top 10 over five builds and 256
# found 95-98%, at up to 1.4x the query time; at 100k both found 99% (bench_index_scale).
HNSW_EF = 256
# Below this many kilobytes of vectors a filtered query scans instead of walking the graph (Qdrant's default).
FULL_SCAN_THRESHOLD_KB = 10_000


# Decimals of a score as clients see it.
SCORE_DECIMALS = 4
# Extra hits asked of the engine beyond k, and the most it is asked for, to see a tie at the k-th place whole.
TIE_MARGIN = 8
TIE_FETCH_MAX = 1024


def _hits_of(scored: Sequence[Any]) -> list[LayoutHit]:
    """Search results from an engine's scored points (each with id, score and payload), best_first."""
    hits = [
        LayoutHit(id=str(point.id), score=float(point.score), payload=point.payload or {}) for point in scored
    ]
    return best_first(hits)


def best_first(hits: Iterable[LayoutHit]) -> list[LayoutHit]:
    """Hits by score, highest first; scores equal to SCORE_DECIMALS by id."""
    return sorted(hits, key=lambda hit: (-_shown(hit), hit.id))


def top_hits(query: Callable[[int], Sequence[Any]], k: int) -> list[LayoutHit]:
    """The k best hits of `query(limit)` (an engine's scored points, best first), one answer whichever
    replicas answered: layouts with the same text, whose scores two replicas of a shard compute a float's
    last bits apart, tie to SCORE_DECIMALS and are ranked by id, so the engine is asked for more until the
    tie at the k-th place is whole (up to TIE_FETCH_MAX hits)."""
    limit = k + TIE_MARGIN
    while True:
        hits = _hits_of(query(limit))
        if len(hits) < limit or limit >= TIE_FETCH_MAX or _shown(hits[-1]) < _shown(hits[k - 1]):
            return hits[:k]
        limit = min(limit * 2, TIE_FETCH_MAX)


def _shown(hit: LayoutHit) -> float:
    return round(hit.score, SCORE_DECIMALS)


def points_in_order(
    records: Sequence[Any], tenant: str, ids: Sequence[str], *, with_vectors: bool
) -> list[LayoutPoint]:
    """An engine's records (each with id, vector and payload) as the tenant's points, in the order of
    `ids` (each once); ids without a record are left out."""
    found = {
        str(record.id): LayoutPoint(
            id=str(record.id),
            tenant=tenant,
            vector=record.vector if with_vectors else None,
            payload=record.payload or {},
        )
        for record in records
    }
    wanted = dict.fromkeys(canonical_point_id(point_id) for point_id in ids)
    return [found[point_id] for point_id in wanted if point_id in found]


@runtime_checkable
class LayoutIndex(Protocol):
    """Stores layout vectors per tenant and finds similar ones; the tenant is always a query filter."""

    dimension: int

    def ensure(self) -> None:
        """Create the collection and its payload indexes if missing; safe to call again."""
        ...

    def upsert(self, points: Sequence[LayoutPoint], *, keep_existing: bool = False) -> None:
        """Insert or replace points, returning once they are visible to reads.

        A point whose id already belongs to another tenant is left untouched; with `keep_existing`, so is
        every point whose id is already in the index.
        """
        ...

    def get(self, tenant: str, ids: Sequence[str], *, with_vectors: bool = False) -> list[LayoutPoint]:
        """The tenant's points with these ids, in the order asked; ids not found are left out."""
        ...

    def delete(self, tenant: str, ids: Sequence[str]) -> None:
        """Delete the tenant's points with these ids; other tenants' points are never touched."""
        ...

    def set_payloads(self, tenant: str, payloads: Mapping[str, Payload], *, newer: str | None = None) -> None:
        """Merge these fields into the payloads of the tenant's points with these ids (point id -> fields).

        Fields not named are kept; ids the tenant has no point for are skipped (never created); other
        tenants' points are never touched, even under an id they hold. Visible to reads once this returns.
        With `newer`, an integer field each payload sets, a point is updated only when the value it holds
        is missing or lower: updates that arrive out of order never take a point back.
        """
        ...

    def search(
        self,
        tenant: str,
        vector: Vector,
        *,
        k: int,
        filter: LayoutFilter | None = None,
        exact: bool = False,
    ) -> list[LayoutHit]:
        """The k nearest points of the tenant that pass the filter, closest first."""
        ...

    def recommend(
        self,
        tenant: str,
        positive_vectors: Sequence[Vector],
        negative_vectors: Sequence[Vector] = (),
        *,
        k: int,
        filter: LayoutFilter | None = None,
    ) -> list[LayoutHit]:
        """The k points of the tenant closest to the positives and furthest from the negatives."""
        ...

    def scroll_ids(self, tenant: str | None = None) -> Iterator[tuple[str, Payload]]:
        """Every (id, payload) stored, of one tenant or of all, for reconciling against the graph."""
        ...

    def count(self, tenant: str | None = None) -> int:
        """The exact number of points, of one tenant or of all."""
        ...

    def optimize(self) -> None:
        """Bring the index to its optimised state (HNSW built, deletions vacuumed) before returning."""
        ...

    def health(self) -> str | None:
        """Return if the index can serve requests, with a note if it serves degraded (a replica lost);
        raise VectorIndexUnavailable with the reason if it cannot serve."""
        ...

    def close(self) -> None:
        """Release the engine; later calls raise VectorIndexUnavailable."""
        ...

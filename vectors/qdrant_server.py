"""LayoutIndex on a Qdrant server by URL, through qdrant-client."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from qdrant_client import QdrantClient
from qdrant_client import models as qm
from qdrant_client.http.exceptions import UnexpectedResponse

from vectors.index import (
    FULL_SCAN_THRESHOLD_KB,
    HNSW_EF,
    HNSW_EF_CONSTRUCT,
    HNSW_M,
    INDEXED_FIELDS,
    PROGRAMMING_ERRORS,
    TENANT_FIELD,
    LayoutFilter,
    LayoutHit,
    LayoutPoint,
    Payload,
    Vector,
    VectorIndexUnavailable,
    canonical_point_id,
    payload_updates,
    points_in_order,
    recommend_vectors,
    top_hits,
    vector_as_list,
    vectors_by_tenant,
)

SCROLL_PAGE = 512
# Qdrant's answers to a request it cannot accept as asked (bad input): never a state of the server.
REQUEST_REFUSED = frozenset({400, 422})
OPTIMIZE_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Replication:
    """How the collection spreads over a cluster: shards, copies of each, and copies an update waits for."""

    shards: int = 1
    factor: int = 1
    write_consistency: int = 1


def _match(key: str, values: Sequence[str]) -> qm.FieldCondition:
    return qm.FieldCondition(key=key, match=qm.MatchAny(any=list(values)))


def _tenant_filter(
    tenant: str | None, extra: LayoutFilter | None = None, ids: Sequence[str] = ()
) -> qm.Filter | None:
    must: list[qm.Condition] = []
    must_not: list[qm.Condition] = []
    if tenant is not None:
        must.append(qm.FieldCondition(key=TENANT_FIELD, match=qm.MatchValue(value=tenant)))
    if ids:
        must.append(qm.HasIdCondition(has_id=[canonical_point_id(point_id) for point_id in ids]))
    if extra is not None:
        must.extend(_match(key, values) for key, values in extra.must.items())
        must_not.extend(_match(key, values) for key, values in extra.must_not.items())
        if extra.ids is not None:
            must.append(qm.HasIdCondition(has_id=[canonical_point_id(point_id) for point_id in extra.ids]))
        if extra.exclude_ids:
            excluded = [canonical_point_id(point_id) for point_id in extra.exclude_ids]
            must_not.append(qm.HasIdCondition(has_id=excluded))
    if not must and not must_not:
        return None
    return qm.Filter(must=must or None, must_not=must_not or None)


def _server_error(exc: UnexpectedResponse) -> str:
    """What the server said, in one line: its error's first line, not the raw response."""
    try:
        said = json.loads(exc.content)["status"]["error"]
    except (ValueError, KeyError, TypeError):
        said = exc.reason_phrase
    return f"Qdrant answered {exc.status_code}: {str(said).splitlines()[0] if said else ''}".rstrip(": ")


def connect(url: str, *, api_key: str | None = None, timeout: int = 10) -> QdrantClient:
    """A client for the Qdrant server at `url` (no request is made until first use)."""
    return QdrantClient(url=url, api_key=api_key, timeout=timeout)


class QdrantServerLayoutIndex:
    """Layouts in one collection of a Qdrant server, reached through qdrant-client."""

    def __init__(
        self,
        client: QdrantClient,
        collection: str,
        dimension: int,
        *,
        optimize_timeout: float = 300.0,
        owns_client: bool = False,
        hnsw_ef: int = HNSW_EF,
        indexing_threshold_kb: int | None = None,
        replication: Replication | None = None,
        hnsw_m: int = HNSW_M,
    ) -> None:
        self.client = client
        self.replication = replication or Replication()
        self._owns_client = owns_client
        self.collection = collection
        self.dimension = dimension
        self._optimize_timeout = optimize_timeout
        self._hnsw_ef = hnsw_ef
        self._indexing_threshold_kb = indexing_threshold_kb
        self._hnsw_m = hnsw_m
        self._closed = False

    @classmethod
    def from_url(
        cls,
        url: str,
        collection: str,
        dimension: int,
        *,
        api_key: str | None = None,
        indexing_threshold_kb: int | None = None,
        replication: Replication | None = None,
        hnsw_m: int = HNSW_M,
        hnsw_ef: int = HNSW_EF,
    ) -> QdrantServerLayoutIndex:
        """An index on `collection` of the Qdrant server (or cluster node) at `url`."""
        client = connect(url, api_key=api_key)
        return cls(
            client,
            collection,
            dimension,
            owns_client=True,
            indexing_threshold_kb=indexing_threshold_kb,
            replication=replication,
            hnsw_m=hnsw_m,
            hnsw_ef=hnsw_ef,
        )

    @contextmanager
    def _engine(self, action: str) -> Iterator[QdrantClient]:
        if self._closed:
            raise VectorIndexUnavailable(f"vector index {self.collection!r} is closed")
        try:
            yield self.client
        except VectorIndexUnavailable:
            raise
        except PROGRAMMING_ERRORS:
            raise
        except UnexpectedResponse as exc:
            if exc.status_code in REQUEST_REFUSED:
                raise  # the request PageForge built is wrong: a bug, not the server's state
            raise VectorIndexUnavailable(
                f"vector index {self.collection!r}: {action} failed: {_server_error(exc)}"
            ) from exc
        except Exception as exc:
            raise VectorIndexUnavailable(f"vector index {self.collection!r}: {action} failed: {exc}") from exc

    def ensure(self) -> None:
        """Create the collection (cosine, sharded and replicated as configured) and keyword payload indexes
        if missing; safe to call again. An existing collection must match the configured dimension,
        shards and replication."""
        replication = self.replication
        with self._engine("creating the collection") as client:
            if not client.collection_exists(self.collection):
                client.create_collection(
                    self.collection,
                    vectors_config=qm.VectorParams(size=self.dimension, distance=qm.Distance.COSINE),
                    shard_number=replication.shards,
                    replication_factor=replication.factor,
                    write_consistency_factor=replication.write_consistency,
                    hnsw_config=qm.HnswConfigDiff(
                        m=self._hnsw_m,
                        ef_construct=HNSW_EF_CONSTRUCT,
                        full_scan_threshold=FULL_SCAN_THRESHOLD_KB,
                    ),
                    optimizers_config=(
                        None
                        if self._indexing_threshold_kb is None
                        else qm.OptimizersConfigDiff(indexing_threshold=self._indexing_threshold_kb)
                    ),
                )
            info = client.get_collection(self.collection)
            self._check_dimension(info)
            self._check_replication(info)
            for name in INDEXED_FIELDS:
                if name not in info.payload_schema:
                    schema = qm.KeywordIndexParams(
                        type=qm.KeywordIndexType.KEYWORD, is_tenant=name == TENANT_FIELD
                    )
                    client.create_payload_index(self.collection, name, field_schema=schema, wait=True)

    def _check_replication(self, info: qm.CollectionInfo) -> None:
        params = info.config.params
        found = Replication(params.shard_number or 1, params.replication_factor or 1)
        if (found.shards, found.factor) != (self.replication.shards, self.replication.factor):
            raise VectorIndexUnavailable(
                f"collection {self.collection!r} has {found.shards} shard(s) with replication factor "
                f"{found.factor}; the settings ask for {self.replication.shards} with "
                f"{self.replication.factor} (PAGEFORGE_VECTORS__SHARDS, __REPLICATION_FACTOR)"
            )

    def _check_dimension(self, info: qm.CollectionInfo) -> None:
        params = info.config.params.vectors
        size = params.size if isinstance(params, qm.VectorParams) else None
        if size != self.dimension:
            raise VectorIndexUnavailable(
                f"collection {self.collection!r} holds vectors of size {size}, not {self.dimension}"
            )

    def upsert(self, points: Sequence[LayoutPoint], *, keep_existing: bool = False) -> None:
        """Insert or replace points (only insert, with `keep_existing`), waiting until the server has
        applied them."""
        groups = vectors_by_tenant(points, self.dimension)
        mode = qm.UpdateMode.INSERT_ONLY if keep_existing else qm.UpdateMode.UPSERT
        with self._engine("upsert") as client:
            for tenant, group in groups.items():
                structs = [
                    qm.PointStruct(id=point_id, vector=vector, payload=payload)
                    for point_id, vector, payload in group
                ]
                client.upsert(
                    self.collection,
                    structs,
                    wait=True,
                    update_filter=_tenant_filter(tenant),
                    update_mode=mode,
                )

    def get(self, tenant: str, ids: Sequence[str], *, with_vectors: bool = False) -> list[LayoutPoint]:
        """The tenant's points with these ids, in the order asked; ids not found are left out."""
        if not ids:
            return []
        with self._engine("get") as client:
            records, _ = client.scroll(
                self.collection,
                scroll_filter=_tenant_filter(tenant, ids=ids),
                limit=len(ids),
                with_payload=True,
                with_vectors=with_vectors,
            )
        return points_in_order(records, tenant, ids, with_vectors=with_vectors)

    def delete(self, tenant: str, ids: Sequence[str]) -> None:
        """Delete the tenant's points with these ids; other tenants' points are never touched."""
        if not ids:
            return
        selector = qm.FilterSelector(filter=_tenant_filter(tenant, ids=ids))
        with self._engine("delete") as client:
            client.delete(self.collection, points_selector=selector, wait=True)

    def set_payloads(self, tenant: str, payloads: Mapping[str, Payload], *, newer: str | None = None) -> None:
        """Merge fields into the tenant's points by id, in one batch request the server has applied."""
        updates = payload_updates(payloads, newer)
        if not updates:
            return

        def only_own(point_id: str, fields: Payload) -> qm.Filter:
            # A filter, not an id list: it carries the tenant, and an id nobody holds matches nothing.
            own = _tenant_filter(tenant, ids=[point_id])
            assert own is not None
            if newer is None:
                return own
            held = qm.FieldCondition(key=newer, range=qm.Range(gte=fields[newer]))
            return qm.Filter(must=own.must, must_not=[held])

        operations: list[qm.UpdateOperation] = [
            qm.SetPayloadOperation(
                set_payload=qm.SetPayload(payload=fields, filter=only_own(point_id, fields))
            )
            for point_id, fields in updates.items()
        ]
        with self._engine("set payloads") as client:
            client.batch_update_points(self.collection, operations, wait=True)

    def _query(
        self, query: qm.Query | list[float], tenant: str, k: int, filter: LayoutFilter | None, exact: bool
    ) -> list[LayoutHit]:
        params = qm.SearchParams(hnsw_ef=self._hnsw_ef, exact=exact)
        query_filter = _tenant_filter(tenant, filter)
        with self._engine("search") as client:
            return top_hits(
                lambda limit: (
                    client.query_points(
                        self.collection,
                        query=query,
                        query_filter=query_filter,
                        limit=limit,
                        with_payload=True,
                        search_params=params,
                    ).points
                ),
                k,
            )

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
        return self._query(vector_as_list(vector, self.dimension), tenant, k, filter, exact)

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
        positives, negatives = recommend_vectors(positive_vectors, negative_vectors, self.dimension)
        query = qm.RecommendQuery(
            recommend=qm.RecommendInput(
                positive=positives, negative=negatives, strategy=qm.RecommendStrategy.BEST_SCORE
            )
        )
        return self._query(query, tenant, k, filter, exact=False)

    def scroll_ids(self, tenant: str | None = None) -> Iterator[tuple[str, Payload]]:
        """Every (id, payload) stored, of one tenant or of all, for reconciling against the graph."""
        offset: Any = None
        while True:
            with self._engine("scroll") as client:
                records, offset = client.scroll(
                    self.collection,
                    scroll_filter=_tenant_filter(tenant),
                    limit=SCROLL_PAGE,
                    offset=offset,
                    with_payload=True,
                    with_vectors=False,
                )
            for record in records:
                yield str(record.id), record.payload or {}
            if offset is None:
                return

    def count(self, tenant: str | None = None) -> int:
        """The exact number of points, of one tenant or of all."""
        with self._engine("count") as client:
            return client.count(self.collection, count_filter=_tenant_filter(tenant), exact=True).count

    def optimize(self) -> None:
        """Wait until the server's background optimizers are done (status green)."""
        deadline = time.monotonic() + self._optimize_timeout
        while True:
            with self._engine("optimize") as client:
                status = client.get_collection(self.collection).status
            if status == qm.CollectionStatus.GREEN:
                return
            if status == qm.CollectionStatus.GREY:
                # Grey: optimizations are pending but paused (e.g. after a restart); an update resumes them.
                with self._engine("optimize") as client:
                    client.update_collection(self.collection, optimizers_config=qm.OptimizersConfigDiff())
            elif status == qm.CollectionStatus.RED:
                raise VectorIndexUnavailable(f"collection {self.collection!r} reports status red")
            if time.monotonic() > deadline:
                raise VectorIndexUnavailable(
                    f"collection {self.collection!r} still optimizing after {self._optimize_timeout:.0f}s"
                )
            time.sleep(OPTIMIZE_POLL_SECONDS)

    def health(self) -> str | None:
        """Return if the collection is reachable with the right size and every shard has an active replica,
        with a note when some replicas are not active; raise VectorIndexUnavailable if it cannot serve."""
        with self._engine("health check") as client:
            if not client.collection_exists(self.collection):
                raise VectorIndexUnavailable(f"collection {self.collection!r} does not exist (call ensure())")
            # Replica states first: they come from the node's own view of the cluster, while reading the
            # collection's config already needs every shard to answer.
            cluster = client.http.distributed_api.collection_cluster_info(self.collection).result
        assert cluster is not None
        states: dict[int, list[qm.ReplicaState | None]] = {}
        for local in cluster.local_shards:
            states.setdefault(local.shard_id, []).append(local.state)
        for remote in cluster.remote_shards:
            states.setdefault(remote.shard_id, []).append(remote.state)
        active = {
            shard: sum(state == qm.ReplicaState.ACTIVE for state in found) for shard, found in states.items()
        }
        lost = sorted(shard for shard, count in active.items() if count == 0)
        if lost:
            raise VectorIndexUnavailable(
                f"collection {self.collection!r}: shard(s) {', '.join(map(str, lost))} have no active "
                f"replica: too few Qdrant nodes answer"
            )
        with self._engine("health check") as client:
            self._check_dimension(client.get_collection(self.collection))
        short = {shard: count for shard, count in active.items() if count < len(states[shard])}
        if not short:
            return None
        return "degraded: " + ", ".join(
            f"shard {shard} has {count} of {len(states[shard])} replicas active"
            for shard, count in sorted(short.items())
        )

    def close(self) -> None:
        """Stop serving (closing the client if this index created it); later calls raise."""
        self._closed = True
        if self._owns_client:
            self.client.close()

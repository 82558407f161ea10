"""LayoutIndex on Qdrant Edge: the Qdrant engine in-process, its data in one directory we own."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Any

from vectors.index import (
    FULL_SCAN_THRESHOLD_KB,
    HNSW_EF,
    HNSW_EF_CONSTRUCT,
    HNSW_M,
    INDEXED_FIELDS,
    PROGRAMMING_ERRORS,
    TENANT_FIELD,
    IndexInUse,
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

qe: Any = None
# The server deployment's image has no embedded engine: _open() says so.
with suppress(ModuleNotFoundError):
    qe = import_module("qdrant_edge")

LOCK_FILE = "pageforge.lock"
CONFIG_FILE = "edge_config.json"
# The optimizers build HNSW for a segment once it holds this many kilobytes of vectors; smaller ones are
# searched exactly. Qdrant's default, 10,000 (about 6,500 layouts), left a served index at up to 2.0x the
# p50 of the same layouts freshly optimised in bench_fresh_index; with 1,000 it was 1.08-1.29x.
INDEXING_THRESHOLD_KB = 1_000
SCROLL_PAGE = 512
# The binding deploy/qdrant-edge builds: its engine calls release the GIL, so the optimizer can run in a
# thread beside a serving event loop. The PyPI wheels hold it for a whole optimisation (seconds).
BINDING_DISTRIBUTION = "qdrant-edge-py"
REQUIRED_BINDING = "0.7.2+pageforge.3"
logger = logging.getLogger(__name__)


def binding_version() -> str | None:
    try:
        return version(BINDING_DISTRIBUTION)
    except PackageNotFoundError:
        return None


def _match(key: str, values: Sequence[str]) -> Any:
    return qe.FieldCondition(key, match=qe.MatchAny(list(values)))


def _tenant_filter(tenant: str | None, extra: LayoutFilter | None = None, ids: Sequence[str] = ()) -> Any:
    must: list[Any] = []
    must_not: list[Any] = []
    if tenant is not None:
        must.append(qe.FieldCondition(TENANT_FIELD, match=qe.MatchValue(tenant)))
    if ids:
        must.append(qe.HasIdCondition({canonical_point_id(point_id) for point_id in ids}))
    if extra is not None:
        must.extend(_match(key, values) for key, values in extra.must.items())
        must_not.extend(_match(key, values) for key, values in extra.must_not.items())
        if extra.ids is not None:
            must.append(qe.HasIdCondition({canonical_point_id(point_id) for point_id in extra.ids}))
        if extra.exclude_ids:
            must_not.append(
                qe.HasIdCondition({canonical_point_id(point_id) for point_id in extra.exclude_ids})
            )
    if not must and not must_not:
        return None
    return qe.Filter(must=must or None, must_not=must_not or None)


class EdgeLayoutIndex:
    """Layouts in a Qdrant Edge shard under `path`: cosine distance, keyword payload indexes.

    One process owns the directory: `ensure()` takes an exclusive lock file, and a second owner gets
    IndexInUse instead of a corrupted shard. HNSW graphs are built by the segment optimizers: by
    `optimize()`, and in a background thread once `optimize_after` points have been written since they
    last ran (None: only by `optimize()`).
    Errors name the index by its directory's name, never its absolute path: their messages reach clients.
    """

    def __init__(
        self,
        path: Path,
        dimension: int,
        *,
        indexing_threshold_kb: int = INDEXING_THRESHOLD_KB,
        hnsw_ef: int = HNSW_EF,
        optimize_after: int | None = None,
        hnsw_m: int = HNSW_M,
        hnsw_ef_construct: int = HNSW_EF_CONSTRUCT,
    ) -> None:
        self.path = Path(path)
        self.dimension = dimension
        self._indexing_threshold_kb = indexing_threshold_kb
        self._hnsw_ef = hnsw_ef
        self._optimize_after = optimize_after
        self._hnsw_m = hnsw_m
        self._hnsw_ef_construct = hnsw_ef_construct
        self._shard: Any = None
        self._lock_file: IO[str] | None = None
        self._open_close = threading.Lock()
        self._optimizing = threading.Lock()
        self._written = 0
        self._written_lock = threading.Lock()
        self._background: threading.Thread | None = None
        self._closing = False

    @property
    def name(self) -> str:
        return self.path.name

    def _public(self, exc: Exception) -> str:
        """The engine's message with the index's directory (where the engine names a file) left out."""
        return str(exc).replace(f"{self.path.resolve().parent}/", "").replace(f"{self.path.parent}/", "")

    def _config(self) -> Any:
        return qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(size=self.dimension, distance=qe.Distance.Cosine),
            hnsw_config=qe.HnswIndexConfig(
                m=self._hnsw_m,
                ef_construct=self._hnsw_ef_construct,
                full_scan_threshold=FULL_SCAN_THRESHOLD_KB,
            ),
            optimizers=qe.EdgeOptimizersConfig(indexing_threshold=self._indexing_threshold_kb),
        )

    def _acquire_lock(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        lock_path = self.path / LOCK_FILE
        lock_file = lock_path.open("a+")
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            lock_file.seek(0)
            owner = lock_file.read().strip() or "unknown"
            lock_file.close()
            raise IndexInUse(
                f"vector index {self.name!r} is in use by another process or index (owner pid {owner})"
            ) from exc
        lock_file.seek(0)
        lock_file.truncate()
        lock_file.write(str(os.getpid()))
        lock_file.flush()
        self._lock_file = lock_file

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    @contextmanager
    def _engine(self, action: str) -> Iterator[Any]:
        shard = self._shard
        if shard is None:
            raise VectorIndexUnavailable(f"vector index {self.name!r} is not open (call ensure())")
        try:
            yield shard
        except VectorIndexUnavailable:
            raise
        except PROGRAMMING_ERRORS:
            raise
        except Exception as exc:
            raise VectorIndexUnavailable(
                f"vector index {self.name!r}: {action} failed: {self._public(exc)}"
            ) from exc

    def ensure(self) -> None:
        """Open (or create) the shard under the path and its payload indexes; safe to call again."""
        with self._open_close:
            opened = self._shard is None
            if opened:
                self._open()
                self._closing = False
        with self._engine("creating payload indexes") as shard:
            info = shard.info()
            for name in INDEXED_FIELDS:
                if name not in info.payload_schema:
                    params = qe.KeywordIndexParams(is_tenant=name == TENANT_FIELD)
                    shard.update(qe.UpdateOperation.create_field_index(name, params))
        if opened:
            # Points an earlier process left out of HNSW (a reconcile's repairs, a crash) count as written.
            self._wrote(int(info.points_count) - int(info.indexed_vectors_count))

    def _open(self) -> None:
        found = binding_version()
        if found != REQUIRED_BINDING:
            raise VectorIndexUnavailable(
                f"vector index {self.name!r} needs {BINDING_DISTRIBUTION} {REQUIRED_BINDING} (built by `make "
                f"install` from deploy/qdrant-edge, whose engine calls release the GIL); "
                + (f"found {found}" if found else "it is not installed")
            )
        self._acquire_lock()
        try:
            if (self.path / CONFIG_FILE).exists():
                self._shard = qe.EdgeShard.load(str(self.path), self._config())
            else:
                self._shard = qe.EdgeShard.create(str(self.path), self._config())
        except Exception as exc:
            self._release_lock()
            raise VectorIndexUnavailable(
                f"vector index {self.name!r} cannot be opened: {self._public(exc)}"
            ) from exc

    def upsert(self, points: Sequence[LayoutPoint], *, keep_existing: bool = False) -> None:
        """Insert or replace points (only insert, with `keep_existing`); they are durable (WAL) and
        visible once this returns."""
        groups = vectors_by_tenant(points, self.dimension)
        mode = qe.UpdateMode.InsertOnly if keep_existing else qe.UpdateMode.Upsert
        with self._engine("upsert") as shard:
            for tenant, group in groups.items():
                tenant_points = [qe.Point(point_id, vector, payload) for point_id, vector, payload in group]
                only_own = _tenant_filter(tenant)
                shard.update(
                    qe.UpdateOperation.upsert_points(tenant_points, condition=only_own, update_mode=mode)
                )
        self._wrote(len(points))

    def get(self, tenant: str, ids: Sequence[str], *, with_vectors: bool = False) -> list[LayoutPoint]:
        """The tenant's points with these ids, in the order asked; ids not found are left out."""
        if not ids:
            return []
        request = qe.ScrollRequest(
            limit=len(ids),
            filter=_tenant_filter(tenant, ids=ids),
            with_payload=True,
            with_vector=with_vectors,
        )
        with self._engine("get") as shard:
            records, _ = shard.scroll(request)
        return points_in_order(records, tenant, ids, with_vectors=with_vectors)

    def delete(self, tenant: str, ids: Sequence[str]) -> None:
        """Delete the tenant's points with these ids; other tenants' points are never touched."""
        if not ids:
            return
        with self._engine("delete") as shard:
            shard.update(qe.UpdateOperation.delete_points_by_filter(_tenant_filter(tenant, ids=ids)))
        self._wrote(len(ids))

    def set_payloads(self, tenant: str, payloads: Mapping[str, Payload], *, newer: str | None = None) -> None:
        """Merge fields into the tenant's points by id; durable (WAL) and visible once this returns."""
        updates = payload_updates(payloads, newer)
        if not updates:
            return
        with self._engine("set payloads") as shard:
            # One operation per point: an update takes one payload, and the filter keeps the tenant in it.
            for point_id, fields in updates.items():
                only_own = _tenant_filter(tenant, ids=[point_id])
                if newer is not None:
                    held = qe.FieldCondition(newer, range=qe.RangeFloat(gte=float(fields[newer])))
                    only_own = qe.Filter(must=only_own.must, must_not=[held])
                shard.update(qe.UpdateOperation.set_payload_by_filter(only_own, fields))
        self._wrote(len(updates))

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
        nearest = qe.Query.Nearest(vector_as_list(vector, self.dimension))
        params = qe.SearchParams(hnsw_ef=self._hnsw_ef, exact=exact)
        return self._query("search", nearest, tenant, k, filter, params)

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
        query = qe.RecommendQuery(positives=list(positives), negatives=list(negatives))
        return self._query("recommend", qe.Query.RecommendBestScore(query), tenant, k, filter, None)

    def _query(
        self, what: str, query: Any, tenant: str, k: int, filter: LayoutFilter | None, params: Any
    ) -> list[LayoutHit]:
        engine_filter = _tenant_filter(tenant, filter)
        with self._engine(what) as shard:
            return top_hits(
                lambda limit: shard.query(
                    qe.QueryRequest(
                        limit=limit, query=query, filter=engine_filter, with_payload=True, params=params
                    )
                ),
                k,
            )

    def scroll_ids(self, tenant: str | None = None) -> Iterator[tuple[str, Payload]]:
        """Every (id, payload) stored, of one tenant or of all, for reconciling against the graph."""
        offset: Any = None
        while True:
            request = qe.ScrollRequest(
                offset=offset, limit=SCROLL_PAGE, filter=_tenant_filter(tenant), with_payload=True
            )
            with self._engine("scroll") as shard:
                records, offset = shard.scroll(request)
            for record in records:
                yield str(record.id), record.payload or {}
            if offset is None:
                return

    def count(self, tenant: str | None = None) -> int:
        """The exact number of points, of one tenant or of all."""
        with self._engine("count") as shard:
            return int(shard.count(qe.CountRequest(exact=True, filter=_tenant_filter(tenant))))

    def optimize(self) -> None:
        """Run the segment optimizers to completion: HNSW built where large enough, deletions vacuumed.

        Seconds at 20k points, during which searches and writes go on (the engine releases the GIL); a
        background run in progress is waited for, then the optimizers run again for what it missed.
        """
        with self._optimizing, self._engine("optimize") as shard:
            with self._written_lock:
                self._written = 0
            shard.optimize()
            # Every segment to disk and the WAL entries they hold dropped: the WAL, which the next load
            # replays, stays as short as the writes since the last optimisation.
            shard.flush()

    def segments(self) -> tuple[int, int, int]:
        """(segments, points, points in HNSW graphs): the rest are searched by exact scan."""
        with self._engine("info") as shard:
            info = shard.info()
        return int(info.segments_count), int(info.points_count), int(info.indexed_vectors_count)

    @property
    def optimizing(self) -> bool:
        """Whether the optimizers are running or about to (in the background or called)."""
        background = self._background
        return self._optimizing.locked() or (background is not None and background.is_alive())

    def _wrote(self, points: int) -> None:
        """Count written points; start the optimizers in the background once enough are unoptimised."""
        if self._optimize_after is None:
            return
        with self._written_lock:
            self._written += points
            due = self._written >= self._optimize_after and not self._closing
            if not due or (self._background is not None and self._background.is_alive()):
                return
            self._background = threading.Thread(
                target=self._optimize_in_background, name=f"optimize {self.name}", daemon=True
            )
            self._background.start()

    def _optimize_in_background(self) -> None:
        try:
            self.optimize()
        except VectorIndexUnavailable as exc:
            # The points stay searchable by exact scan; the next writes try again.
            logger.error("background optimisation failed: %s", exc)

    def wait_for_optimizer(self) -> None:
        """Return once no background optimisation is running (one may start with the next write)."""
        background = self._background
        if background is not None:
            background.join()

    def health(self) -> str | None:
        """Return if the shard is open and readable; raise VectorIndexUnavailable with the reason if not."""
        with self._engine("health check") as shard:
            shard.info()
        return None

    def close(self) -> None:
        """Flush and close the shard and release the directory lock; later calls raise."""
        with self._open_close:
            # The engine cannot close under a running optimisation: it finishes first, and no other starts.
            with self._written_lock:
                self._closing = True
            self.wait_for_optimizer()
            shard, self._shard = self._shard, None
            try:
                if shard is not None:
                    shard.flush()
                    shard.close()
            finally:
                self._release_lock()

"""Similar layouts: scopes resolved in the graph, applied as filters inside the vector query."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any, NoReturn

import anyio.to_thread

from app.errors import Conflict, Invalid, NotFound
from app.indexing import IS_LATEST, PIN_COUNT
from app.similarity.parents import PARENT_POOL, LayoutSuggestion, one_per_layout, prints_of, rank_parents
from app.similarity.schemas import GroupBy, LayoutFilters, ParentSuggestion, Scope, SimilarHit
from app.versions import normalise_document
from graph.similarity import HitContext, SimilarityRepository
from ingest import layout_text
from vectors.embedder import Embedder, EmbedderUnavailable
from vectors.index import (
    SCORE_DECIMALS,
    LayoutFilter,
    LayoutHit,
    LayoutIndex,
    Payload,
    Vector,
    best_first,
    canonical_point_id,
)

VERSION_ID = "version_id"
FORM_KEY = "form_key"
# Points fetched per missing group when grouping by form: most forms have a few close versions.
GROUP_OVERFETCH = 4
# Parent suggestion names the versions created before (or not before) the asked one in its vector filter
# when one side holds at most this many; past that it searches wider and keeps the earlier hits.
AROUND_BOUND = 2_000
EARLIER_SEARCH_LIMIT = 4096
SEARCH_FORM_KEY = "search"


def layout_filter(
    *,
    only_ids: Iterable[str] | None = None,
    exclude_ids: Iterable[str] = (),
    form_keys: Sequence[str] | None = None,
    exclude_forms: Sequence[str] = (),
) -> LayoutFilter:
    """The filter for these version (point) id and form conditions (the index adds the tenant)."""
    must: dict[str, list[str]] = {}
    must_not: dict[str, list[str]] = {}
    excluded = set(exclude_ids)
    if form_keys is not None:
        must[FORM_KEY] = list(form_keys)
    if exclude_forms:
        must_not[FORM_KEY] = list(exclude_forms)
    if only_ids is not None:
        return LayoutFilter(must=must, must_not=must_not, ids=sorted(set(only_ids) - excluded))
    return LayoutFilter(must=must, must_not=must_not, exclude_ids=sorted(excluded))


def grouped_search(
    index: LayoutIndex, tenant: str, vector: Vector, *, k: int, base: LayoutFilter
) -> list[LayoutHit]:
    """The best hit of each of the k closest forms.

    Over-fetches, keeps each form's first hit, then asks again without the forms already found; every
    round adds at least one form, so k groups come back whenever k forms pass the filter.
    """
    best: dict[str, LayoutHit] = {}
    while len(best) < k:
        limit = (k - len(best)) * GROUP_OVERFETCH
        found = list(best)
        round_filter = dataclasses.replace(
            base, must_not={**base.must_not, FORM_KEY: [*base.must_not.get(FORM_KEY, ()), *found]}
        )
        hits = index.search(tenant, vector, k=limit, filter=round_filter)
        for hit in hits:
            best.setdefault(str(hit.payload[FORM_KEY]), hit)
        if len(hits) < limit:
            break
    return best_first(best.values())[:k]


def _search(
    index: LayoutIndex,
    tenant: str,
    vector: Vector,
    *,
    k: int,
    filters: LayoutFilter,
    group_by: GroupBy | None,
) -> list[LayoutHit]:
    if group_by == "form":
        return grouped_search(index, tenant, vector, k=k, base=filters)
    return index.search(tenant, vector, k=k, filter=filters)


class SimilarityService:
    """Similar-layout queries for one tenant at a time; the tenant filter is inside every vector query."""

    def __init__(
        self,
        *,
        repository: SimilarityRepository,
        index: LayoutIndex,
        embedder: Embedder | None,
        around_bound: int = AROUND_BOUND,
    ) -> None:
        self.repository = repository
        self.index = index
        self.embedder = embedder
        self.around_bound = around_bound

    async def similar(
        self,
        *,
        tenant: str,
        version_id: str,
        k: int,
        scope: Scope = "all",
        group_by: GroupBy | None = None,
        form_key: str | None = None,
        system: str | None = None,
        release: str | None = None,
    ) -> list[SimilarHit]:
        """The k layouts closest to the version's, in the scope; the version itself is never a hit."""
        (version_id,) = _version_ids([version_id])
        only: set[str] | None = None
        exclude = {version_id}
        if scope != "all":
            source = await self.repository.source(tenant, version_id, lineage=True)
            if source is None:
                raise NotFound(f"form version {version_id} not found")
            if scope == "lineage":
                only = set(source.lineage)
            else:
                exclude |= source.lineage
        pinned = await self._pinned(tenant, system=system, release=release)
        if pinned is not None:
            only = pinned if only is None else only & pinned
        nothing_passes = only is not None and not only - exclude
        filters = layout_filter(
            only_ids=only, exclude_ids=exclude, form_keys=[form_key] if form_key else None
        )
        index = self.index

        def search_from_stored_vector() -> list[LayoutHit] | None:
            # The vector read and the query it feeds share one worker-thread hop; None: no vector stored.
            points = index.get(tenant, [version_id], with_vectors=True)
            if not points or points[0].vector is None:
                return None
            if nothing_passes:
                return []
            return _search(index, tenant, points[0].vector, k=k, filters=filters, group_by=group_by)

        hits = await anyio.to_thread.run_sync(search_from_stored_vector)
        if hits is None:
            await self._raise_missing(tenant, [version_id])
        return await self._with_context(tenant, hits)

    async def search(
        self,
        *,
        tenant: str,
        text: str | None,
        definition: dict[str, Any] | str | None,
        source_format: str | None,
        k: int,
        filters: LayoutFilters,
        group_by: GroupBy | None = None,
    ) -> list[SimilarHit]:
        """The k layouts closest to a free text or to an example definition."""
        if (text is None) == (definition is None):
            raise Invalid("give exactly one of 'text' or 'definition'")
        if text is not None:
            query = text.strip()
            if not query:
                raise Invalid("'text' is empty")
        else:
            assert definition is not None
            parsed = await anyio.to_thread.run_sync(
                normalise_document, definition, source_format, SEARCH_FORM_KEY
            )
            query = layout_text(parsed)
        embedder = self._require_embedder()
        vector = (await embedder.encode_async([query]))[0]
        layout_filters = await self._filters(tenant, filters, exclude_ids=())
        if layout_filters is None:
            return []
        return await self._query(tenant, vector, k=k, filters=layout_filters, group_by=group_by)

    async def recommend(
        self, *, tenant: str, positive: list[str], negative: list[str], k: int, filters: LayoutFilters
    ) -> list[SimilarHit]:
        """The k layouts closest to the positive examples and furthest from the negative ones."""
        positive_ids, negative_ids = _version_ids(positive), _version_ids(negative)
        wanted = list(dict.fromkeys([*positive_ids, *negative_ids]))
        index = self.index
        points = await anyio.to_thread.run_sync(lambda: index.get(tenant, wanted, with_vectors=True))
        vectors: dict[str, Vector] = {p.id: p.vector for p in points if p.vector is not None}
        missing = [version_id for version_id in wanted if version_id not in vectors]
        if missing:
            await self._raise_missing(tenant, missing)
        layout_filters = await self._filters(tenant, filters, exclude_ids=wanted)
        if layout_filters is None:
            return []
        hits = await anyio.to_thread.run_sync(
            lambda: index.recommend(
                tenant,
                [vectors[v] for v in positive_ids],
                [vectors[v] for v in negative_ids],
                k=k,
                filter=layout_filters,
            )
        )
        return await self._with_context(tenant, hits)

    async def suggested_parents(self, *, tenant: str, version_id: str, k: int) -> list[ParentSuggestion]:
        """The k layouts created before this version most likely to be its parent's, likeliest first.

        The vector query, restricted to versions created before it, picks a pool of candidates; they
        are re-ranked by how many of their layout nodes and field keys it kept (see rank_parents). Each
        distinct layout comes once, as its likeliest version with the other versions of it.
        """
        (version_id,) = _version_ids([version_id])
        around = await self.repository.versions_around(tenant, version_id, bound=self.around_bound)
        if around is None:
            raise NotFound(f"form version {version_id} not found")
        vector = await self._vector_of(tenant, version_id)
        if around.before == []:
            return []
        pool = max(PARENT_POOL, k)
        before, not_before = around.before, around.not_before
        index = self.index
        # Whichever id list is shorter goes into the filter; when both are too long to name, the search
        # widens until it has found the pool among the earlier versions.
        if before is not None and (not_before is None or len(before) <= len(not_before) + 1):
            filters: LayoutFilter | None = layout_filter(only_ids=before)
        elif not_before is not None:
            filters = layout_filter(exclude_ids=[version_id, *not_before])
        else:
            filters = None
        if filters is not None:
            hits = await anyio.to_thread.run_sync(
                partial(index.search, tenant, vector, k=pool, filter=filters)
            )
        else:
            hits = await self._earlier_hits(tenant, version_id, vector, pool)
        context = await self.repository.hit_context(tenant, [hit.id for hit in hits], with_prints=True)

        def rank() -> list[LayoutSuggestion]:
            target = prints_of(around.prints)
            if target is None:
                return []
            prints = {
                candidate: found
                for candidate, ctx in context.items()
                if ctx.prints is not None and (found := prints_of(ctx.prints)) is not None
            }
            return one_per_layout(rank_parents(target, hits, context, prints), prints)

        suggestions = await anyio.to_thread.run_sync(rank)
        return [
            ParentSuggestion(
                **_hit(s.hit, context[s.hit.id], score=(s.overlap + s.hit.score) / 2).model_dump(),
                same_layout=[hit.id for hit in s.same_layout],
            )
            for s in suggestions[:k]
        ]

    async def _earlier_hits(self, tenant: str, version_id: str, vector: Vector, pool: int) -> list[LayoutHit]:
        """The `pool` layouts nearest the vector among versions created before the version, nearest first:
        searched `pool` at a time, then four times as many, until enough are earlier (or the index has no
        more, or EARLIER_SEARCH_LIMIT hits were read: then the earlier ones among them)."""
        index = self.index
        filters = layout_filter(exclude_ids=[version_id])
        limit = pool
        while True:
            hits = await anyio.to_thread.run_sync(
                partial(index.search, tenant, vector, k=limit, filter=filters)
            )
            earlier = await self.repository.created_before(tenant, version_id, [hit.id for hit in hits])
            kept = [hit for hit in hits if hit.id in earlier]
            if len(kept) >= pool or len(hits) < limit or limit >= EARLIER_SEARCH_LIMIT:
                return kept[:pool]
            limit = min(limit * 4, EARLIER_SEARCH_LIMIT)

    def _require_embedder(self) -> Embedder:
        if self.embedder is None:
            raise EmbedderUnavailable("embedding model not loaded")
        return self.embedder

    async def _vector_of(self, tenant: str, version_id: str) -> Vector:
        (version_id,) = _version_ids([version_id])
        index = self.index
        points = await anyio.to_thread.run_sync(lambda: index.get(tenant, [version_id], with_vectors=True))
        if not points or points[0].vector is None:
            await self._raise_missing(tenant, [version_id])
        vector = points[0].vector
        assert vector is not None
        return vector

    async def _raise_missing(self, tenant: str, version_ids: list[str]) -> NoReturn:
        """404 for ids the tenant has no version with; 409 for versions whose layout is not indexed yet."""
        known = await self.repository.hit_context(tenant, version_ids)
        unknown = [version_id for version_id in version_ids if version_id not in known]
        if unknown:
            raise NotFound(f"form version not found: {', '.join(unknown)}")
        raise Conflict(
            f"the layout of {', '.join(version_ids)} is not indexed yet (in the outbox); retry shortly"
        )

    async def _pinned(self, tenant: str, *, system: str | None, release: str | None) -> set[str] | None:
        """Ids of the versions the system and release filters let through; None when neither is given.

        A system without releases pins nothing; a release the tenant does not have is 404.
        """
        only: set[str] | None = None
        if system is not None:
            only = await self.repository.pinned_by_system(tenant, system)
        if release is not None:
            pinned = await self.repository.pinned_by_release(tenant, release)
            if pinned is None:
                raise NotFound(f"release {release} not found")
            only = pinned if only is None else only & pinned
        return only

    async def _filters(
        self, tenant: str, filters: LayoutFilters, *, exclude_ids: Sequence[str]
    ) -> LayoutFilter | None:
        """The payload filter for request filters; None when no version can pass it."""
        only = await self._pinned(tenant, system=filters.system, release=filters.release)
        if only is not None and not only - set(exclude_ids):
            return None
        if filters.form_keys is not None and not filters.form_keys:
            return None
        return layout_filter(only_ids=only, exclude_ids=exclude_ids, form_keys=filters.form_keys)

    async def _query(
        self, tenant: str, vector: Vector, *, k: int, filters: LayoutFilter, group_by: GroupBy | None
    ) -> list[SimilarHit]:
        index = self.index
        hits = await anyio.to_thread.run_sync(
            lambda: _search(index, tenant, vector, k=k, filters=filters, group_by=group_by)
        )
        return await self._with_context(tenant, hits)

    async def _with_context(self, tenant: str, hits: list[LayoutHit]) -> list[SimilarHit]:
        """The hits with their lineage context, as their points carry it.

        The outbox publishes a version's context into its point right after the point itself; a hit
        whose point has none yet (it is being published) gets it from the graph.
        """
        unpublished = [hit.id for hit in hits if not _has_context(hit.payload)]
        context = await self.repository.hit_context(tenant, unpublished) if unpublished else {}
        return [
            _hit(hit, context[hit.id]) if hit.id in context else _published_hit(hit)
            for hit in hits
            if hit.id in context or _has_context(hit.payload)
        ]


def _version_ids(ids: Sequence[str]) -> list[str]:
    """The ids in canonical form; 404 for one that is no version id at all."""
    try:
        return [canonical_point_id(version_id) for version_id in ids]
    except ValueError as exc:
        raise NotFound(f"form version not found: {exc}") from exc


def _has_context(payload: Payload) -> bool:
    return IS_LATEST in payload and PIN_COUNT in payload


def _published_hit(hit: LayoutHit) -> SimilarHit:
    payload = hit.payload
    return SimilarHit(
        version_id=payload[VERSION_ID],
        form_key=payload[FORM_KEY],
        number=payload["number"],
        score=round(hit.score, SCORE_DECIMALS),
        is_latest=payload[IS_LATEST],
        pin_count=payload[PIN_COUNT],
    )


def _hit(hit: LayoutHit, context: HitContext, *, score: float | None = None) -> SimilarHit:
    return SimilarHit(
        version_id=context.id,
        form_key=context.form_key,
        number=context.number,
        score=round(hit.score if score is None else score, SCORE_DECIMALS),
        is_latest=context.is_latest,
        pin_count=context.pin_count,
    )

"""Similar-layout routes: by version, by text or definition, recommendations, parent suggestions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query

from app.auth import FormsReader, ResourcesDep
from app.errors import problem_responses
from app.observability import OffLoopJsonRoute
from app.similarity.schemas import (
    MAX_K,
    RECOMMEND_EXAMPLES,
    SEARCH_EXAMPLES,
    GroupBy,
    LayoutRecommend,
    LayoutSearch,
    ParentSuggestions,
    Scope,
    SimilarResults,
)
from app.similarity.service import SimilarityService
from graph.similarity import SimilarityRepository

router = APIRouter(tags=["similar layouts"], route_class=OffLoopJsonRoute)


async def get_service(resources: ResourcesDep) -> SimilarityService:
    return SimilarityService(
        repository=SimilarityRepository(resources.graph),
        index=resources.require_index(),
        embedder=resources.embedder,
    )


ServiceDep = Annotated[SimilarityService, Depends(get_service)]
KQuery = Annotated[int, Query(ge=1, le=MAX_K, description="How many hits.")]


# 409: a version whose layout still waits in the outbox has no vector to compare with yet.
@router.get(
    "/form-versions/{version_id}/similar",
    response_model=SimilarResults,
    responses=problem_responses(401, 404, 409, 422, 429, 503),
)
async def list_similar_layouts(
    version_id: str,
    tenant: FormsReader,
    service: ServiceDep,
    k: KQuery = 10,
    scope: Scope = "all",
    group_by: GroupBy | None = None,
    form_key: str | None = None,
    system: str | None = None,
    release: str | None = None,
) -> SimilarResults:
    """The layouts closest to this version's: anywhere, in or outside its lineage; or one per form.

    `form_key`, `system` and `release` keep only versions of that form, pinned by a release of that
    system, pinned by that release (its id).
    """
    items = await service.similar(
        tenant=tenant.id,
        version_id=version_id,
        k=k,
        scope=scope,
        group_by=group_by,
        form_key=form_key,
        system=system,
        release=release,
    )
    return SimilarResults(items=items)


@router.post(
    "/layouts/search",
    response_model=SimilarResults,
    responses=problem_responses(400, 401, 404, 413, 415, 422, 429, 503),
)
async def search_layouts(
    body: Annotated[LayoutSearch, Body(openapi_examples=SEARCH_EXAMPLES)],
    tenant: FormsReader,
    service: ServiceDep,
) -> SimilarResults:
    """The layouts closest to a free text or an example definition."""
    items = await service.search(
        tenant=tenant.id,
        text=body.text,
        definition=body.definition,
        source_format=body.format,
        k=body.k,
        filters=body.filters,
        group_by=body.group_by,
    )
    return SimilarResults(items=items)


@router.post(
    "/layouts/recommend",
    response_model=SimilarResults,
    responses=problem_responses(400, 401, 404, 409, 413, 415, 422, 429, 503),
)
async def recommend_layouts(
    body: Annotated[LayoutRecommend, Body(openapi_examples=RECOMMEND_EXAMPLES)],
    tenant: FormsReader,
    service: ServiceDep,
) -> SimilarResults:
    """The layouts closest to the positive examples and furthest from the negative ones."""
    items = await service.recommend(
        tenant=tenant.id, positive=body.positive, negative=body.negative, k=body.k, filters=body.filters
    )
    return SimilarResults(items=items)


@router.get(
    "/form-versions/{version_id}/suggested-parents",
    response_model=ParentSuggestions,
    responses=problem_responses(401, 404, 409, 422, 429, 503),
)
async def list_suggested_parents(
    version_id: str, tenant: FormsReader, service: ServiceDep, k: KQuery = 5
) -> ParentSuggestions:
    """The layouts created before this version most likely to be its parent's, likeliest first."""
    items = await service.suggested_parents(tenant=tenant.id, version_id=version_id, k=k)
    return ParentSuggestions(items=items)

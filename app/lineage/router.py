"""Lineage routes: ancestry, diffs, merge bases, field histories, pins, impact and drift."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.auth import FormsReader, ResourcesDep
from app.errors import problem_responses
from app.lineage.schemas import (
    Direction,
    FieldHistoryEntry,
    ImpactRead,
    LineageRead,
    MergeBaseRead,
    ReleaseDriftRead,
    UsedByRead,
    VersionDiffRead,
)
from app.lineage.service import LineageService
from app.observability import OffLoopJsonRoute
from app.pagination import (
    CursorQuery,
    LimitQuery,
    Page,
    decode_cursor,
    decode_pair,
    encode_cursor,
    keyset_page,
    next_cursor,
)
from graph.forms import FormVersionRepository
from graph.lineage import LINEAGE_MAX_DEPTH, LineageRepository

router = APIRouter(tags=["lineage"], route_class=OffLoopJsonRoute)

# Each route reads versions (or releases) by id or key, with parameters that can be invalid.
RESPONSES = problem_responses(401, 404, 422, 429, 503)

DEFAULT_DEPTH = 50


async def get_service(resources: ResourcesDep) -> LineageService:
    return LineageService(
        lineage=LineageRepository(resources.graph), versions=FormVersionRepository(resources.graph)
    )


ServiceDep = Annotated[LineageService, Depends(get_service)]


@router.get("/form-versions/{version_id}/lineage", response_model=LineageRead, responses=RESPONSES)
async def get_lineage(
    version_id: str,
    tenant: FormsReader,
    service: ServiceDep,
    direction: Direction = "up",
    depth: Annotated[
        int, Query(description=f"DERIVED_FROM steps to walk, 1 to {LINEAGE_MAX_DEPTH}.")
    ] = DEFAULT_DEPTH,
) -> LineageRead:
    """The version's ancestors (up), descendants (down) or both within `depth` steps, with edge diffs."""
    return await service.lineage_of(tenant=tenant.id, version_id=version_id, direction=direction, depth=depth)


@router.get("/form-versions/{version_id}/diff", response_model=VersionDiffRead, responses=RESPONSES)
async def get_version_diff(
    version_id: str, against: str, tenant: FormsReader, service: ServiceDep
) -> VersionDiffRead:
    """The structural diff from version `against` to this version (any two versions, of any forms)."""
    return await service.diff(tenant=tenant.id, version_id=version_id, against_id=against)


@router.get("/form-versions/{version_id}/merge-base", response_model=MergeBaseRead, responses=RESPONSES)
async def get_merge_base(
    version_id: str,
    other: Annotated[str, Query(alias="with")],
    tenant: FormsReader,
    service: ServiceDep,
) -> MergeBaseRead:
    """The lowest common ancestors of this version and version `with`."""
    return await service.merge_base(tenant=tenant.id, version_id=version_id, other_id=other)


# field_key:path: a field key may hold "/" (JSON Schema property names may), sent as is or as %2F.
@router.get(
    "/forms/{form_key}/fields/{field_key:path}/history",
    response_model=Page[FieldHistoryEntry],
    responses=RESPONSES,
)
async def get_field_history(
    form_key: str,
    field_key: str,
    tenant: FormsReader,
    service: ServiceDep,
    version: Annotated[str | None, Query(description="Start here instead of the latest version.")] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[FieldHistoryEntry]:
    """Each version on the lineage where the field was added, changed (and how), renamed, moved or removed."""
    start_id, offset = decode_pair(cursor, (version or "", 0))
    start, entries = await service.field_history(
        tenant=tenant.id, form_key=form_key, field_key=field_key, version_id=start_id or None
    )
    page = entries[offset : offset + limit]
    more = offset + limit < len(entries)
    return Page(items=page, next_cursor=encode_cursor([start, offset + limit]) if more else None)


@router.get("/form-versions/{version_id}/used-by", response_model=Page[UsedByRead], responses=RESPONSES)
async def list_used_by(
    version_id: str,
    tenant: FormsReader,
    service: ServiceDep,
    form: Annotated[bool, Query(description="Releases pinning any version of this version's form.")] = False,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[UsedByRead]:
    """The releases that pin this version, by system key and release number."""
    after_system, after_number = decode_pair(cursor, ("", 0))
    releases = await service.used_by(
        tenant=tenant.id,
        version_id=version_id,
        whole_form=form,
        after=(after_system, after_number),
        limit=limit,
    )
    return keyset_page(releases, limit, lambda release: [release.system_key, release.number])


@router.get("/form-versions/{version_id}/impact", response_model=Page[ImpactRead], responses=RESPONSES)
async def list_impact(
    version_id: str,
    tenant: FormsReader,
    service: ServiceDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[ImpactRead]:
    """The version and its descendants, nearest first, each with the releases that pin it."""
    after_distance, after_number = decode_pair(cursor, (-1, 0))
    items = await service.impact(
        tenant=tenant.id, version_id=version_id, after=(after_distance, after_number), limit=limit
    )
    return keyset_page(items, limit, lambda item: [item.distance, item.number])


@router.get("/releases/{release_id}/drift", response_model=ReleaseDriftRead, responses=RESPONSES)
async def get_release_drift(
    release_id: str,
    tenant: FormsReader,
    service: ServiceDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> ReleaseDriftRead:
    """For each pin of the release, the newer versions on its lineage with their diff summaries."""
    drift = await service.drift(
        tenant=tenant.id, release_id=release_id, after=decode_cursor(cursor, ""), limit=limit
    )
    drift.next_cursor = next_cursor(drift.items, limit, lambda item: item.form_key)
    return drift

"""SysVersionProcessor routes: post releases, read systems and releases."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Response, status

from app.auth import FormsReader, ReleasesWriter, ResourcesDep
from app.errors import problem_responses
from app.observability import OffLoopJsonRoute
from app.pagination import CursorQuery, LimitQuery, Page, decode_cursor, keyset_page
from app.sysversions.schemas import (
    RELEASE_EXAMPLES,
    ReleaseCreate,
    ReleaseCreated,
    ReleaseRead,
    ReleaseSummary,
    SystemRead,
)
from app.sysversions.service import SysVersionProcessor
from graph.forms import FormVersionRepository
from graph.releases import ReleaseRepository

router = APIRouter(tags=["system releases"], route_class=OffLoopJsonRoute)


async def get_processor(resources: ResourcesDep) -> SysVersionProcessor:
    return SysVersionProcessor(
        releases=ReleaseRepository(resources.graph),
        versions=FormVersionRepository(resources.graph),
        relay=resources.relay,
        max_fields=resources.settings.api.max_fields,
    )


ProcessorDep = Annotated[SysVersionProcessor, Depends(get_processor)]


@router.post(
    "/systems/{system_key}/releases",
    response_model=ReleaseCreated,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": ReleaseCreated, "description": "This release already existed with these pins."},
        **problem_responses(400, 401, 403, 409, 413, 415, 422, 429, 503),
    },
)
async def create_release(
    system_key: str,
    body: Annotated[ReleaseCreate, Body(openapi_examples=RELEASE_EXAMPLES)],
    tenant: ReleasesWriter,
    processor: ProcessorDep,
    response: Response,
) -> ReleaseCreated:
    """Ingest a release manifest: pin its forms, derive it from its parents, report the release diff."""
    created = await processor.create(tenant=tenant.id, system_key=system_key, body=body)
    if not created.created:
        response.status_code = status.HTTP_200_OK
    return created


@router.get("/systems", response_model=Page[SystemRead], responses=problem_responses(401, 422, 429, 503))
async def list_systems(
    tenant: FormsReader, processor: ProcessorDep, limit: LimitQuery = 50, cursor: CursorQuery = None
) -> Page[SystemRead]:
    """The tenant's systems, by key."""
    systems = await processor.list_systems(tenant=tenant.id, after=decode_cursor(cursor, ""), limit=limit)
    return keyset_page(systems, limit, lambda system: system.key)


@router.get(
    "/systems/{system_key}", response_model=SystemRead, responses=problem_responses(401, 404, 429, 503)
)
async def get_system(system_key: str, tenant: FormsReader, processor: ProcessorDep) -> SystemRead:
    """One system: its number of releases and its latest release."""
    return await processor.get_system(tenant=tenant.id, system_key=system_key)


@router.get(
    "/systems/{system_key}/releases",
    response_model=Page[ReleaseSummary],
    responses=problem_responses(401, 404, 422, 429, 503),
)
async def list_releases(
    system_key: str,
    tenant: FormsReader,
    processor: ProcessorDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[ReleaseSummary]:
    """The system's releases, in the order they were created."""
    releases = await processor.list_releases(
        tenant=tenant.id, system_key=system_key, after=decode_cursor(cursor, 0), limit=limit
    )
    return keyset_page(releases, limit, lambda release: release.number)


@router.get(
    "/releases/{release_id}", response_model=ReleaseRead, responses=problem_responses(401, 404, 429, 503)
)
async def get_release(release_id: str, tenant: FormsReader, processor: ProcessorDep) -> ReleaseRead:
    """One release: its pins, its parents and the release diff from each."""
    return await processor.get_release(tenant=tenant.id, release_id=release_id)

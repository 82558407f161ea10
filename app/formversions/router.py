"""FormVersionProcessor routes: post versions, read forms and versions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Response, status

from app.auth import FormsReader, FormsWriter, ResourcesDep
from app.errors import PageForgeError, as_problem, problem_responses
from app.formversions.schemas import (
    FORM_VERSION_EXAMPLES,
    BatchItemProblem,
    BatchItemResult,
    FormRead,
    FormVersionBatch,
    FormVersionBatchResult,
    FormVersionCreate,
    FormVersionCreated,
    FormVersionRead,
    FormVersionSummary,
)
from app.formversions.service import FormVersionProcessor
from app.observability import OffLoopJsonRoute
from app.pagination import CursorQuery, LimitQuery, Page, decode_cursor, keyset_page
from graph.forms import FormVersionRepository

router = APIRouter(tags=["form versions"], route_class=OffLoopJsonRoute)


async def get_processor(resources: ResourcesDep) -> FormVersionProcessor:
    return FormVersionProcessor(
        versions=FormVersionRepository(resources.graph),
        relay=resources.relay,
        index=resources.index,
        max_fields=resources.settings.api.max_fields,
    )


ProcessorDep = Annotated[FormVersionProcessor, Depends(get_processor)]


@router.post(
    "/forms/{form_key}/versions",
    response_model=FormVersionCreated,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": FormVersionCreated, "description": "This content already was a version."},
        **problem_responses(400, 401, 403, 409, 413, 415, 422, 429, 503),
    },
)
async def create_form_version(
    form_key: str,
    body: Annotated[FormVersionCreate, Body(openapi_examples=FORM_VERSION_EXAMPLES)],
    tenant: FormsWriter,
    processor: ProcessorDep,
    response: Response,
) -> FormVersionCreated:
    """Ingest a definition as a new version of the form, with lineage, diffs and similar layouts."""
    created = await processor.ingest(tenant=tenant.id, form_key=form_key, body=body)
    if not created.created:
        response.status_code = status.HTTP_200_OK
    return created


@router.post(
    "/forms/versions:batch",
    response_model=FormVersionBatchResult,
    responses=problem_responses(400, 401, 403, 413, 415, 422, 429, 503),
)
async def create_form_versions_batch(
    body: FormVersionBatch, tenant: FormsWriter, processor: ProcessorDep
) -> FormVersionBatchResult:
    """Up to 100 versions, of any forms, each written in its own transaction, in order (so versions of one
    form form a chain), each answered as a single post would be; one refused item refuses only itself.
    A dependency that goes down stops the batch: the items after it are answered 503, none written."""
    results: list[BatchItemResult] = []
    down: PageForgeError | None = None
    for index, item in enumerate(body.items):
        post = FormVersionCreate(**item.model_dump(exclude={"form_key"}, exclude_unset=True))
        try:
            if down is not None:
                raise down
            created = await processor.ingest(tenant=tenant.id, form_key=item.form_key, body=post)
        except Exception as exc:
            problem = as_problem(exc)
            if problem is None:
                raise
            if problem.status_code >= 500:
                down = problem
            results.append(
                BatchItemResult(
                    index=index,
                    form_key=item.form_key,
                    status=problem.status_code,
                    problem=BatchItemProblem(title=problem.title, detail=problem.detail),
                )
            )
            continue
        status_code = status.HTTP_201_CREATED if created.created else status.HTTP_200_OK
        results.append(
            BatchItemResult(index=index, form_key=item.form_key, status=status_code, version=created)
        )
    return FormVersionBatchResult(items=results)


@router.get("/forms", response_model=Page[FormRead], responses=problem_responses(401, 422, 429, 503))
async def list_forms(
    tenant: FormsReader,
    processor: ProcessorDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            pattern=r"^[^\x00-\x1f\x7f]*$",
            description="Only forms whose key or title contains this (any case); no control characters.",
        ),
    ] = None,
) -> Page[FormRead]:
    """The tenant's forms, by key."""
    forms = await processor.list_forms(
        tenant=tenant.id, after=decode_cursor(cursor, ""), limit=limit, containing=q
    )
    return keyset_page(forms, limit, lambda form: form.key)


@router.get("/forms/{form_key}", response_model=FormRead, responses=problem_responses(401, 404, 429, 503))
async def get_form(form_key: str, tenant: FormsReader, processor: ProcessorDep) -> FormRead:
    """One form: its title, number of versions and latest version."""
    return await processor.get_form(tenant=tenant.id, form_key=form_key)


@router.get(
    "/forms/{form_key}/versions",
    response_model=Page[FormVersionSummary],
    responses=problem_responses(401, 404, 422, 429, 503),
)
async def list_form_versions(
    form_key: str,
    tenant: FormsReader,
    processor: ProcessorDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[FormVersionSummary]:
    """The form's versions, by number."""
    versions = await processor.list_versions(
        tenant=tenant.id, form_key=form_key, after=decode_cursor(cursor, 0), limit=limit
    )
    return keyset_page(versions, limit, lambda version: version.number)


@router.get(
    "/form-versions/{version_id}",
    response_model=FormVersionRead,
    responses=problem_responses(401, 404, 429, 503),
)
async def get_form_version(version_id: str, tenant: FormsReader, processor: ProcessorDep) -> FormVersionRead:
    """One version: canonical definition, metadata, parents and the diff from each."""
    return await processor.get_version(tenant=tenant.id, version_id=version_id)

"""LayoutRenderer routes: render a version, a release's pinned version, or a version against another."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import State

from app.api import API_PREFIX
from app.auth import RendersReader, ResourcesDep
from app.errors import PageForgeError, problem_responses
from app.jobs.router import job_read
from app.jobs.schemas import JobRead
from app.observability import OffLoopJsonRoute
from app.renderer.cache import ContentHashes, RecentSources, RenderCache, Rendered
from app.renderer.pdf_workers import PdfWorkers
from app.renderer.schemas import DiffFormat, RenderFormat, RenderPrefill
from app.renderer.service import LayoutRenderer, PdfJobRequired
from app.renderer.slots import RenderSlots
from app.renderer.widgets import EmbeddingWidgetMatcher
from app.resources import Resources
from app.settings import RenderSettings
from graph.database import Graph
from graph.jobs import JobRepository
from graph.renders import RenderSourceRepository
from graph.tenants import Tenant
from render import CSP

T = TypeVar("T")

logger = logging.getLogger("pageforge.renders")

router = APIRouter(tags=["renders"], route_class=OffLoopJsonRoute)

RENDERED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The render: a standalone HTML page, a JSON render tree or a PDF.",
        "content": {"text/html": {}, "application/json": {}, "application/pdf": {}},
    },
}
RENDER_PROBLEMS = {
    404: "No such version, release or pinned form for this tenant.",
    422: "A parameter or the body is invalid, or the form is over a render limit: more fields than "
    "PAGEFORGE_RENDER__MAX_FIELDS, or (PDF) more pages than PAGEFORGE_RENDER__MAX_PDF_PAGES.",
    429: "Over the tenant's request rate, or every render slot of the tenant is busy and the queue is full.",
    503: "A dependency is unavailable, or the PDF was not finished within PAGEFORGE_RENDER__PDF_TIMEOUT_S.",
}
RENDER_RESPONSES = RENDERED | problem_responses(401, 404, 422, 429, 503, descriptions=RENDER_PROBLEMS)
# A PDF of a big form is a job.
QUEUED: dict[int | str, dict[str, Any]] = {
    202: {
        "model": JobRead,
        "description": "A PDF of a form with more fields than PAGEFORGE_RENDER__PDF_JOB_FIELDS: a job "
        "renders it; follow its Location, and fetch the PDF from /api/v1/jobs/{id}/result once it succeeded.",
    }
}
# A prefilled render reads a JSON body.
PREFILLED_RENDER_RESPONSES = (
    RENDERED
    | QUEUED
    | problem_responses(400, 401, 404, 413, 415, 422, 429, 503, descriptions=RENDER_PROBLEMS)
)


@dataclass
class RenderState:
    """What renders share across requests of one process: the cache, the widget matcher, the slots and
    the PDF worker processes."""

    cache: RenderCache
    hashes: ContentHashes
    recent: RecentSources
    matcher: EmbeddingWidgetMatcher
    slots: RenderSlots
    pdf_workers: PdfWorkers
    limits: RenderSettings

    def renderer(
        self, graph: Graph, *, pdf_job_fields: int | None, limits: RenderSettings | None = None
    ) -> LayoutRenderer:
        return LayoutRenderer(
            sources=RenderSourceRepository(graph),
            matcher=self.matcher,
            cache=self.cache,
            hashes=self.hashes,
            recent=self.recent,
            slots=self.slots,
            pdf_workers=self.pdf_workers,
            limits=limits or self.limits,
            pdf_job_fields=pdf_job_fields,
        )


async def render_state(request: Request, resources: ResourcesDep) -> RenderState:
    return process_render_state(request.app.state, resources)


def process_render_state(app_state: State, resources: Resources) -> RenderState:
    """The process's render state, made on first use (the embedding model must be loaded)."""
    state: RenderState | None = getattr(app_state, "renders", None)
    if state is None:
        limits = resources.settings.render
        state = RenderState(
            cache=RenderCache(),
            hashes=ContentHashes(),
            recent=RecentSources(),
            matcher=EmbeddingWidgetMatcher(resources.require_embedder()),
            slots=RenderSlots(
                slots=limits.slot_count, per_tenant=limits.per_tenant_count, max_waiting=limits.max_waiting
            ),
            pdf_workers=PdfWorkers(limits.slot_count),
            limits=limits,
        )
        resources.on_close.append(state.pdf_workers.close)
        app_state.renders = state
    return state


async def get_renderer(
    resources: ResourcesDep, state: Annotated[RenderState, Depends(render_state)]
) -> LayoutRenderer:
    return state.renderer(resources.graph, pdf_job_fields=state.limits.pdf_job_fields)


class ClientGone(PageForgeError):
    status_code = 499  # nginx's "client closed request": seen only in logs and metrics
    title = "Client closed request"


async def until_client_leaves(request: Request, render: Callable[[], Awaitable[T]]) -> T:
    """The render's result; when the client disconnects first, the render is cancelled (a PDF worker
    is killed, a queued render leaves the queue) and ClientGone raised."""
    work = asyncio.ensure_future(render())
    left = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({work, left}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        left.cancel()
        if not work.done():
            work.cancel()
            await asyncio.wait({work})  # its clean-up (killing a worker) ends before the request does
    if work.cancelled():
        logger.info("render stopped: the client went away")
        raise ClientGone("the client went away before the render was finished")
    return work.result()


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        continue


RendererDep = Annotated[LayoutRenderer, Depends(get_renderer)]
FormatQuery = Annotated[RenderFormat, Query(description="html (default), json (render tree) or pdf")]
DiffFormatQuery = Annotated[DiffFormat, Query(description="html (default) or pdf")]


async def rendered_or_queued(
    request: Request,
    tenant: Tenant,
    resources: Resources,
    render: Callable[[], Awaitable[tuple[Rendered, bool]]],
    data: dict[str, Any] | None = None,
) -> Response:
    """The render; for a PDF too big to render within a request, 202 with the job that renders it."""
    try:
        rendered, cached = await until_client_leaves(request, render)
    except PdfJobRequired as big:
        prefill = b"" if data is None else json.dumps(data).encode()
        job = await JobRepository(resources.graph, API_PREFIX).create(
            tenant.id, "render", {"version_id": big.version_id, "format": "pdf"}, prefill
        )
        read = job_read(job, API_PREFIX)
        return JSONResponse(
            read.model_dump(mode="json"), status_code=202, headers={"location": read.links["self"]}
        )
    return render_response(rendered, cached)


def render_response(rendered: Rendered, cached: bool) -> Response:
    """The render with its media type; HTML carries the strict CSP; nothing is content-sniffed."""
    headers = {"X-Content-Type-Options": "nosniff", "X-Render-Cache": "hit" if cached else "miss"}
    if rendered.media_type.startswith("text/html"):
        headers["Content-Security-Policy"] = CSP
    return Response(content=rendered.body, media_type=rendered.media_type, headers=headers)


@router.get(
    "/form-versions/{version_id}/render", response_class=Response, responses=RENDER_RESPONSES | QUEUED
)
async def render_version(
    request: Request,
    version_id: str,
    tenant: RendersReader,
    resources: ResourcesDep,
    renderer: RendererDep,
    format: FormatQuery = RenderFormat.HTML,
) -> Response:
    """The version as HTML, a JSON render tree or PDF (of a big form: 202, a job renders it)."""
    return await rendered_or_queued(
        request,
        tenant,
        resources,
        lambda: renderer.render_version(tenant=tenant.id, version_id=version_id, format=format),
    )


@router.post(
    "/form-versions/{version_id}/render", response_class=Response, responses=PREFILLED_RENDER_RESPONSES
)
async def render_version_prefilled(
    request: Request,
    version_id: str,
    body: RenderPrefill,
    tenant: RendersReader,
    resources: ResourcesDep,
    renderer: RendererDep,
    format: FormatQuery = RenderFormat.HTML,
) -> Response:
    """The version rendered with the posted `data` filled into its inputs."""
    return await rendered_or_queued(
        request,
        tenant,
        resources,
        lambda: renderer.render_version(
            tenant=tenant.id, version_id=version_id, format=format, data=body.data
        ),
        body.data,
    )


@router.get(
    "/releases/{release_id}/forms/{form_key}/render",
    response_class=Response,
    responses=RENDER_RESPONSES | QUEUED,
)
async def render_pinned(
    request: Request,
    release_id: str,
    form_key: str,
    tenant: RendersReader,
    resources: ResourcesDep,
    renderer: RendererDep,
    format: FormatQuery = RenderFormat.HTML,
) -> Response:
    """The form as the release pinned it."""
    return await rendered_or_queued(
        request,
        tenant,
        resources,
        lambda: renderer.render_pinned(
            tenant=tenant.id, release_id=release_id, form_key=form_key, format=format
        ),
    )


@router.get("/form-versions/{version_id}/render/diff", response_class=Response, responses=RENDER_RESPONSES)
async def render_diff(
    request: Request,
    version_id: str,
    tenant: RendersReader,
    renderer: RendererDep,
    against: Annotated[str, Query(description="the version id to compare with")],
    format: DiffFormatQuery = DiffFormat.HTML,
) -> Response:
    """The version with fields added, removed and changed since `against` marked."""
    rendered, cached = await until_client_leaves(
        request,
        lambda: renderer.render_diff(
            tenant=tenant.id, version_id=version_id, against_id=against, format=format
        ),
    )
    return render_response(rendered, cached)

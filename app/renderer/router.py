"""LayoutRenderer routes: render a version, a release's pinned version, or a version against another."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response

from app.auth import RendersReader, ResourcesDep
from app.errors import PageForgeError, problem_responses
from app.observability import OffLoopJsonRoute
from app.renderer.cache import ContentHashes, RenderCache, Rendered
from app.renderer.pdf_workers import PdfWorkers
from app.renderer.schemas import DiffFormat, RenderFormat, RenderPrefill
from app.renderer.service import LayoutRenderer
from app.renderer.slots import RenderSlots
from app.renderer.widgets import EmbeddingWidgetMatcher
from app.settings import RenderSettings
from graph.renders import RenderSourceRepository
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
# A prefilled render reads a JSON body.
PREFILLED_RENDER_RESPONSES = RENDERED | problem_responses(
    400, 401, 404, 413, 415, 422, 429, 503, descriptions=RENDER_PROBLEMS
)


@dataclass
class RenderState:
    """What renders share across requests of one process: the cache, the widget matcher, the slots and
    the PDF worker processes."""

    cache: RenderCache
    hashes: ContentHashes
    matcher: EmbeddingWidgetMatcher
    slots: RenderSlots
    pdf_workers: PdfWorkers
    limits: RenderSettings


async def render_state(request: Request, resources: ResourcesDep) -> RenderState:
    """The process's render state, made on first use (the embedding model must be loaded)."""
    state: RenderState | None = getattr(request.app.state, "renders", None)
    if state is None:
        limits = resources.settings.render
        state = RenderState(
            cache=RenderCache(),
            hashes=ContentHashes(),
            matcher=EmbeddingWidgetMatcher(resources.require_embedder()),
            slots=RenderSlots(
                slots=limits.slot_count, per_tenant=limits.per_tenant_count, max_waiting=limits.max_waiting
            ),
            pdf_workers=PdfWorkers(limits.slot_count),
            limits=limits,
        )
        resources.on_close.append(state.pdf_workers.close)
        request.app.state.renders = state
    return state


async def get_renderer(
    resources: ResourcesDep, state: Annotated[RenderState, Depends(render_state)]
) -> LayoutRenderer:
    return LayoutRenderer(
        sources=RenderSourceRepository(resources.graph),
        matcher=state.matcher,
        cache=state.cache,
        hashes=state.hashes,
        slots=state.slots,
        pdf_workers=state.pdf_workers,
        limits=state.limits,
    )


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


def render_response(rendered: Rendered, cached: bool) -> Response:
    """The render with its media type; HTML carries the strict CSP; nothing is content-sniffed."""
    headers = {"X-Content-Type-Options": "nosniff", "X-Render-Cache": "hit" if cached else "miss"}
    if rendered.media_type.startswith("text/html"):
        headers["Content-Security-Policy"] = CSP
    return Response(content=rendered.body, media_type=rendered.media_type, headers=headers)


@router.get("/form-versions/{version_id}/render", response_class=Response, responses=RENDER_RESPONSES)
async def render_version(
    request: Request,
    version_id: str,
    tenant: RendersReader,
    renderer: RendererDep,
    format: FormatQuery = RenderFormat.HTML,
) -> Response:
    """The version as HTML, a JSON render tree or PDF."""
    rendered, cached = await until_client_leaves(
        request, lambda: renderer.render_version(tenant=tenant.id, version_id=version_id, format=format)
    )
    return render_response(rendered, cached)


@router.post(
    "/form-versions/{version_id}/render", response_class=Response, responses=PREFILLED_RENDER_RESPONSES
)
async def render_version_prefilled(
    request: Request,
    version_id: str,
    body: RenderPrefill,
    tenant: RendersReader,
    renderer: RendererDep,
    format: FormatQuery = RenderFormat.HTML,
) -> Response:
    """The version rendered with the posted `data` filled into its inputs."""
    rendered, cached = await until_client_leaves(
        request,
        lambda: renderer.render_version(
            tenant=tenant.id, version_id=version_id, format=format, data=body.data
        ),
    )
    return render_response(rendered, cached)


@router.get(
    "/releases/{release_id}/forms/{form_key}/render", response_class=Response, responses=RENDER_RESPONSES
)
async def render_pinned(
    request: Request,
    release_id: str,
    form_key: str,
    tenant: RendersReader,
    renderer: RendererDep,
    format: FormatQuery = RenderFormat.HTML,
) -> Response:
    """The form as the release pinned it."""
    rendered, cached = await until_client_leaves(
        request,
        lambda: renderer.render_pinned(
            tenant=tenant.id, release_id=release_id, form_key=form_key, format=format
        ),
    )
    return render_response(rendered, cached)


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

"""LayoutRenderer: any version, or the version a release pins, as HTML, a JSON render tree or PDF, cached."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio.to_thread

from app.errors import DependencyUnavailable, Invalid, NotFound, PageForgeError, TooManyRequests
from app.renderer.cache import ContentHashes, RecentSources, RenderCache, Rendered, RenderKey, data_hash
from app.renderer.pdf_workers import PdfWorkers, RenderTimedOut, WorkerDied
from app.renderer.schemas import MEDIA_TYPES, DiffFormat, RenderFormat
from app.renderer.slots import RenderQueueFull, RenderSlots
from app.settings import RenderSettings
from graph.renders import RenderSource, RenderSourceRepository
from ingest import FormDefinition, diff_definitions
from ingest.native import import_native
from render.html import render_html
from render.pdf import TooManyPages
from render.tree import render_tree
from render.widgets import SemanticMatcher, WidgetMapping, resolve_widgets

T = TypeVar("T")

# How long a tenant whose renders queue is full is told to wait before trying again.
QUEUE_FULL_RETRY_S = 2.0


class PdfJobRequired(Exception):
    """A PDF too big to render within a request (more than `pdf_job_fields` fields): a job renders it."""

    def __init__(self, version_id: str, field_count: int) -> None:
        super().__init__(f"form version {version_id!r} has {field_count} fields: a job renders its PDF")
        self.version_id = version_id
        self.field_count = field_count


class RenderTooSlow(PageForgeError):
    status_code = 503
    title = "Render took too long"


class LayoutRenderer:
    """Turns stored versions into renders; every render goes through the process's render cache.

    A repeat does no rendering work and, once the version's content hash is known, no graph read; nor
    does a render of new prefill data into a version whose definition it still keeps. The
    work itself runs off the event loop in one of the tenant's render slots: HTML and JSON in a thread
    (bounded by the form's size, checked first), PDF in a worker process that is killed past its time
    budget or when the request is cancelled.
    """

    def __init__(
        self,
        *,
        sources: RenderSourceRepository,
        matcher: SemanticMatcher | None,
        cache: RenderCache,
        hashes: ContentHashes,
        recent: RecentSources,
        slots: RenderSlots,
        pdf_workers: PdfWorkers,
        limits: RenderSettings,
        pdf_job_fields: int | None = None,
    ) -> None:
        """`pdf_job_fields`: a PDF of a version with more fields raises PdfJobRequired (None: rendered)."""
        self._sources = sources
        self._matcher = matcher
        self._cache = cache
        self._hashes = hashes
        self._recent = recent
        self._slots = slots
        self._pdf_workers = pdf_workers
        self._limits = limits
        self._pdf_job_fields = pdf_job_fields

    async def render_version(
        self, *, tenant: str, version_id: str, format: RenderFormat, data: dict[str, Any] | None = None
    ) -> tuple[Rendered, bool]:
        """The render of one of the tenant's versions, and whether it came from the cache."""
        content, load = await self._version(tenant, version_id)
        return await self._render(tenant, content, load, format, data)

    async def render_pinned(
        self,
        *,
        tenant: str,
        release_id: str,
        form_key: str,
        format: RenderFormat,
        data: dict[str, Any] | None = None,
    ) -> tuple[Rendered, bool]:
        """The render of the form version the tenant's release pins for `form_key`."""
        pin = await self._sources.pinned(tenant, release_id, form_key)
        if pin is None:
            raise NotFound(f"release {release_id!r} not found")
        source = pin.source
        if source is None:
            raise NotFound(f"release {release_id!r} does not include form {form_key!r}")

        async def load() -> RenderSource:
            return self._within_limits(source)

        return await self._render(tenant, source.content_hash, load, format, data)

    async def render_diff(
        self, *, tenant: str, version_id: str, against_id: str, format: DiffFormat
    ) -> tuple[Rendered, bool]:
        """The version with the fields added, removed and changed since `against_id` marked."""
        content, load = await self._version(tenant, version_id)
        against_content, load_against = await self._version(tenant, against_id)
        html_key = RenderKey(tenant, content, "diff-html", against_hash=against_content)

        async def html() -> Rendered:
            source, against = await load(), await load_against()
            return await self._off_loop(tenant, lambda: _diff_html(source, against, self._matcher))

        if format is DiffFormat.HTML:
            return await self._cache.get_or_render(html_key, html)

        async def pdf() -> Rendered:
            page, _ = await self._cache.get_or_render(html_key, html)
            return await self._pdf(tenant, page)

        pdf_key = RenderKey(tenant, content, "diff-pdf", against_hash=against_content)
        return await self._cache.get_or_render(pdf_key, pdf)

    async def _version(
        self, tenant: str, version_id: str
    ) -> tuple[str, Callable[[], Awaitable[RenderSource]]]:
        """The version's content hash, and how to load its definition when a render needs it."""
        known = self._hashes.get(tenant, version_id)
        if known is not None:
            return known, lambda: self._load(tenant, version_id)
        source = await self._load(tenant, version_id)
        self._hashes.put(tenant, version_id, source.content_hash)

        async def loaded() -> RenderSource:
            return source

        return source.content_hash, loaded

    async def _load(self, tenant: str, version_id: str) -> RenderSource:
        source = self._recent.get(tenant, version_id)
        if source is None:
            source = await self._sources.version(tenant, version_id)
            if source is None:
                raise NotFound(f"form version {version_id!r} not found")
            self._recent.put(tenant, version_id, source)
        return self._within_limits(source)

    def _within_limits(self, source: RenderSource) -> RenderSource:
        if source.field_count > self._limits.max_fields:
            raise Invalid(
                f"form version {source.id!r} has {source.field_count} fields; renders are limited to "
                f"{self._limits.max_fields} (PAGEFORGE_RENDER__MAX_FIELDS)"
            )
        return source

    async def _render(
        self,
        tenant: str,
        content: str,
        load: Callable[[], Awaitable[RenderSource]],
        format: RenderFormat,
        data: dict[str, Any] | None,
    ) -> tuple[Rendered, bool]:
        prefill = data_hash(data)
        html_key = RenderKey(tenant, content, RenderFormat.HTML, prefill)

        async def html() -> Rendered:
            source = await load()
            return await self._off_loop(tenant, lambda: _html(source, data, self._matcher))

        if format is RenderFormat.HTML:
            return await self._cache.get_or_render(html_key, html)
        if format is RenderFormat.JSON:

            async def tree() -> Rendered:
                source = await load()
                return await self._off_loop(tenant, lambda: _tree(source, data, self._matcher))

            return await self._cache.get_or_render(
                RenderKey(tenant, content, RenderFormat.JSON, prefill), tree
            )

        async def pdf() -> Rendered:
            if self._pdf_job_fields is not None:
                source = await load()
                if source.field_count > self._pdf_job_fields:
                    raise PdfJobRequired(source.id, source.field_count)
            page, _ = await self._cache.get_or_render(html_key, html)
            return await self._pdf(tenant, page)

        return await self._cache.get_or_render(RenderKey(tenant, content, RenderFormat.PDF, prefill), pdf)

    async def _off_loop(self, tenant: str, work: Callable[[], T]) -> T:
        async with self._slot(tenant):
            return await anyio.to_thread.run_sync(work)

    async def _pdf(self, tenant: str, page: Rendered) -> Rendered:
        limits = self._limits
        async with self._slot(tenant):
            try:
                pdf = await self._pdf_workers.render(
                    page.body.decode(), max_pages=limits.max_pdf_pages, timeout_s=limits.pdf_timeout_s
                )
            except TooManyPages:
                raise Invalid(
                    f"the PDF would have more than {limits.max_pdf_pages} pages "
                    "(PAGEFORGE_RENDER__MAX_PDF_PAGES); the HTML render has the whole form"
                ) from None
            except RenderTimedOut:
                raise RenderTooSlow(
                    f"the PDF was not finished within {limits.pdf_timeout_s:g} s "
                    "(PAGEFORGE_RENDER__PDF_TIMEOUT_S) and was stopped"
                ) from None
            except WorkerDied as exc:
                raise DependencyUnavailable(f"{exc}; try again") from None
        return Rendered(pdf, MEDIA_TYPES[RenderFormat.PDF])

    @asynccontextmanager
    async def _slot(self, tenant: str) -> AsyncIterator[None]:
        try:
            await self._slots.acquire(tenant)
        except RenderQueueFull as exc:
            raise TooManyRequests(
                f"too many renders at once: {exc}", retry_after_s=QUEUE_FULL_RETRY_S
            ) from None
        try:
            yield
        finally:
            self._slots.release(tenant)


def _definition_and_widgets(
    source: RenderSource, matcher: SemanticMatcher | None
) -> tuple[FormDefinition, WidgetMapping]:
    definition = import_native(source.definition)
    return definition, resolve_widgets(definition, matcher=matcher)


def _html(source: RenderSource, data: dict[str, Any] | None, matcher: SemanticMatcher | None) -> Rendered:
    definition, widgets = _definition_and_widgets(source, matcher)
    page = render_html(definition, widgets=widgets, data=data)
    return Rendered(page.encode(), MEDIA_TYPES[RenderFormat.HTML])


def _tree(source: RenderSource, data: dict[str, Any] | None, matcher: SemanticMatcher | None) -> Rendered:
    definition, widgets = _definition_and_widgets(source, matcher)
    tree = render_tree(definition, widgets=widgets, data=data)
    body = json.dumps(tree, ensure_ascii=False, separators=(",", ":")).encode()
    return Rendered(body, MEDIA_TYPES[RenderFormat.JSON])


def _diff_html(source: RenderSource, against: RenderSource, matcher: SemanticMatcher | None) -> Rendered:
    definition, widgets = _definition_and_widgets(source, matcher)
    old = import_native(against.definition)
    page = render_html(definition, widgets=widgets, diff=diff_definitions(old, definition), old=old)
    return Rendered(page.encode(), MEDIA_TYPES[RenderFormat.HTML])

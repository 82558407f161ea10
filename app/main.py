"""create_app(settings): the API of one process: every service (the default), one of them, or the gateway."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI

from app import __version__
from app.api import API_PREFIX
from app.auth import AuthenticateFirst, AuthFailures, TenantRateLimits, TokenTenants, VerifiedKeys
from app.cors import allow_cross_origin
from app.errors import document_problems, install_error_handlers
from app.events.stream import STREAM_PATH
from app.explorer.router import explorer_router
from app.formversions.jobs import INGEST_JOB_PATH
from app.gateway import create_gateway
from app.jobs.archive import ARCHIVE_TYPES
from app.jobs.runner import JobRunner
from app.observability import BodySizeLimitMiddleware, RequestContextMiddleware, RequestMetrics
from app.platform.router import health_router
from app.resources import Resources, lifespan
from app.services import SERVICES, Service, include_api, job_handlers
from app.settings import Settings
from app.tokens import TokenVerifier
from graph.jobs import JobRepository


def create_app(settings: Settings | None = None) -> FastAPI:
    """The PageForge API for the given settings (read from the environment when omitted)."""
    settings = settings or Settings()
    if settings.service == "gateway":
        return create_gateway(settings)
    services = list(SERVICES.values()) if settings.service == "all" else [SERVICES[settings.service]]
    app = FastAPI(
        title="PageForge" if settings.service == "all" else f"PageForge {settings.service}",
        version=__version__,
        summary="Form versions and releases in a lineage graph, similar layouts, renders.",
        lifespan=process_lifespan(settings, services),
        # A redirect would build its Location from the request's Host header: a wrong path is a 404.
        redirect_slashes=False,
    )
    app.state.verified_keys = VerifiedKeys(ttl_s=settings.api.key_cache_s)
    app.state.tokens = TokenVerifier(settings.oidc) if settings.oidc.issuers else None
    app.state.token_tenants = TokenTenants(ttl_s=settings.api.key_cache_s)
    app.state.rate_limits = TenantRateLimits(settings.api.rate_limit_per_s, settings.api.rate_limit_burst)
    app.state.auth_failures = AuthFailures.from_settings(settings.api)
    app.state.metrics = RequestMetrics()
    app.state.stream_paths = frozenset({API_PREFIX + STREAM_PATH})
    app.state.upload_types = {API_PREFIX + INGEST_JOB_PATH: ARCHIVE_TYPES}
    install_error_handlers(app)
    document_problems(app, api_also=(403,))
    app.add_middleware(AuthenticateFirst, prefix=API_PREFIX)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.api.max_body_bytes,
        larger={API_PREFIX + INGEST_JOB_PATH: settings.jobs.max_archive_bytes},
    )
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics)
    if settings.service == "all":  # one service of several: the gateway in front answers browsers
        allow_cross_origin(app, settings.api)
    app.include_router(health_router)
    app.include_router(explorer_router(settings.explorer))
    include_api(app, services)
    return app


def process_lifespan(
    settings: Settings, services: list[Service]
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The process's resources for its lifetime, and a runner of the jobs its services do; the token
    verifier's connections closed after."""

    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        uses = frozenset().union(*(service.uses for service in services))
        async with lifespan(settings, uses, app):
            resources: Resources = app.state.resources
            runner = None
            handlers = job_handlers(services, resources, app.state)
            if handlers:
                jobs = JobRunner(resources, JobRepository(resources.graph, API_PREFIX), handlers)
                runner = asyncio.create_task(jobs.run())
            try:
                yield
            finally:
                if runner is not None:
                    runner.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await runner
        if app.state.tokens is not None:
            await app.state.tokens.aclose()

    return run

"""create_app(settings): the gateway that mounts every service's router under /api/v1."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Depends, FastAPI

from app import __version__
from app.auth import TenantRateLimits, VerifiedKeys, current_tenant
from app.errors import install_error_handlers
from app.formversions.router import router as formversions_router
from app.lineage.router import router as lineage_router
from app.observability import BodySizeLimitMiddleware, RequestContextMiddleware, RequestMetrics
from app.platform.router import health_router
from app.platform.router import router as platform_router
from app.renders.router import router as renders_router
from app.resources import lifespan
from app.settings import Settings
from app.similarity.router import router as similarity_router
from app.sysversions.router import router as sysversions_router


def create_app(settings: Settings | None = None) -> FastAPI:
    """The PageForge API for the given settings (read from the environment when omitted)."""
    settings = settings or Settings()
    app = FastAPI(
        title="PageForge",
        version=__version__,
        summary="Form versions and releases in a lineage graph, similar layouts, renders.",
        lifespan=partial(lifespan, settings),
    )
    app.state.verified_keys = VerifiedKeys(ttl_s=settings.api.key_cache_s)
    app.state.rate_limits = TenantRateLimits(settings.api.rate_limit_per_s, settings.api.rate_limit_burst)
    app.state.metrics = RequestMetrics()
    install_error_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.api.max_body_bytes)
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics)

    api = APIRouter(prefix="/api/v1", dependencies=[Depends(current_tenant)])
    api.include_router(platform_router)
    api.include_router(formversions_router)
    api.include_router(sysversions_router)
    api.include_router(lineage_router)
    api.include_router(renders_router)
    api.include_router(similarity_router)
    app.include_router(health_router)
    app.include_router(api)
    return app

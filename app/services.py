"""The three services: which routers each serves under /api/v1 and what each opens besides Neo4j.

Run together (the default) or one process each behind the gateway, which finds a route's owner here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute
from starlette.datastructures import State

from app.api import API_PREFIX
from app.auth import current_tenant
from app.events.router import router as webhooks_router
from app.events.stream import router as events_router
from app.formversions.jobs import IngestJobs
from app.formversions.jobs import router as ingest_jobs_router
from app.formversions.router import router as formversions_router
from app.jobs.router import router as jobs_router
from app.jobs.runner import JobHandler
from app.lineage.router import router as lineage_router
from app.platform.router import router as platform_router
from app.renderer.jobs import RenderJobs
from app.renderer.router import router as renderer_router
from app.resources import EMBEDDER, VECTORS, Resources
from app.similarity.router import router as similarity_router
from app.sysversions.router import router as sysversions_router


@dataclass(frozen=True)
class Service:
    """One service: the routers it answers, and the dependencies (besides Neo4j) it opens."""

    name: str
    routers: tuple[APIRouter, ...]
    uses: frozenset[str]

    def routes(self) -> list[APIRoute]:
        return [route for router in self.routers for route in router.routes if isinstance(route, APIRoute)]


# Lineage (release drift included) reads only the graph of versions: it lives with the versions. The
# formversions process is the one that opens the layout index and runs the outbox relay; sysversions
# writes inline release forms with their outbox entry, and that relay indexes them. Webhooks live here too:
# this process delivers every service's events. So do jobs: it runs them (a bulk ingest needs the index).
FORMVERSIONS = Service(
    name="formversions",
    routers=(
        platform_router,
        formversions_router,
        lineage_router,
        similarity_router,
        webhooks_router,
        events_router,
        jobs_router,
        ingest_jobs_router,
    ),
    uses=frozenset({VECTORS, EMBEDDER}),
)
SYSVERSIONS = Service(name="sysversions", routers=(sysversions_router,), uses=frozenset())
# Custom component types are drawn as the closest known widget: a lookup with the model, no index.
RENDERER = Service(name="renderer", routers=(renderer_router,), uses=frozenset({EMBEDDER}))

SERVICES = {service.name: service for service in (FORMVERSIONS, SYSVERSIONS, RENDERER)}


def include_api(app: FastAPI, services: Iterable[Service]) -> None:
    """Add the services' routes under /api/v1, each request authenticated to its tenant."""
    # Each router straight into the app: FastAPI 0.163 matches a request against a nested router's routes
    # again at every level it is nested in.
    for service in services:
        for router in service.routers:
            app.include_router(router, prefix=API_PREFIX, dependencies=[Depends(current_tenant)])


class RouteOwners:
    """Which service answers a path under /api/v1, matched with the services' own route patterns."""

    def __init__(self, services: Iterable[Service]) -> None:
        self._routes = [
            (route.path_regex, route.methods, service.name)
            for service in services
            for route in service.routes()
        ]

    def owner(self, path: str, method: str) -> str | None:
        """The service with a route for this path (and method; by path alone it answers 405 itself)."""
        by_path = [(methods, name) for pattern, methods, name in self._routes if pattern.match(path)]
        for methods, name in by_path:
            if method in (methods or ()):
                return name
        return by_path[0][1] if by_path else None


def job_handlers(
    services: Iterable[Service], resources: Resources, app_state: State
) -> dict[str, JobHandler]:
    """The jobs this process does: bulk ingests where the layout index and its relay are, PDF renders where
    the renderer is."""
    names = {service.name for service in services}
    handlers: dict[str, JobHandler] = {}
    if FORMVERSIONS.name in names and resources.relay is not None:
        handlers["ingest"] = IngestJobs(resources)
    if RENDERER.name in names:
        handlers["render"] = RenderJobs(resources, app_state)
    return handlers

"""Bearer-key authentication: every /api/v1 request resolves to exactly one tenant."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.errors import Unauthorized
from app.resources import Resources
from graph.tenants import Tenant, TenantRepository

_bearer = HTTPBearer(auto_error=False, description="A tenant API key from `pageforge tenant create`.")


def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def current_tenant(
    resources: ResourcesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Tenant:
    """The tenant owning the request's API key; 401 when the key is missing or unknown."""
    if credentials is None:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    tenant = await TenantRepository(resources.graph).for_key(credentials.credentials)
    if tenant is None:
        raise Unauthorized("unknown API key")
    return tenant


TenantDep = Annotated[Tenant, Depends(current_tenant)]

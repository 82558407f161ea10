"""Bearer-key authentication: every /api/v1 request resolves to exactly one tenant."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.errors import Forbidden, TooManyRequests, Unauthorized
from app.resources import Resources
from graph.tenants import KeyHolder, Tenant, TenantRepository, hash_api_key

_bearer = HTTPBearer(auto_error=False, description="A tenant API key from `pageforge tenant create`.")


class VerifiedKeys:
    """Keys Neo4j confirmed (with tenant and scope), trusted for `ttl_s`: no graph round trip to authenticate.

    Only known keys are kept (a key issued a moment ago works at once), by hash, at most `max_keys`,
    the least recently used dropped first. A ttl of 0 asks Neo4j on every request.
    """

    def __init__(self, ttl_s: float, max_keys: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_keys = max_keys
        self._holders: OrderedDict[str, tuple[KeyHolder, float]] = OrderedDict()

    def get(self, key_hash: str) -> KeyHolder | None:
        entry = self._holders.get(key_hash)
        if entry is None:
            return None
        holder, expires = entry
        if time.monotonic() >= expires:
            del self._holders[key_hash]
            return None
        self._holders.move_to_end(key_hash)
        return holder

    def put(self, key_hash: str, holder: KeyHolder) -> None:
        if self.ttl_s <= 0:
            return
        self._holders[key_hash] = (holder, time.monotonic() + self.ttl_s)
        self._holders.move_to_end(key_hash)
        while len(self._holders) > self.max_keys:
            self._holders.popitem(last=False)


class TenantRateLimits:
    """A token bucket per tenant: `per_s` requests a second, up to `burst` at once; per_s 0 means no limit.

    In-process: with several processes, each allows the rate. Buckets of tenants not seen for a while
    are dropped first once `max_tenants` are kept (a dropped bucket starts full again).
    """

    def __init__(self, per_s: float, burst: int = 0, max_tenants: int = 10_000) -> None:
        self.per_s = per_s
        self.burst = float(burst or max(1, math.ceil(per_s)))
        self.max_tenants = max_tenants
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, tenant_id: str) -> None:
        """Spend one request of the tenant's bucket; TooManyRequests, saying when to retry, if it is empty."""
        if self.per_s <= 0:
            return
        now = time.monotonic()
        tokens, last = self._buckets.get(tenant_id, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.per_s)
        if tokens < 1:
            self._buckets[tenant_id] = (tokens, now)
            retry_after = (1 - tokens) / self.per_s
            raise TooManyRequests(
                f"more than {self.per_s:g} requests per second for this tenant; retry in {retry_after:.2f}s",
                retry_after_s=retry_after,
            )
        self._buckets[tenant_id] = (tokens - 1, now)
        self._buckets.move_to_end(tenant_id)
        while len(self._buckets) > self.max_tenants:
            self._buckets.popitem(last=False)


# Dependencies are `async def`: FastAPI runs a plain `def` one in a worker thread, a thread hop per request.
async def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def current_tenant(
    request: Request,
    resources: ResourcesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Tenant:
    """The tenant owning the request's API key; 401 when the key is missing or unknown, 429 over its rate."""
    if credentials is None:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    # Nothing is served from a graph that lacks a migration (503 naming it).
    graph = await resources.require_graph()
    verified: VerifiedKeys = request.app.state.verified_keys
    key_hash = hash_api_key(credentials.credentials)
    holder = verified.get(key_hash)
    if holder is None:
        holder = await TenantRepository(graph).for_hash(key_hash)
        if holder is None:
            raise Unauthorized("unknown API key")
        verified.put(key_hash, holder)
    limits: TenantRateLimits = request.app.state.rate_limits
    limits.take(holder.tenant.id)
    request.state.key_scope = holder.scope
    return holder.tenant


TenantDep = Annotated[Tenant, Depends(current_tenant)]


async def writing_tenant(request: Request, tenant: TenantDep) -> Tenant:
    """The request's tenant, when its API key may write; 403 for a read-only key."""
    if request.state.key_scope != "write":
        raise Forbidden(
            f"this API key of tenant {tenant.name!r} is read-only: writes need a key made without --read-only"
        )
    return tenant


WriterDep = Annotated[Tenant, Depends(writing_tenant)]

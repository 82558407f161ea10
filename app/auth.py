"""Bearer-key authentication: every /api/v1 request resolves to exactly one tenant."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from ipaddress import ip_address, ip_network
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes
from fastapi.security.utils import get_authorization_scheme_param
from starlette.types import ASGIApp, Receive, Send
from starlette.types import Scope as AsgiScope

from app.audit import credential_fields, security_event
from app.errors import Forbidden, TooManyRequests, Unauthorized, UnsupportedMediaType, known_error_response
from app.resources import Resources
from app.scopes import KEY_SCOPES, Scope
from app.settings import ApiSettings
from app.tokens import TokenVerifier, looks_like_jwt
from graph.database import Graph
from graph.errors import TenantNotFound
from graph.tenants import (
    SHOWN_PREFIX,
    STREAM_TOKEN_PREFIX,
    KeyHolder,
    Tenant,
    TenantRepository,
    hash_api_key,
)

# The query parameter that carries a stream token, where a browser's EventSource cannot send a header.
STREAM_TOKEN_PARAM = "stream_token"

_bearer = HTTPBearer(
    auto_error=False,
    description="A tenant API key from `pageforge tenant create`, or an access token (JWT) of a configured "
    "OIDC issuer. The scopes an operation needs are listed in its security requirement.",
)


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

    def clear(self) -> None:
        self._holders.clear()

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


class ClientAddresses:
    """Who a request comes from: its peer, unless the peer is a trusted proxy; then the right-most address
    in X-Forwarded-For that is not one (what the outermost trusted proxy saw; anything left of it the
    client may have written itself)."""

    def __init__(self, trusted: Iterable[str]) -> None:
        self.trusted = [ip_network(proxy, strict=False) for proxy in trusted]

    def trusts(self, address: str) -> bool:
        try:
            parsed = ip_address(address)
        except ValueError:
            return False
        return any(parsed in network for network in self.trusted)

    def of(self, request: Request) -> str:
        """The client address of the request ("" if the server was not told its peer)."""
        peer = request.client.host if request.client else ""
        if not self.trusted or not self.trusts(peer):
            return peer
        forwarded = [
            address.strip()
            for header in request.headers.getlist("x-forwarded-for")
            for address in header.split(",")
            if address.strip()
        ]
        untrusted = [address for address in forwarded if not self.trusts(address)]
        return untrusted[-1] if untrusted else (forwarded[0] if forwarded else peer)


class UnknownKeys:
    """Hashes of keys Neo4j did not know, answered 401 without asking again for `ttl_s` (0: always ask);
    at most `max_keys`, the oldest dropped first."""

    def __init__(self, ttl_s: float, max_keys: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_keys = max_keys
        self._expiry: OrderedDict[str, float] = OrderedDict()

    def __contains__(self, key_hash: object) -> bool:
        if not isinstance(key_hash, str) or key_hash not in self._expiry:
            return False
        if time.monotonic() >= self._expiry[key_hash]:
            del self._expiry[key_hash]
            return False
        return True

    def add(self, key_hash: str) -> None:
        if self.ttl_s <= 0:
            return
        self._expiry[key_hash] = time.monotonic() + self.ttl_s
        self._expiry.move_to_end(key_hash)
        while len(self._expiry) > self.max_keys:
            self._expiry.popitem(last=False)


class FailedAuthLimits:
    """A token bucket per client address that only failed authentications spend: `per_s` a second, up to
    `burst` at once (0: one second's worth); per_s 0 means no limit. Addresses not seen for a while are
    dropped first once `max_clients` are kept."""

    def __init__(self, per_s: float, burst: int = 0, max_clients: int = 10_000) -> None:
        self.per_s = per_s
        self.burst = float(burst or max(1, math.ceil(per_s)))
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _tokens(self, client: str, now: float) -> float:
        tokens, last = self._buckets.get(client, (self.burst, now))
        return min(self.burst, tokens + (now - last) * self.per_s)

    def check(self, client: str) -> None:
        """TooManyRequests, saying when to retry, if the address has no failure left to spend."""
        if self.per_s <= 0:
            return
        tokens = self._tokens(client, time.monotonic())
        if tokens < 1:
            retry_after = (1 - tokens) / self.per_s
            raise TooManyRequests(
                f"more than {self.per_s:g} failed authentications per second from this client address; "
                f"retry in {retry_after:.2f}s",
                retry_after_s=retry_after,
            )

    def failed(self, client: str) -> None:
        """Spend one failure of the address's budget."""
        if self.per_s <= 0:
            return
        now = time.monotonic()
        self._buckets[client] = (self._tokens(client, now) - 1, now)
        self._buckets.move_to_end(client)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)


@dataclass
class AuthFailures:
    """What a failed authentication costs its client, and what spares Neo4j: the per-address budget, and
    the unknown keys remembered."""

    addresses: ClientAddresses
    limits: FailedAuthLimits
    unknown: UnknownKeys

    @classmethod
    def from_settings(cls, api: ApiSettings) -> AuthFailures:
        return cls(
            addresses=ClientAddresses(api.trusted_proxies),
            limits=FailedAuthLimits(api.auth_failures_per_s, api.auth_failures_burst),
            unknown=UnknownKeys(api.unknown_key_cache_s),
        )


# Dependencies are `async def`: FastAPI runs a plain `def` one in a worker thread, a thread hop per request.
async def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


class TokenTenants:
    """Tenants by name, as tokens name them, remembered for `ttl_s` (0: asked every time)."""

    def __init__(self, ttl_s: float, max_tenants: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_tenants = max_tenants
        self._tenants: OrderedDict[str, tuple[Tenant, float]] = OrderedDict()

    async def named(self, graph: Graph, name: str) -> Tenant:
        entry = self._tenants.get(name)
        if entry is not None and time.monotonic() < entry[1]:
            return entry[0]
        try:
            tenant = await TenantRepository(graph).named(name)
        except TenantNotFound:
            raise Forbidden(f"the token names tenant {name!r}, which does not exist") from None
        if self.ttl_s > 0:
            self._tenants[name] = (tenant, time.monotonic() + self.ttl_s)
            self._tenants.move_to_end(name)
            while len(self._tenants) > self.max_tenants:
                self._tenants.popitem(last=False)
        return tenant


async def authenticate(request: Request) -> Tenant:
    """The tenant the request's API key or token speaks for, remembered in the request's state with the
    scopes it grants; 401 when the credential is missing or not valid, 403 for a token naming a tenant its
    issuer may not, 429 over the tenant's rate or, for a credential that is not already verified, over the
    client address's failed authentications; 503 when the graph cannot say."""
    known: Tenant | None = getattr(request.state, "tenant", None)
    if known is not None:
        return known
    failures: AuthFailures = request.app.state.auth_failures
    client = failures.addresses.of(request)
    scheme, key = get_authorization_scheme_param(request.headers.get("authorization"))
    stream_token = request.query_params.get(STREAM_TOKEN_PARAM)
    try:
        if stream_token is not None and not key:
            return await _authenticate_stream_token(request, stream_token, failures, client)
        return await _authenticate(request, scheme, key, failures, client)
    except (Unauthorized, Forbidden, TooManyRequests) as refused:
        event = {401: "auth.failed", 403: "auth.forbidden", 429: "auth.rate_limited"}[refused.status_code]
        security_event(
            event,
            reason=refused.detail,
            client=client,
            path=request.url.path,
            **credential_fields(key if scheme.lower() == "bearer" else (stream_token or "")),
        )
        raise


async def _authenticate(
    request: Request, scheme: str, key: str, failures: AuthFailures, client: str
) -> Tenant:
    if scheme.lower() != "bearer" or not key:
        failures.limits.check(client)
        failures.limits.failed(client)
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    resources: Resources = request.app.state.resources
    # Nothing is served from a graph that lacks a migration (503 naming it).
    graph = await resources.require_graph()
    if looks_like_jwt(key):
        return await _authenticate_token(request, graph, key, failures, client)
    verified: VerifiedKeys = request.app.state.verified_keys
    key_hash = hash_api_key(key)
    holder = verified.get(key_hash)
    if holder is None:
        # Only a key that needs a lookup waits for the address's budget: verified keys keep working.
        failures.limits.check(client)
        if key_hash not in failures.unknown:
            holder = await TenantRepository(graph).for_hash(key_hash)
        if holder is None:
            failures.unknown.add(key_hash)
            failures.limits.failed(client)
            raise Unauthorized("unknown API key")
        verified.put(key_hash, holder)
    if holder.expires_at is not None and datetime.now(UTC) >= holder.expires_at:
        failures.limits.failed(client)
        raise Unauthorized(f"API key expired at {holder.expires_at:%Y-%m-%dT%H:%M:%SZ}")
    limits: TenantRateLimits = request.app.state.rate_limits
    limits.take(holder.tenant.id)
    request.state.scopes = key_scopes(holder)
    request.state.credential = "read-only API key" if holder.scope == "read" else "API key"
    request.state.principal = f"api_key:{key[:SHOWN_PREFIX]}"
    request.state.tenant = holder.tenant
    return holder.tenant


async def _authenticate_stream_token(
    request: Request, token: str, failures: AuthFailures, client: str
) -> Tenant:
    """A stream token (POST /api/v1/events/stream-tokens) opens the paths in app.state.stream_paths only."""
    failures.limits.check(client)
    stream_paths: frozenset[str] = request.app.state.stream_paths
    if request.url.path not in stream_paths:
        failures.limits.failed(client)
        raise Unauthorized(f"a {STREAM_TOKEN_PARAM} opens only {', '.join(sorted(stream_paths))}")
    resources: Resources = request.app.state.resources
    graph = await resources.require_graph()
    token_hash = hash_api_key(token)
    holder = None
    if token.startswith(STREAM_TOKEN_PREFIX) and token_hash not in failures.unknown:
        holder = await TenantRepository(graph).for_stream_hash(token_hash)
    if holder is None:
        failures.unknown.add(token_hash)
        failures.limits.failed(client)
        raise Unauthorized("unknown stream token")
    if holder.expires_at is not None and datetime.now(UTC) >= holder.expires_at:
        failures.limits.failed(client)
        raise Unauthorized(
            f"stream token expired at {holder.expires_at:%Y-%m-%dT%H:%M:%SZ}: get a new one with a key"
        )
    limits: TenantRateLimits = request.app.state.rate_limits
    limits.take(holder.tenant.id)
    request.state.scopes = key_scopes(holder)
    request.state.credential = "stream token"
    request.state.principal = f"stream_token:{token[:SHOWN_PREFIX]}"
    request.state.tenant = holder.tenant
    return holder.tenant


def key_scopes(holder: KeyHolder) -> frozenset[Scope]:
    """What an API key grants: the scopes it was issued with, or those of its kind."""
    if holder.scopes is None:
        return KEY_SCOPES[holder.scope]
    known = {scope.value for scope in Scope}
    return frozenset(Scope(name) for name in holder.scopes if name in known)


async def _authenticate_token(
    request: Request, graph: Graph, token: str, failures: AuthFailures, client: str
) -> Tenant:
    failures.limits.check(client)
    verifier: TokenVerifier | None = request.app.state.tokens
    try:
        if verifier is None:
            raise Unauthorized("bearer tokens are not accepted here: no OIDC issuer is configured")
        principal = await verifier.verify(token)
        tenants: TokenTenants = request.app.state.token_tenants
        tenant = await tenants.named(graph, principal.tenant_name)
    except (Unauthorized, Forbidden):
        failures.limits.failed(client)
        raise
    limits: TenantRateLimits = request.app.state.rate_limits
    limits.take(tenant.id)
    request.state.scopes = principal.scopes
    request.state.credential = "token"
    request.state.principal = f"token:{principal.issuer}#{principal.subject}"
    request.state.tenant = tenant
    return tenant


async def current_tenant(
    request: Request,
    # Declared for the OpenAPI document (the bearer scheme); authenticate() reads the header itself.
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Tenant:
    """The request's tenant (AuthenticateFirst has usually found it before the body was read)."""
    return await authenticate(request)


def _check_body_type(request: Request) -> None:
    """415 for a body that is not UTF-8 JSON by its Content-Type (none at all is read as JSON), but on the
    paths of app.state.upload_types, which take the media types listed there too."""
    headers = request.headers
    if headers.get("content-length", "0") == "0" and "transfer-encoding" not in headers:
        return
    content_type = headers.get("content-type")
    if content_type is None:
        return
    media, *options = (part.strip() for part in content_type.split(";"))
    media = media.lower()
    params = {
        name.strip().lower(): value.strip().strip('"')
        for name, _, value in (o.partition("=") for o in options)
    }
    uploads: dict[str, frozenset[str]] = request.app.state.upload_types
    if media in uploads.get(request.url.path, ()):
        return
    if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        raise UnsupportedMediaType(
            f"request bodies are JSON: send 'Content-Type: application/json', not {media!r}"
        )
    charset = params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise UnsupportedMediaType(f"JSON bodies are UTF-8, not charset {charset!r}")


class AuthenticateFirst:
    """Authenticates every /api/v1 request, and checks its body's media type, before anything reads the
    body: a caller without a valid key gets 401 (or 429) whatever it sent, and its body is never parsed."""

    def __init__(self, app: ASGIApp, *, prefix: str) -> None:
        self.app = app
        self.prefix = prefix + "/"

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        request = Request(scope)  # without `receive`: nothing here can read the body
        try:
            await authenticate(request)
            _check_body_type(request)
        except Exception as exc:
            response = known_error_response(exc, request)
            if response is None:
                raise
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


TenantDep = Annotated[Tenant, Depends(current_tenant)]


async def scoped_tenant(
    security: SecurityScopes,
    request: Request,
    # Declared for the OpenAPI document (the scopes the bearer credential needs), as in current_tenant.
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Tenant:
    """The request's tenant, when its credential grants every scope the endpoint needs; 403 naming the
    first it lacks."""
    # Not through TenantDep: FastAPI caches a dependency per set of scopes, so it would run twice.
    tenant = await authenticate(request)
    granted: frozenset[Scope] = request.state.scopes
    for needed in security.scopes:
        if needed not in granted:
            hint = (
                ": writes need a key made without --read-only"
                if request.state.credential.startswith("read-only")
                else ""
            )
            security_event(
                "auth.forbidden",
                reason=f"lacks scope {needed}",
                missing_scope=str(needed),
                tenant=tenant.name,
                path=request.url.path,
                credential=request.state.credential,
            )
            raise Forbidden(
                f"this {request.state.credential} of tenant {tenant.name!r} lacks scope '{needed}'{hint}",
                missing_scope=str(needed),
            )
    return tenant


FormsReader = Annotated[Tenant, Security(scoped_tenant, scopes=[Scope.FORMS_READ])]
FormsWriter = Annotated[Tenant, Security(scoped_tenant, scopes=[Scope.FORMS_WRITE])]
ReleasesWriter = Annotated[Tenant, Security(scoped_tenant, scopes=[Scope.RELEASES_WRITE])]
RendersReader = Annotated[Tenant, Security(scoped_tenant, scopes=[Scope.RENDERS_READ])]
Admin = Annotated[Tenant, Security(scoped_tenant, scopes=[Scope.ADMIN])]

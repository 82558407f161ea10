"""OAuth2 access tokens (JWTs) from the configured OIDC issuers: each issuer's signing keys discovered and
cached, every claim that matters checked, the tenant and scopes read from the token."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from app.errors import Forbidden, Unauthorized
from app.scopes import Scope, granted_scopes
from app.settings import OidcIssuerSettings, OidcSettings

logger = logging.getLogger(__name__)

# Claims a token must carry to be considered at all.
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud"]
# Backoff after failed key fetches: doubling from this, up to the cap, with jitter.
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 300.0
# A JWKS larger than this is refused (a misconfigured or hostile endpoint must not fill memory).
MAX_DOCUMENT_BYTES = 1_000_000


def looks_like_jwt(credential: str) -> bool:
    """A compact JWS: three base64url parts (an API key has none of its dots)."""
    return credential.count(".") == 2


@dataclass(frozen=True)
class TokenPrincipal:
    """Who a verified token speaks for."""

    issuer: str
    subject: str | None
    tenant_name: str
    scopes: frozenset[Scope]
    key_id: str | None


class KeyFetchFailed(RuntimeError):
    """An issuer's discovery document or key set could not be fetched or read."""


class IssuerKeys:
    """One issuer's signing keys by key id. Fetched on first use, again when a token names a key id not
    held (at most every `min_refresh_s`) or when older than `max_age_s`. A failed fetch keeps the keys held
    and backs off; fetches run one at a time and never block the event loop (httpx, async)."""

    def __init__(
        self,
        issuer: str,
        client: httpx.AsyncClient,
        *,
        min_refresh_s: float,
        max_age_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self._client = client
        self._min_refresh_s = min_refresh_s
        self._max_age_s = max_age_s
        self._clock = clock
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._jwks_uri: str | None = None
        self._fetched_at: float | None = None
        self._next_fetch = 0.0
        self._failures = 0
        self._lock = asyncio.Lock()

    @property
    def key_ids(self) -> set[str | None]:
        return set(self._keys)

    def _wants_fetch(self, kid: str | None) -> bool:
        now = self._clock()
        stale = self._fetched_at is None or now - self._fetched_at > self._max_age_s
        return (stale or kid not in self._keys) and now >= self._next_fetch

    async def key(self, kid: str | None) -> jwt.PyJWK | None:
        """The key with this id (None when the token names none and the issuer has exactly one)."""
        if self._wants_fetch(kid):
            async with self._lock:
                if self._wants_fetch(kid):
                    await self._fetch()
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        return self._keys.get(kid)

    async def _fetch(self) -> None:
        try:
            if self._jwks_uri is None:
                discovery = await self._get_json(f"{self.issuer}/.well-known/openid-configuration")
                if discovery.get("issuer") != self.issuer:
                    raise KeyFetchFailed(f"its discovery document names issuer {discovery.get('issuer')!r}")
                jwks_uri = discovery.get("jwks_uri")
                if not isinstance(jwks_uri, str):
                    raise KeyFetchFailed("its discovery document has no jwks_uri")
                self._jwks_uri = jwks_uri
            keys = _signing_keys(await self._get_json(self._jwks_uri))
        except (KeyFetchFailed, httpx.HTTPError) as exc:
            self._failures += 1
            delay = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (self._failures - 1)) * random.uniform(0.8, 1.2)
            self._next_fetch = self._clock() + delay
            logger.warning(
                "keys of issuer %s not fetched (%s); keeping the %d held, next try in %.0f s",
                self.issuer,
                exc,
                len(self._keys),
                delay,
            )
            return
        self._keys = keys
        self._failures = 0
        self._fetched_at = self._clock()
        self._next_fetch = self._fetched_at + self._min_refresh_s

    async def _get_json(self, url: str) -> dict[str, Any]:
        response = await self._client.get(url, follow_redirects=False)
        if response.status_code != 200:
            raise KeyFetchFailed(f"{url} answered {response.status_code}")
        if len(response.content) > MAX_DOCUMENT_BYTES:
            raise KeyFetchFailed(f"{url} sent more than {MAX_DOCUMENT_BYTES} bytes")
        try:
            document = response.json()
        except ValueError as exc:
            raise KeyFetchFailed(f"{url} did not send JSON") from exc
        if not isinstance(document, dict):
            raise KeyFetchFailed(f"{url} did not send a JSON object")
        return document


def _signing_keys(jwks: dict[str, Any]) -> dict[str | None, jwt.PyJWK]:
    """The key set's signature keys by id; encryption keys, and keys PyJWT cannot use, are left out."""
    found: dict[str | None, jwt.PyJWK] = {}
    entries = jwks.get("keys")
    if not isinstance(entries, list):
        raise KeyFetchFailed("its key set has no keys")
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK(entry)
        except (jwt.PyJWKError, jwt.InvalidKeyError):
            continue
        found[key.key_id] = key
    return found


class TokenVerifier:
    """Verifies access tokens against the configured issuers (none configured: every token is refused)."""

    def __init__(self, settings: OidcSettings, client: httpx.AsyncClient | None = None) -> None:
        self._client = client or httpx.AsyncClient(timeout=settings.fetch_timeout_s)
        self._issuers: dict[str, OidcIssuerSettings] = {issuer.issuer: issuer for issuer in settings.issuers}
        self._keys = {
            name: IssuerKeys(
                name,
                self._client,
                min_refresh_s=settings.jwks_min_refresh_s,
                max_age_s=settings.jwks_max_age_s,
            )
            for name in self._issuers
        }

    async def aclose(self) -> None:
        await self._client.aclose()

    async def verify(self, token: str) -> TokenPrincipal:
        """The principal of a valid token; Unauthorized (saying why) for any token that is not, Forbidden
        for a valid token naming a tenant its issuer may not name."""
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            raise Unauthorized("malformed bearer token") from None
        issuer = self._issuers.get(str(unverified.get("iss")))
        if issuer is None:
            raise Unauthorized("token from an issuer PageForge does not accept")
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in issuer.algorithms:
            raise Unauthorized(f"token algorithm {algorithm!r} is not accepted from this issuer")
        if kid is not None and not isinstance(kid, str):
            raise Unauthorized("token key id is not a string")
        key = await self._keys[issuer.issuer].key(kid)
        if key is None:
            raise Unauthorized("token signed with a key its issuer does not publish")
        claims = _checked_claims(token, key, issuer)
        tenant = claims.get(issuer.tenant_claim)
        if not isinstance(tenant, str) or not tenant:
            raise Unauthorized(f"token has no {issuer.tenant_claim!r} claim naming a tenant")
        if tenant not in issuer.tenants:
            raise Forbidden(f"tokens of this issuer may not name tenant {tenant!r}")
        subject = claims.get("sub")
        return TokenPrincipal(
            issuer=issuer.issuer,
            subject=subject if isinstance(subject, str) else None,
            tenant_name=tenant,
            scopes=granted_scopes(claims),
            key_id=kid,
        )


def _checked_claims(token: str, key: jwt.PyJWK, issuer: OidcIssuerSettings) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=issuer.algorithms,
            audience=issuer.audience,
            issuer=issuer.issuer,
            leeway=issuer.leeway_s,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired") from None
    except jwt.ImmatureSignatureError:
        raise Unauthorized("token not valid yet") from None
    except jwt.InvalidAudienceError:
        raise Unauthorized(f"token is not for audience {issuer.audience!r}") from None
    except jwt.MissingRequiredClaimError as exc:
        raise Unauthorized(f"token lacks the {exc.claim!r} claim") from None
    except jwt.InvalidSignatureError:
        raise Unauthorized("token signature does not verify") from None
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"invalid token ({type(exc).__name__})") from None
    return claims

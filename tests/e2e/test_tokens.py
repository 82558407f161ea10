"""Access tokens from a configured OIDC issuer, and every way a token can be wrong: tokens signed here with
keys made here, their keys published by a key server on loopback (discovery document and JWKS, nothing
else: the tokens are made by the tests). Not one mutated token reaches a tenant's data."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import OidcIssuerSettings, OidcSettings
from app.tokens import IssuerKeys
from graph.server import LocalNeo4jServer
from tests.conftest import settings_for
from tests.e2e.conftest import TenantKey, create_tenant

AUDIENCE = "pageforge"


class KeyServer:
    """An issuer's discovery document and key set on loopback; counts the key set's fetches and can be
    made to fail or to answer slowly."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {
            "k1": rsa.generate_private_key(public_exponent=65537, key_size=2048)
        }
        self.jwks_fetches = 0
        self.failing = False
        self.delay_s = 0.0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": server.issuer, "jwks_uri": f"{server.issuer}/jwks"}
                elif self.path == "/jwks":
                    server.jwks_fetches += 1
                    time.sleep(server.delay_s)
                    if server.failing:
                        self.send_error(500)
                        return
                    body = {"keys": [server.public_jwk(kid) for kid in server.keys]}
                else:
                    self.send_error(404)
                    return
                payload = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self._http.server_address[1]}"
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    def public_jwk(self, kid: str) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.keys[kid].public_key()))
        return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}

    def public_pem(self, kid: str = "k1") -> bytes:
        return (
            self.keys[kid]
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()


def claims(issuer: str, tenant: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": issuer,
        "aud": [AUDIENCE, "account"],
        "sub": "service-account-ci",
        "iat": now,
        "exp": now + 300,
        "pageforge_tenant": tenant,
        "scope": "openid forms:read forms:write renders:read",
    }
    return {name: value for name, value in {**base, **changes}.items() if value is not None}


def signed(server: KeyServer, payload: dict[str, Any], kid: str | None = "k1", **headers: Any) -> str:
    key = server.keys["k1" if kid is None or kid not in server.keys else kid]
    extra = {"kid": kid} if kid is not None else {}
    return jwt.encode(payload, key, algorithm="RS256", headers={**extra, **headers})


def b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hs256(payload: dict[str, Any], secret: bytes) -> str:
    """Signed by hand: PyJWT itself refuses to use a public key as an HMAC secret."""
    signing_input = f"{b64({'alg': 'HS256', 'typ': 'JWT', 'kid': 'k1'})}.{b64(payload)}"
    return f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


@pytest.fixture(scope="module")
def issuers() -> Iterator[tuple[KeyServer, KeyServer]]:
    """The configured issuer's key server, and one of an issuer PageForge is not configured for."""
    trusted, stranger = KeyServer(), KeyServer()
    yield trusted, stranger
    trusted.close()
    stranger.close()


@pytest.fixture(scope="module")
def world(
    neo4j_server: LocalNeo4jServer,
    tmp_path_factory: pytest.TempPathFactory,
    issuers: tuple[KeyServer, KeyServer],
) -> Iterator[tuple[TestClient, TenantKey, TenantKey]]:
    """An app trusting the issuer for tenant `mine` only; `theirs` exists but that issuer may not name it."""
    trusted, _ = issuers
    base = settings_for(neo4j_server.bolt_uri, tmp_path_factory.mktemp("tokens"))
    base.api.auth_failures_per_s = 0  # every mutation below fails from one address: count none of them
    mine, theirs = create_tenant(base), create_tenant(base)
    oidc = OidcSettings(
        issuers=[OidcIssuerSettings(issuer=trusted.issuer, audience=AUDIENCE, tenants=[mine.name])],
        jwks_min_refresh_s=1.0,
    )
    with TestClient(create_app(base.model_copy(update={"oidc": oidc}))) as client:
        form = {"key": "only-mine", "title": "Mine", "layout": [{"node": "field", "key": "name"}]}
        created = client.post(
            "/api/v1/forms/only-mine/versions", headers=mine.headers, json={"definition": form}
        )
        assert created.status_code == 201, created.text
        yield client, mine, theirs


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_valid_token_reads_its_tenant_and_its_scopes_decide_what_it_may_do(
    world: tuple[TestClient, TenantKey, TenantKey], issuers: tuple[KeyServer, KeyServer]
) -> None:
    client, mine, _ = world
    trusted, _ = issuers
    token = signed(trusted, claims(trusted.issuer, mine.name))
    assert client.get("/api/v1/tenant", headers=bearer(token)).json()["name"] == mine.name
    forms = client.get("/api/v1/forms", headers=bearer(token))
    assert [form["key"] for form in forms.json()["items"]] == ["only-mine"]
    # forms:write is granted, releases:write is not.
    version = {"definition": {"key": "t2", "title": "T2", "layout": [{"node": "field", "key": "x"}]}}
    assert client.post("/api/v1/forms/t2/versions", headers=bearer(token), json=version).status_code == 201
    refused = client.post(
        "/api/v1/systems/portal/releases",
        headers=bearer(token),
        json={"version": "1", "forms": [{"form_key": "t2", "definition": version["definition"]}]},
    )
    assert refused.status_code == 403, refused.text
    assert refused.json()["missing_scope"] == "releases:write"
    assert "lacks scope 'releases:write'" in refused.json()["detail"]
    # The same scopes as `scp`, a list (Azure AD and others).
    scp = claims(trusted.issuer, mine.name, scope=None, scp=["forms:read"])
    assert client.get("/api/v1/forms", headers=bearer(signed(trusted, scp))).status_code == 200
    latest = forms.json()["items"][0]["latest_version_id"]
    render = client.get(f"/api/v1/form-versions/{latest}/render", headers=bearer(signed(trusted, scp)))
    assert render.status_code == 403
    assert render.json()["missing_scope"] == "renders:read"


def mutations(trusted: KeyServer, stranger: KeyServer, tenant: str, other: str) -> dict[str, tuple[str, int]]:
    """Each wrong token, and the status it must get."""
    good = claims(trusted.issuer, tenant)
    header_payload = signed(trusted, good).rsplit(".", 1)[0]
    now = int(time.time())
    return {
        "alg none": (f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': 'k1'})}.{b64(good)}.", 401),
        "HS256 keyed with the issuer's public key": (hs256(good, trusted.public_pem()), 401),
        "unknown kid": (signed(trusted, good, kid="no-such-key"), 401),
        "kid path injection": (signed(trusted, good, kid="../../../../etc/passwd"), 401),
        "kid URL injection": (signed(trusted, good, kid=f"{stranger.issuer}/jwks"), 401),
        "jku pointing elsewhere": (signed(trusted, good, jku=f"{stranger.issuer}/jwks"), 200),
        "expired": (signed(trusted, {**good, "iat": now - 3600, "exp": now - 600}), 401),
        "not yet valid": (signed(trusted, {**good, "nbf": now + 600}), 401),
        "no exp": (signed(trusted, claims(trusted.issuer, tenant, exp=None)), 401),
        "wrong iss": (signed(trusted, {**good, "iss": f"{trusted.issuer}/other"}), 401),
        "wrong aud": (signed(trusted, {**good, "aud": "account"}), 401),
        "stripped signature": (f"{header_payload}.", 401),
        "signature of another token": (
            f"{header_payload}.{signed(trusted, {**good, 'sub': 'x'}).rsplit('.', 1)[1]}",
            401,
        ),
        "payload altered after signing": (
            ".".join(
                [
                    header_payload.split(".")[0],
                    b64({**good, "pageforge_tenant": other}),
                    signed(trusted, good).rsplit(".", 1)[1],
                ]
            ),
            401,
        ),
        "valid, from an issuer not configured": (signed(stranger, claims(stranger.issuer, tenant)), 401),
        "stranger's key under the trusted issuer": (signed(stranger, good), 401),
        "tenant the issuer may not name": (signed(trusted, {**good, "pageforge_tenant": other}), 403),
        "no tenant claim": (signed(trusted, claims(trusted.issuer, tenant, pageforge_tenant=None)), 401),
        "not a JWT at all": ("a.b.c", 401),
    }


def test_every_mutated_token_is_refused_and_reaches_no_data(
    world: tuple[TestClient, TenantKey, TenantKey], issuers: tuple[KeyServer, KeyServer]
) -> None:
    client, mine, theirs = world
    trusted, stranger = issuers
    for name, (token, status) in mutations(trusted, stranger, mine.name, theirs.name).items():
        for path in ("/api/v1/forms", "/api/v1/tenant"):
            response = client.get(path, headers=bearer(token))
            assert response.status_code == status, (name, path, response.text)
            if status != 200:
                assert response.headers["content-type"] == "application/problem+json", name
                assert "only-mine" not in response.text, name


def test_a_failed_key_fetch_keeps_the_keys_held_and_backs_off(issuers: tuple[KeyServer, KeyServer]) -> None:
    trusted, _ = issuers
    now = [1000.0]

    async def scenario() -> None:
        async with httpx.AsyncClient(timeout=5) as http:
            keys = IssuerKeys(trusted.issuer, http, min_refresh_s=10, max_age_s=3600, clock=lambda: now[0])
            assert await keys.key("k1") is not None
            fetched = trusted.jwks_fetches
            trusted.failing = True
            try:
                now[0] += 11  # past the refresh interval: an unknown kid refetches, and it fails
                assert await keys.key("rotated") is None
                assert trusted.jwks_fetches == fetched + 1
                assert await keys.key("k1") is not None  # the keys held survive the failure
                assert await keys.key("rotated") is None  # backing off: no new fetch yet
                assert trusted.jwks_fetches == fetched + 1
                now[0] += 2  # past the first backoff (about 1 s)
                trusted.failing = False
                trusted.keys["rotated"] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                assert await keys.key("rotated") is not None
            finally:
                trusted.failing = False
                trusted.keys.pop("rotated", None)

    asyncio.run(scenario())


def test_tokens_with_unknown_key_ids_refetch_keys_at_a_bounded_rate(
    world: tuple[TestClient, TenantKey, TenantKey], issuers: tuple[KeyServer, KeyServer]
) -> None:
    client, mine, _ = world
    trusted, _ = issuers
    started, fetched = time.monotonic(), trusted.jwks_fetches
    for _ in range(40):
        token = signed(trusted, claims(trusted.issuer, mine.name), kid=f"random-{uuid.uuid4().hex}")
        assert client.get("/api/v1/forms", headers=bearer(token)).status_code == 401
    elapsed = time.monotonic() - started
    # jwks_min_refresh_s is 1: at most one fetch a second, plus the one that may start the window.
    assert trusted.jwks_fetches - fetched <= elapsed / 1.0 + 1


def test_fetching_keys_does_not_block_the_event_loop(issuers: tuple[KeyServer, KeyServer]) -> None:
    trusted, _ = issuers

    async def scenario() -> tuple[float, float]:
        ticks: list[float] = []

        async def ticker() -> None:
            while True:
                ticks.append(time.perf_counter())
                await asyncio.sleep(0.01)

        async with httpx.AsyncClient(timeout=5) as http:
            keys = IssuerKeys(trusted.issuer, http, min_refresh_s=0, max_age_s=3600)
            running = asyncio.create_task(ticker())
            trusted.delay_s = 1.0
            try:
                began = time.perf_counter()
                assert await keys.key("k1") is not None
                took = time.perf_counter() - began
            finally:
                trusted.delay_s = 0.0
                running.cancel()
        gaps = [later - earlier for earlier, later in itertools.pairwise(ticks)]
        return took, max(gaps)

    took, worst_gap = asyncio.run(scenario())
    assert took >= 1.0
    assert worst_gap < took / 4, f"the loop stalled {worst_gap:.2f}s during a {took:.2f}s fetch"


def test_an_issuer_must_be_https_and_sign_asymmetrically() -> None:
    with pytest.raises(ValueError, match="https"):
        OidcIssuerSettings(issuer="http://idp.example/realms/x", tenants=["a"])
    with pytest.raises(ValueError, match="asymmetric"):
        OidcIssuerSettings(issuer="https://idp.example/realms/x", tenants=["a"], algorithms=["HS256"])
    with pytest.raises(ValueError, match="asymmetric"):
        OidcIssuerSettings(issuer="https://idp.example/realms/x", tenants=["a"], algorithms=["none"])


def test_security_events_are_logged_on_their_own_logger_without_secrets(
    world: tuple[TestClient, TenantKey, TenantKey],
    issuers: tuple[KeyServer, KeyServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, mine, theirs = world
    trusted, _ = issuers
    expired = signed(trusted, claims(trusted.issuer, mine.name, exp=int(time.time()) - 600))
    narrow = signed(trusted, claims(trusted.issuer, mine.name, scope="forms:read"))
    unknown_key = "pf_" + "x" * 40
    with caplog.at_level(logging.INFO, logger="pageforge.audit"):
        assert client.get("/api/v1/forms", headers=bearer(expired)).status_code == 401
        assert client.get("/api/v1/forms", headers=bearer(unknown_key)).status_code == 401
        assert (
            client.get("/api/v1/forms", headers={"Authorization": f"Bearer {theirs.key}x"}).status_code == 401
        )
        body = {"definition": {"key": "n", "title": "N", "layout": []}}
        assert client.post("/api/v1/forms/n/versions", headers=bearer(narrow), json=body).status_code == 403
    events = [record.fields for record in caplog.records if record.name == "pageforge.audit"]  # type: ignore[attr-defined]
    assert [event["event"] for event in events] == [
        "auth.failed",
        "auth.failed",
        "auth.failed",
        "auth.forbidden",
    ]
    assert events[0]["reason"] == "token expired"
    assert (events[0]["token_iss"], events[0]["token_kid"]) == (trusted.issuer, "k1")
    assert events[1]["key_prefix"] == unknown_key[:10]
    assert events[3]["missing_scope"] == "forms:write"
    assert events[3]["tenant"] == mine.name
    logged = caplog.text + json.dumps(events)
    for secret in (expired, narrow, unknown_key, theirs.key):
        assert secret not in logged
        assert secret.rsplit(".", 1)[-1] not in logged  # not even a token's signature

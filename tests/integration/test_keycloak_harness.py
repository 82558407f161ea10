"""tests/keycloak.py: a real Keycloak on loopback issues the tokens deploy/keycloak/*.json describe."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from tests.keycloak import (
    ACCESS_TOKEN_LIFESPAN_S,
    ALICE,
    ALICE_PASSWORD,
    AUDIENCE,
    CI_CLIENT,
    CI_SECRET,
    CLI_CLIENT,
    OTHER_CLIENT,
    OTHER_REALM,
    OTHER_SECRET,
    REALM,
    TENANT,
    TENANT_CLAIM,
    KeycloakError,
    LocalKeycloak,
)

pytestmark = pytest.mark.slow


def claims(token: str) -> dict[str, Any]:
    """The JWT's payload, unverified."""
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


def audiences(token_claims: dict[str, Any]) -> list[str]:
    aud = token_claims["aud"]
    return [aud] if isinstance(aud, str) else list(aud)


def test_client_credentials_token_has_the_pinned_issuer_audience_tenant_and_default_scopes(
    keycloak: LocalKeycloak,
) -> None:
    token = claims(keycloak.token(CI_CLIENT, CI_SECRET))

    assert token["iss"] == keycloak.issuer(REALM) == f"http://127.0.0.1:{keycloak.port}/realms/pageforge"
    assert AUDIENCE in audiences(token)
    assert token[TENANT_CLAIM] == TENANT
    assert token["azp"] == CI_CLIENT
    assert token["sub"]
    assert token["exp"] - token["iat"] == ACCESS_TOKEN_LIFESPAN_S
    scopes = token["scope"].split()
    assert {"forms:read", "renders:read"} <= set(scopes)
    assert not {"forms:write", "releases:write", "admin"} & set(scopes)


def test_optional_scopes_only_when_asked_for(keycloak: LocalKeycloak) -> None:
    scopes = claims(keycloak.token(CI_CLIENT, CI_SECRET, scope="forms:write"))["scope"].split()

    assert {"forms:write", "forms:read", "renders:read"} <= set(scopes)
    assert "releases:write" not in scopes
    assert "admin" not in scopes


def test_the_issuer_ignores_the_requests_host(keycloak: LocalKeycloak) -> None:
    response = httpx.get(keycloak.discovery_url(REALM), headers={"Host": "evil.example:9999"}, timeout=10)

    assert response.json()["issuer"] == keycloak.issuer(REALM)
    assert response.json()["jwks_uri"] == keycloak.jwks_url(REALM)


def test_a_token_of_the_other_realm_has_the_other_issuer(keycloak: LocalKeycloak) -> None:
    token = claims(keycloak.token(OTHER_CLIENT, OTHER_SECRET, realm=OTHER_REALM))

    assert token["iss"] == keycloak.issuer(OTHER_REALM) != keycloak.issuer(REALM)
    assert AUDIENCE in audiences(token)
    assert token[TENANT_CLAIM] == TENANT


def test_password_grant_for_alice(keycloak: LocalKeycloak) -> None:
    token = claims(keycloak.password_token(CLI_CLIENT, ALICE, ALICE_PASSWORD, scope="releases:write"))

    assert token["iss"] == keycloak.issuer(REALM)
    assert token["preferred_username"] == ALICE
    assert token["azp"] == CLI_CLIENT
    assert AUDIENCE in audiences(token)
    assert token[TENANT_CLAIM] == TENANT
    assert {"forms:read", "renders:read", "releases:write"} <= set(token["scope"].split())


def test_wrong_credentials_are_refused(keycloak: LocalKeycloak) -> None:
    with pytest.raises(KeycloakError, match="401"):
        keycloak.token(CI_CLIENT, "not-the-secret")
    with pytest.raises(KeycloakError, match="invalid_grant"):
        keycloak.password_token(CLI_CLIENT, ALICE, "not-the-password")

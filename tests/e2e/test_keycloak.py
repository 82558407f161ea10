"""PageForge with a real identity provider: Keycloak on loopback (tests/keycloak.py, realms in
deploy/keycloak) issues access tokens over HTTP, and PageForge, configured with the realm as its issuer,
accepts them with their scopes, and refuses expired ones, another realm's, and the realm's tokens that are
not meant for it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

import jwt
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.resources import open_graph
from app.settings import OidcIssuerSettings, OidcSettings
from graph.errors import TenantExists
from graph.server import LocalNeo4jServer
from graph.tenants import TenantRepository
from tests.conftest import settings_for
from tests.keycloak import (
    ALICE,
    ALICE_PASSWORD,
    AUDIENCE,
    CI_CLIENT,
    CI_SECRET,
    CLI_CLIENT,
    OTHER_CLIENT,
    OTHER_REALM,
    OTHER_SECRET,
    TENANT,
    TENANT_CLAIM,
    LocalKeycloak,
)

pytestmark = pytest.mark.slow

# deploy/keycloak/pageforge-realm.json: a client whose tokens live 5 s, and one without PageForge's audience.
SHORT_CLIENT, SHORT_SECRET = "pageforge-short", "pageforge-short-secret"
FOREIGN_APP, FOREIGN_APP_SECRET = "other-app", "other-app-secret"
FORM = {"key": "kc", "title": "Keycloak", "layout": [{"node": "field", "key": "name", "label": "Name"}]}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def client(
    keycloak: LocalKeycloak, neo4j_server: LocalNeo4jServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    settings = settings_for(neo4j_server.bolt_uri, tmp_path_factory.mktemp("keycloak"))
    oidc = OidcSettings(
        issuers=[
            OidcIssuerSettings(
                issuer=keycloak.issuer(),
                audience=AUDIENCE,
                tenant_claim=TENANT_CLAIM,
                tenants=[TENANT],
                leeway_s=0,
            )
        ]
    )

    async def tenant() -> None:
        graph = open_graph(settings)
        try:
            with contextlib.suppress(TenantExists):
                await TenantRepository(graph).create(TENANT)
        finally:
            await graph.close()

    asyncio.run(tenant())
    with TestClient(create_app(settings.model_copy(update={"oidc": oidc}))) as test_client:
        yield test_client


def test_a_service_accounts_token_works_within_its_scopes(
    client: TestClient, keycloak: LocalKeycloak
) -> None:
    token = keycloak.token(CI_CLIENT, CI_SECRET)  # the default scopes: forms:read renders:read
    assert client.get("/api/v1/tenant", headers=bearer(token)).json()["name"] == TENANT
    assert client.get("/api/v1/forms", headers=bearer(token)).status_code == 200
    refused = client.post("/api/v1/forms/kc/versions", headers=bearer(token), json={"definition": FORM})
    assert refused.status_code == 403, refused.text
    assert refused.json()["missing_scope"] == "forms:write"

    writer = keycloak.token(CI_CLIENT, CI_SECRET, scope="forms:write")
    created = client.post("/api/v1/forms/kc/versions", headers=bearer(writer), json={"definition": FORM})
    assert created.status_code in (200, 201), created.text
    render = client.get(f"/api/v1/form-versions/{created.json()['id']}/render", headers=bearer(writer))
    assert render.status_code == 200
    manifest = {
        "version": f"r{time.time_ns()}",
        "forms": [{"form_key": "kc", "version_id": created.json()["id"]}],
    }
    no_release = client.post("/api/v1/systems/kc-portal/releases", headers=bearer(writer), json=manifest)
    assert no_release.status_code == 403
    assert no_release.json()["missing_scope"] == "releases:write"
    releaser = keycloak.token(CI_CLIENT, CI_SECRET, scope="releases:write")
    released = client.post("/api/v1/systems/kc-portal/releases", headers=bearer(releaser), json=manifest)
    assert released.status_code == 201, released.text


def test_a_users_token_from_the_password_grant_works_too(client: TestClient, keycloak: LocalKeycloak) -> None:
    token = keycloak.password_token(CLI_CLIENT, ALICE, ALICE_PASSWORD, scope="forms:write")
    definition = {**FORM, "title": "Alice's"}
    created = client.post(
        "/api/v1/forms/kc-alice/versions", headers=bearer(token), json={"definition": definition}
    )
    assert created.status_code == 201, created.text


def test_a_token_is_refused_once_it_expires(client: TestClient, keycloak: LocalKeycloak) -> None:
    token = keycloak.token(SHORT_CLIENT, SHORT_SECRET)
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    assert client.get("/api/v1/forms", headers=bearer(token)).status_code == 200
    time.sleep(max(0.0, expires - time.time()) + 1.5)
    expired = client.get("/api/v1/forms", headers=bearer(token))
    assert expired.status_code == 401
    assert expired.json()["detail"] == "token expired"


def test_another_realms_token_is_refused(client: TestClient, keycloak: LocalKeycloak) -> None:
    token = keycloak.token(OTHER_CLIENT, OTHER_SECRET, realm=OTHER_REALM)
    refused = client.get("/api/v1/forms", headers=bearer(token))
    assert refused.status_code == 401
    assert refused.json()["detail"] == "token from an issuer PageForge does not accept"


def test_a_token_of_another_client_of_the_realm_not_meant_for_pageforge_is_refused(
    client: TestClient, keycloak: LocalKeycloak
) -> None:
    token = keycloak.token(FOREIGN_APP, FOREIGN_APP_SECRET)
    assert AUDIENCE not in str(jwt.decode(token, options={"verify_signature": False}).get("aud"))
    refused = client.get("/api/v1/forms", headers=bearer(token))
    assert refused.status_code == 401, refused.text

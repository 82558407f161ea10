"""The explorer signs in through a real identity provider: Keycloak's login page (authorization code with
PKCE, a public client), in Chromium, against a real server process that accepts the realm's tokens."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from pathlib import Path

import httpx
import pytest

from app.resources import open_graph
from graph.errors import TenantExists
from graph.server import LocalNeo4jServer
from graph.tenants import TenantRepository
from tests.browser import CHROMIUM, CHROMIUM_ARGS, PLAYWRIGHT, node
from tests.conftest import settings_for
from tests.e2e.servers import api_server, server_env
from tests.keycloak import ALICE, ALICE_PASSWORD, AUDIENCE, TENANT, TENANT_CLAIM, LocalKeycloak

pytestmark = pytest.mark.slow

EXPLORER_CLIENT = "pageforge-explorer"  # deploy/keycloak/pageforge-realm.json
DRIVER = Path(__file__).with_name("explorer_oidc.js")


def test_a_user_signs_in_through_keycloaks_login_page_and_sees_the_tenants_forms(
    keycloak: LocalKeycloak, neo4j_server: LocalNeo4jServer, tmp_path: Path
) -> None:
    settings = settings_for(neo4j_server.bolt_uri, tmp_path)

    async def acme_key() -> str:
        graph = open_graph(settings)
        try:
            tenants = TenantRepository(graph)
            with contextlib.suppress(TenantExists):
                await tenants.create(TENANT)
            return await tenants.issue_key(TENANT)
        finally:
            await graph.close()

    key = asyncio.run(acme_key())
    issuer = {
        "issuer": keycloak.issuer(),
        "audience": AUDIENCE,
        "tenant_claim": TENANT_CLAIM,
        "tenants": [TENANT],
    }
    env = server_env(
        settings,
        oidc__issuers=json.dumps([issuer]),
        explorer__oidc_issuer=keycloak.issuer(),
        explorer__oidc_client_id=EXPLORER_CLIENT,
    )
    with api_server(env, tmp_path / "server.log") as server:
        server.wait_healthy()
        form = {
            "key": "signed-in",
            "title": "Signed in",
            "layout": [{"node": "field", "key": "name", "label": "Name"}],
        }
        created = httpx.post(
            f"{server.url}/api/v1/forms/signed-in/versions",
            headers={"Authorization": f"Bearer {key}"},
            json={"definition": form},
        )
        assert created.status_code in (200, 201), created.text
        policy = httpx.get(f"{server.url}/explorer/").headers["content-security-policy"]
        assert f"connect-src 'self' {keycloak.issuer().split('/realms')[0]}" in policy
        completed = subprocess.run(
            [
                node(),
                str(DRIVER),
                str(PLAYWRIGHT),
                str(CHROMIUM),
                json.dumps(CHROMIUM_ARGS),
                server.url,
                ALICE,
                ALICE_PASSWORD,
            ],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    assert completed.returncode == 0, completed.stderr[-3000:]
    seen = json.loads(completed.stdout)
    assert seen["loginPage"].startswith(keycloak.issuer() + "/protocol/openid-connect/auth?")
    assert "code_challenge_method=S256" in seen["loginPage"]
    assert seen["who"] == f"Tenant {TENANT}"
    assert "signed-in" in seen["forms"]
    assert seen["url"] == f"{server.url}/explorer/#/forms"  # the code left the URL; the view came back
    assert seen["stored"].count(".") == 2  # the access token (a JWT), in this tab's sessionStorage
    assert seen["localStorage"] == 0
    assert seen["errors"] == []

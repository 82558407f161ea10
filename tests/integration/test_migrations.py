"""Graph migrations on a Neo4j of their own (password on, as a server): a fresh graph refuses to serve until
`pageforge migrate`; a graph written without the newest migration is upgraded in place."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from neo4j import GraphDatabase

from app.main import create_app
from app.settings import Settings
from graph.migrations import MIGRATIONS
from graph.server import LocalNeo4jServer
from tests.conftest import neo4j_settings, settings_for, start_test_neo4j
from tests.e2e.conftest import TenantKey, create_tenant, post_version, revision_files

PAGEFORGE = Path(sys.executable).with_name("pageforge")
PRINTS = ("layout_nodes", "layout_keys", "layout_hash")


@pytest.fixture(scope="module")
def neo4j(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNeo4jServer]:
    server = start_test_neo4j(tmp_path_factory.mktemp("neo4j-migrations"), password="migrations-test")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def settings(neo4j: LocalNeo4jServer, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = settings_for(neo4j.bolt_uri, tmp_path_factory.mktemp("migrations-app"))
    return settings.model_copy(update={"neo4j": neo4j_settings(neo4j)})


def pageforge(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    assert settings.neo4j.uri is not None
    assert settings.neo4j.password is not None
    env = {
        **os.environ,
        "PAGEFORGE_NEO4J__URI": settings.neo4j.uri,
        "PAGEFORGE_NEO4J__PASSWORD": settings.neo4j.password.get_secret_value(),
    }
    return subprocess.run(
        [str(PAGEFORGE), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def cypher(neo4j: LocalNeo4jServer, statement: str) -> list[dict[str, Any]]:
    with GraphDatabase.driver(neo4j.bolt_uri, auth=neo4j.auth) as driver:
        records, _, _ = driver.execute_query(statement)
    return [record.data() for record in records]


def stored_prints(neo4j: LocalNeo4jServer) -> dict[str, tuple[Any, ...]]:
    rows = cypher(
        neo4j, "MATCH (v:FormVersion) RETURN v.id AS id, [v.layout_nodes, v.layout_keys, v.layout_hash] AS p"
    )
    return {row["id"]: tuple(row["p"]) for row in rows}


def migrated_tenant_with_revisions(settings: Settings, corpora: Path, count: int) -> TenantKey:
    """A new tenant on the migrated graph, with the first `count` revisions of a corpus form posted."""
    assert pageforge(settings, "migrate").returncode == 0
    tenant = create_tenant(settings)
    with TestClient(create_app(settings)) as client:
        for definition in revision_files(corpora, "conditional-page")[:count]:
            post_version(client, tenant, "conditional-page", definition)
    return tenant


def test_a_fresh_graph_refuses_to_serve_until_migrated(neo4j: LocalNeo4jServer, settings: Settings) -> None:
    status = pageforge(settings, "migrate", "--status")
    assert status.returncode == 1, status.stdout + status.stderr
    assert [line.split()[:2] for line in status.stdout.splitlines()] == [
        ["1", "pending"],
        ["2", "pending"],
        ["3", "pending"],
        ["4", "pending"],
        ["5", "pending"],
        ["6", "pending"],
    ]
    assert "run `pageforge migrate`" in status.stderr

    with TestClient(create_app(settings)) as client:
        health = client.get("/health")
        assert health.status_code == 503
        assert "lacks migration(s) 1 (constraints), 2" in health.json()["dependencies"]["neo4j"]["detail"]
        refused = client.get("/api/v1/forms", headers={"Authorization": "Bearer pf_anything"})
        assert refused.status_code == 503, refused.text
        assert "run `pageforge migrate`" in refused.json()["detail"]
        tenant = pageforge(settings, "tenant", "create", "too-early")
        assert tenant.returncode == 1
        assert "error: the graph lacks migration(s) 1 (constraints)" in tenant.stderr
        written = cypher(neo4j, "MATCH (n) RETURN count(n) AS n")
        assert written == [{"n": 0}], "a refusing PageForge wrote something"

        dry = pageforge(settings, "migrate", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert "would create 12 constraint(s)" in dry.stdout
        assert "dry run: nothing changed" in dry.stdout
        assert cypher(neo4j, "SHOW CONSTRAINTS YIELD name RETURN count(name) AS n") == [{"n": 0}]

        applied = pageforge(settings, "migrate")
        assert applied.returncode == 0, applied.stderr
        assert "1  applied constraints: 12 changed" in applied.stdout
        assert f"the graph has every migration ({len(MIGRATIONS)})" in applied.stdout
        again = pageforge(settings, "migrate")
        assert "applied" not in again.stdout
        assert pageforge(settings, "migrate", "--status").returncode == 0

        # The running server serves now, without a restart.
        assert client.get("/health").status_code == 200
        assert client.get("/api/v1/forms", headers={"Authorization": "Bearer pf_anything"}).status_code == 401


def test_a_graph_written_without_the_newest_migration_is_upgraded_in_place(
    neo4j: LocalNeo4jServer, settings: Settings, corpora: Path
) -> None:
    tenant = migrated_tenant_with_revisions(settings, corpora, 4)
    written = stored_prints(neo4j)
    assert written
    assert all(None not in prints for prints in written.values())

    # As an older PageForge left it: versions without layout prints, migration 2 never recorded.
    cypher(neo4j, "MATCH (v:FormVersion) REMOVE v.layout_nodes, v.layout_keys, v.layout_hash")
    cypher(neo4j, "MATCH (m:SchemaMigration {version: 2}) DELETE m")
    status = pageforge(settings, "migrate", "--status")
    assert status.returncode == 1
    assert [line.split()[:2] for line in status.stdout.splitlines()] == [
        ["1", "applied"],
        ["3", "applied"],
        ["4", "applied"],
        ["5", "applied"],
        ["6", "applied"],
        ["2", "pending"],
    ]
    with TestClient(create_app(settings)) as client:
        assert client.get("/api/v1/forms", headers=tenant.headers).status_code == 503

    dry = pageforge(settings, "migrate", "--dry-run")
    assert f"would store layout prints on {len(written)} version(s)" in dry.stdout
    assert set(stored_prints(neo4j).values()) == {(None, None, None)}

    upgraded = pageforge(settings, "migrate")
    assert upgraded.returncode == 0, upgraded.stderr
    assert (
        f"2  applied layout prints on versions stored without them: {len(written)} changed" in upgraded.stdout
    )
    assert stored_prints(neo4j) == written
    with TestClient(create_app(settings)) as client:
        assert client.get("/api/v1/forms", headers=tenant.headers).status_code == 200


def test_a_graph_migrated_by_a_newer_pageforge_is_refused(
    neo4j: LocalNeo4jServer, settings: Settings
) -> None:
    assert pageforge(settings, "migrate").returncode == 0
    cypher(neo4j, "CREATE (:SchemaMigration {version: 99, name: 'from the future', applied_at: datetime()})")
    try:
        status = pageforge(settings, "migrate", "--status")
        assert status.returncode == 1
        assert "99  unknown to this PageForge" in status.stdout
        refused = pageforge(settings, "migrate")
        assert refused.returncode == 1
        assert "error: the graph has migration(s) 99, which this PageForge does not know" in refused.stderr
    finally:
        cypher(neo4j, "MATCH (m:SchemaMigration {version: 99}) DELETE m")


def test_only_the_managed_neo4j_is_migrated_at_start_unless_the_setting_says_otherwise() -> None:
    assert Settings().neo4j.migrates_on_start
    assert not Settings(neo4j={"uri": "bolt://neo4j:7687"}).neo4j.migrates_on_start
    assert Settings(neo4j={"uri": "bolt://neo4j:7687", "migrate_on_start": True}).neo4j.migrates_on_start
    assert not Settings(neo4j={"migrate_on_start": False}).neo4j.migrates_on_start


def test_forms_stored_before_their_search_text_are_found_once_migrated(
    neo4j: LocalNeo4jServer, settings: Settings, corpora: Path
) -> None:
    tenant = migrated_tenant_with_revisions(settings, corpora, 2)

    # As a PageForge before migration 6 left it: forms without their search text, and no text index.
    cypher(neo4j, "MATCH (f:Form) REMOVE f.search")
    cypher(neo4j, "DROP INDEX form_search")
    cypher(neo4j, "MATCH (m:SchemaMigration {version: 6}) DELETE m")
    forms = cypher(neo4j, "MATCH (f:Form) RETURN count(f) AS n")[0]["n"]
    dry = pageforge(settings, "migrate", "--dry-run")
    assert (
        "would create 1 constraint(s) or index(es): form_search, "
        f"and would store the search text of {forms} form(s)" in dry.stdout
    ), dry.stdout

    upgraded = pageforge(settings, "migrate")
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"6  applied form search text and its index: {forms + 1} changed" in upgraded.stdout
    assert cypher(neo4j, "MATCH (f:Form) WHERE f.search IS NULL RETURN count(f) AS n") == [{"n": 0}]
    with TestClient(create_app(settings)) as client:
        for q in ("ITIONAL-PA", "al-p"):  # through the text index, and reading the tenant's forms
            found = client.get("/api/v1/forms", headers=tenant.headers, params={"q": q})
            assert [form["key"] for form in found.json()["items"]] == ["conditional-page"], q

"""PageForge Explorer in Chromium (Debian's, driven by playwright-core) against a real server process: a
real revision chain with a branch, a merge and a release, drawn as the API's lineage says; an edge opens its
diff, a version its render; a search finds it; the same with a read-only key; another tenant's key sees
none of it; axe-core finds no serious or critical violation on any view; screenshots of each view."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.resources import open_graph
from app.scopes import Scope
from bench.bench_lineage import FORM_KEY as CHAIN_KEY
from bench.bench_lineage import chain_versions
from graph.lineage import LineageRepository
from graph.server import LocalNeo4jServer
from graph.tenants import TenantRepository
from tests.browser import CHROMIUM, CHROMIUM_ARGS, NODE_MODULES, PLAYWRIGHT, ROOT, node, require_tool
from tests.conftest import settings_for
from tests.e2e.conftest import TenantKey, create_tenant
from tests.e2e.servers import ApiServer, api_server, server_env

pytestmark = pytest.mark.slow

FORM = "conditional-page"
REVISIONS = Path("nav-formio/test-forms-revisions") / FORM
SCREENSHOTS = ROOT / "var" / "screenshots"
SERIOUS = {"serious", "critical"}
SEARCH = "conditional page with a panel and a checkbox"

# Drives the explorer through the views a plan names (see the script).
EXPLORER_SCRIPT = Path(__file__).with_name("explorer_driver.js")


@dataclass(frozen=True)
class Loaded:
    server: ApiServer
    owner: TenantKey
    reader: TenantKey
    stranger: TenantKey
    versions: list[dict[str, Any]]
    release: dict[str, Any]


def read_key_of(settings_neo4j: str, tmp_path: Path, tenant: TenantKey) -> TenantKey:
    async def work() -> str:
        graph = open_graph(settings_for(settings_neo4j, tmp_path))
        try:
            return await TenantRepository(graph).issue_key(tenant.name, "read")
        finally:
            await graph.close()

    return TenantKey(name=tenant.name, key=asyncio.run(work()))


@pytest.fixture(scope="module")
def loaded(
    neo4j_server: LocalNeo4jServer, corpora: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Loaded]:
    """A real revision chain as v1 → v2, a branch v1 → v3, their merge v4 → v5 → v6, and a release of v4."""
    var_dir = tmp_path_factory.mktemp("explorer")
    settings = settings_for(neo4j_server.bolt_uri, var_dir)
    owner = create_tenant(settings, scopes=tuple(Scope))
    files = sorted((corpora / REVISIONS).glob("*.json"))
    with api_server(server_env(settings), var_dir / "server.log") as server:
        server.wait_healthy()
        with httpx.Client(base_url=f"{server.url}/api/v1", headers=owner.headers, timeout=60) as http:
            versions: list[dict[str, Any]] = []
            for index, path in enumerate(files):
                body: dict[str, Any] = {"definition": json.loads(path.read_text())}
                if index == 2:
                    body["parents"] = [versions[0]["id"]]  # a branch from v1
                if index == 3:
                    body["parents"] = [versions[1]["id"], versions[2]["id"]]  # the merge
                answer = http.post(f"/forms/{FORM}/versions", json=body)
                assert answer.status_code in (200, 201), answer.text
                if answer.status_code == 201:  # two revisions of the corpus have the same content
                    versions.append(answer.json())
            release = http.post(
                "/systems/benefits/releases",
                json={"version": "2026.1", "forms": [{"form_key": FORM, "version_id": versions[3]["id"]}]},
            )
            assert release.status_code == 201, release.text
            deadline = time.monotonic() + 120
            while not http.post("/layouts/search", json={"text": SEARCH, "k": 10}).json()["items"]:
                assert time.monotonic() < deadline, "the layouts were not indexed"
                time.sleep(0.5)
        yield Loaded(
            server=server,
            owner=owner,
            reader=read_key_of(neo4j_server.bolt_uri, var_dir, owner),
            stranger=create_tenant(settings),
            versions=versions,
            release=release.json(),
        )


def explore(loaded: Loaded, name: str, key: TenantKey, *, form: bool = True) -> dict[str, Any]:
    axe = NODE_MODULES / "axe-core" / "axe.min.js"
    require_tool(axe, "npm axe-core")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    v = loaded.versions
    plan = {
        "name": name,
        "origin": loaded.server.url,
        "key": key.key,
        "formKey": FORM,
        "search": SEARCH,
        "screenshots": str(SCREENSHOTS),
        "form": {
            "root": v[0]["id"],
            "edge": [v[3]["id"], v[2]["id"]],
            "merge": v[3]["id"],
            "mergeNumber": v[3]["number"],
        }
        if form
        else None,
    }
    completed = subprocess.run(
        [
            node(),
            str(EXPLORER_SCRIPT),
            str(PLAYWRIGHT),
            str(axe),
            str(CHROMIUM),
            json.dumps(CHROMIUM_ARGS),
            json.dumps(plan),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    seen: dict[str, Any] = json.loads(completed.stdout)
    serious = [
        f"{view}: {v['id']} ({v['impact']}) {v['help']} at {v['targets']}: {v['html']} {v['summary']}"
        for view, violations in seen["axe"].items()
        for v in violations
        if v["impact"] in SERIOUS
    ]
    assert not serious, serious
    refused = "Failed to load resource: the server responded with a status of 404"
    errors = [line for line in seen["console"] if form or not line.startswith(refused)]
    assert not errors, errors  # no CSP violation, no script error (another tenant's form is a 404)
    assert seen["steps"]["keyInUrl"] is False
    assert seen["steps"]["keyInLocalStorage"] is False
    return seen


def check_lineage_views(loaded: Loaded, seen: dict[str, Any]) -> None:
    steps = seen["steps"]
    with httpx.Client(base_url=f"{loaded.server.url}/api/v1", headers=loaded.owner.headers) as http:
        latest = http.get(f"/forms/{FORM}").json()["latest_version_id"]
        lineage = http.get(
            f"/form-versions/{latest}/lineage", params={"direction": "both", "depth": 20}
        ).json()
    assert sorted(steps["nodes"]) == sorted(node["id"] for node in lineage["nodes"])
    assert sorted(map(tuple, steps["edges"])) == sorted(
        (e["child_id"], e["parent_id"]) for e in lineage["edges"]
    )
    assert len(steps["nodes"]) == len(loaded.versions)
    assert len(steps["edges"]) == len(loaded.versions)  # a chain of n has n-1 edges; the merge adds one
    assert steps["latest"] == [latest]
    merge = loaded.versions[3]
    merge_label = next(
        label for label in steps["labels"] if label.startswith(f"Version {merge['number']} of")
    )
    assert "in 1 release" in merge_label
    assert steps["keyboardNext"] in {loaded.versions[1]["id"], loaded.versions[2]["id"]}  # a child of v1
    assert steps["diffTitle"] == f"v{loaded.versions[2]['number']} → v{merge['number']}"
    assert steps["changes"]
    assert steps["renderInputs"] > 0
    assert "benefits 2026.1" in steps["usedBy"]
    assert steps["tableRows"] == len(loaded.versions)
    assert any(f"/form/{FORM}?v=" in href for href in steps["hits"])
    assert steps["comparison"].startswith(f"{FORM} v{merge['number']} → {FORM} v1")  # marked, then opened
    assert "Merge base" in steps["comparison"]


def test_the_explorer_draws_the_lineage_the_api_holds_and_opens_diffs_renders_and_searches(
    loaded: Loaded,
) -> None:
    seen = explore(loaded, "owner", loaded.owner)
    assert seen["steps"]["forms"] == [FORM]
    check_lineage_views(loaded, seen)


def test_a_read_only_key_explores_the_same(loaded: Loaded) -> None:
    check_lineage_views(loaded, explore(loaded, "reader", loaded.reader))


def test_another_tenants_key_sees_none_of_it(loaded: Loaded) -> None:
    seen = explore(loaded, "stranger", loaded.stranger, form=False)
    assert seen["steps"]["forms"] == []
    assert "not found" in seen["steps"]["formError"]


def test_the_explorer_is_served_with_a_strict_policy(loaded: Loaded) -> None:
    page = httpx.get(f"{loaded.server.url}/explorer/")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    moved = httpx.get(f"{loaded.server.url}/explorer", headers={"host": "evil.example"})
    assert (moved.status_code, moved.headers["location"]) == (308, "/explorer/")
    assert httpx.get(f"{loaded.server.url}/explorer/../main.py").status_code == 404
    assert httpx.get(f"{loaded.server.url}/explorer/nothing.js").status_code == 404


LARGE_SCRIPT = Path(__file__).with_name("explorer_large.js")


def test_a_thousand_version_lineage_opens_around_its_latest_and_draws_whole(
    loaded: Loaded, tmp_path: Path
) -> None:
    settings = settings_for(loaded.server.env["PAGEFORGE_NEO4J__URI"], tmp_path)
    versions = chain_versions()

    async def seed() -> None:
        graph = open_graph(settings)
        try:
            tenant = await TenantRepository(graph).named(loaded.owner.name)
            await LineageRepository(graph).create_chain(tenant.id, CHAIN_KEY, versions)
        finally:
            await graph.close()

    asyncio.run(seed())
    completed = subprocess.run(
        [
            node(),
            str(LARGE_SCRIPT),
            str(PLAYWRIGHT),
            str(CHROMIUM),
            json.dumps(CHROMIUM_ARGS),
            loaded.server.url,
            loaded.owner.key,
            CHAIN_KEY,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "SCREENSHOT": str(SCREENSHOTS / "owner-large-lineage.png")},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    seen = json.loads(completed.stdout)
    drawn, moved = seen["drawMs"], seen["panZoomMs"]
    print(f"explorer: {len(versions)} versions drawn in {drawn} ms, panned and zoomed in {moved} ms")
    assert seen["errors"] == []
    assert seen["around"]["nodes"] == 4  # the latest and three steps back
    assert seen["around"]["counts"].endswith("1 folded")
    assert seen["whole"]["nodes"] == len(versions)
    assert seen["whole"]["edges"] == len(versions) - 1
    assert seen["whole"]["counts"].endswith("0 folded")

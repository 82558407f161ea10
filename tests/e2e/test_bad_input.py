"""Bad input across every route, on the real stack: a clear 4xx naming the problem, and nothing written.

Each area's own e2e file covers its main refusals (unknown parents, foreign pins, bad formats, other
tenants' ids); this file covers what cuts across routes: ids and query values of every shape, forged
cursors, unknown body fields, body shapes and sizes, duplicate posts racing each other, and tenants that
share form and system keys.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.pagination import encode_cursor
from app.settings import Settings
from graph.forms import FormVersionRepository
from tests.e2e.conftest import TenantKey, create_tenant, revision_files

PROBLEM_JSON = "application/problem+json"
# Neo4j integers are signed 64-bit: a forged cursor past this must not reach the database.
PAST_INT64 = 2**63


@dataclass(frozen=True)
class World:
    """One tenant's versions, release and a second tenant using the same form and system keys."""

    tenant: TenantKey
    other: TenantKey
    v1: dict[str, Any]
    v2: dict[str, Any]
    release: dict[str, Any]
    their_version: dict[str, Any]
    their_release: dict[str, Any]
    definition: dict[str, Any]


@pytest.fixture(scope="module")
def lenient_client(app_settings: Settings) -> Iterator[TestClient]:
    """A client that returns a 500 as a response, so a test can name the request that caused it."""
    with TestClient(create_app(app_settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def world(lenient_client: TestClient, tenant: TenantKey, app_settings: Settings, corpora: Path) -> World:
    files = revision_files(corpora, "number")
    v1 = created(lenient_client, tenant, "number", definition=files[0])
    v2 = created(lenient_client, tenant, "number", definition=files[1])
    release = created_release(lenient_client, tenant, "benefits", version="1", forms=[pin(v1)])
    other = create_tenant(app_settings)
    their_version = created(lenient_client, other, "number", definition=files[0])
    their_release = created_release(
        lenient_client, other, "benefits", version="1", forms=[pin(their_version)]
    )
    return World(tenant, other, v1, v2, release, their_version, their_release, files[2])


def created(client: TestClient, tenant: TenantKey, form_key: str, **body: Any) -> dict[str, Any]:
    response = client.post(f"/api/v1/forms/{form_key}/versions", headers=tenant.headers, json=body)
    assert response.status_code == 201, response.text
    version: dict[str, Any] = response.json()
    return version


def created_release(client: TestClient, tenant: TenantKey, system_key: str, **body: Any) -> dict[str, Any]:
    response = client.post(f"/api/v1/systems/{system_key}/releases", headers=tenant.headers, json=body)
    assert response.status_code == 201, response.text
    release: dict[str, Any] = response.json()
    return release


def pin(version: dict[str, Any]) -> dict[str, str]:
    return {"form_key": version["form_key"], "version_id": version["id"]}


def holdings(client: TestClient, tenant: TenantKey) -> dict[str, int]:
    """Everything the tenant has written: graph nodes and edges, open outbox entries, vectors, releases."""
    tenant_id = client.get("/api/v1/tenant", headers=tenant.headers).json()["id"]
    resources = client.app.state.resources  # type: ignore[attr-defined]
    counts = client.portal.call(FormVersionRepository(resources.graph).counts, tenant_id)  # type: ignore[union-attr]
    systems = client.get("/api/v1/systems", headers=tenant.headers, params={"limit": 200}).json()["items"]
    return {
        "forms": counts.forms,
        "versions": counts.versions,
        "edges": counts.edges,
        "pending": counts.pending,
        "vectors": resources.index.count(tenant_id),
        "systems": len(systems),
        "releases": sum(system["release_count"] for system in systems),
    }


def assert_problem(response: Any, status: int, needle: str, what: str) -> None:
    """The response is problem+json with this status, and its detail names the problem."""
    assert response.status_code == status, (what, response.status_code, response.text[:500])
    assert response.headers["content-type"] == PROBLEM_JSON, (what, response.headers["content-type"])
    body = response.json()
    assert body["status"] == status, (what, body)
    assert needle in body["detail"], (what, needle, body["detail"])


def test_ids_of_every_shape_are_404_on_every_route_that_takes_one(
    lenient_client: TestClient, world: World
) -> None:
    client, mine = lenient_client, world.v1["id"]
    shapes = {
        "not a uuid": "not-a-uuid",
        "unknown uuid": str(uuid.uuid4()),
        "another tenant's": world.their_version["id"],
        "NUL byte": "a%00b",
        "unicode": "skj%C3%B8ma",
        "5000 characters": "x" * 5000,
    }
    for shape, bad in shapes.items():
        gets = [
            f"/form-versions/{bad}",
            f"/form-versions/{bad}/lineage",
            f"/form-versions/{bad}/diff?against={mine}",
            f"/form-versions/{mine}/diff?against={bad}",
            f"/form-versions/{bad}/merge-base?with={mine}",
            f"/form-versions/{mine}/merge-base?with={bad}",
            f"/form-versions/{bad}/used-by",
            f"/form-versions/{bad}/used-by?form=true",
            f"/form-versions/{bad}/impact",
            f"/form-versions/{bad}/render",
            f"/form-versions/{bad}/render?format=json",
            f"/form-versions/{bad}/render/diff?against={mine}",
            f"/form-versions/{mine}/render/diff?against={bad}",
            f"/form-versions/{bad}/similar",
            f"/form-versions/{bad}/similar?scope=exclude-lineage",
            f"/form-versions/{bad}/suggested-parents",
            f"/forms/number/fields/number/history?version={bad}",
        ]
        release_bad = world.their_release["id"] if shape == "another tenant's" else bad
        gets += [
            f"/releases/{release_bad}",
            f"/releases/{release_bad}/drift",
            f"/releases/{release_bad}/forms/number/render",
        ]
        for path in gets:
            response = client.get(f"/api/v1{path}", headers=world.tenant.headers)
            assert_problem(response, 404, "not found", f"{shape}: GET {path[:80]}")
        posts: list[tuple[str, dict[str, Any]]] = [
            (f"/form-versions/{bad}/render", {"data": {}}),
            ("/layouts/recommend", {"positive": [bad]}),
            ("/layouts/recommend", {"positive": [mine], "negative": [bad]}),
        ]
        for path, body in posts:
            response = client.post(f"/api/v1{path}", headers=world.tenant.headers, json=body)
            assert_problem(response, 404, "not found", f"{shape}: POST {path[:80]} {body}")


def test_query_values_out_of_range_or_of_the_wrong_type_are_422_naming_the_parameter(
    lenient_client: TestClient, world: World
) -> None:
    client, v1, v2 = lenient_client, world.v1["id"], world.v2["id"]
    lists = [
        "/forms",
        "/forms/number/versions",
        "/systems",
        "/systems/benefits/releases",
        "/forms/number/fields/number/history",
        f"/form-versions/{v1}/used-by",
        f"/form-versions/{v1}/impact",
        f"/releases/{world.release['id']}/drift",
    ]
    cases = [
        (path, {"limit": limit}, "limit") for path in lists for limit in ("0", "-1", "201", str(10**30), "x")
    ]
    cases += [
        (f"/form-versions/{v2}/lineage", {"depth": "-1"}, "depth"),
        (f"/form-versions/{v2}/lineage", {"depth": str(10**30)}, "depth"),
        (f"/form-versions/{v2}/lineage", {"depth": "1.5"}, "depth"),
        (f"/form-versions/{v2}/lineage", {"direction": ""}, "direction"),
        (f"/form-versions/{v2}/diff", {}, "against"),
        (f"/form-versions/{v2}/merge-base", {}, "with"),
        (f"/form-versions/{v2}/render/diff", {}, "against"),
        (f"/form-versions/{v2}/render/diff", {"against": v1, "format": "json"}, "format"),
        (f"/form-versions/{v2}/render", {"format": "HTML"}, "format"),
        (f"/releases/{world.release['id']}/forms/number/render", {"format": "xyz"}, "format"),
        (f"/form-versions/{v1}/used-by", {"form": "maybe"}, "form"),
        (f"/form-versions/{v2}/similar", {"k": "-1"}, "k"),
        (f"/form-versions/{v2}/similar", {"k": str(10**30)}, "k"),
        (f"/form-versions/{v2}/similar", {"group_by": "system"}, "group_by"),
        (f"/form-versions/{v2}/suggested-parents", {"k": "101"}, "k"),
        ("/forms", {"q": "x" * 201}, "q"),
        ("/forms", {"q": "line\nbreak"}, "q"),
        ("/forms", {"q": "nul\x00"}, "q"),
    ]
    for path, params, name in cases:
        response = client.get(f"/api/v1{path}", headers=world.tenant.headers, params=params)
        assert_problem(response, 422, name, f"GET {path} {params}")


def test_cursors_this_api_never_issues_are_refused(lenient_client: TestClient, world: World) -> None:
    """Forged positions (numbers past Neo4j's range, negative numbers, booleans) are 422, never a 500."""
    client, v1 = lenient_client, world.v1["id"]
    forged: list[tuple[str, Any]] = [
        ("/forms/number/versions", PAST_INT64),
        ("/forms/number/versions", 10**30),
        ("/forms/number/versions", -5),
        ("/systems/benefits/releases", PAST_INT64),
        ("/systems/benefits/releases", -1),
        ("/forms/number/fields/number/history", [world.v2["id"], PAST_INT64]),
        ("/forms/number/fields/number/history", [world.v2["id"], -10]),
        ("/forms/number/fields/number/history", [world.v2["id"], True]),
        (f"/form-versions/{v1}/used-by", ["benefits", PAST_INT64]),
        (f"/form-versions/{v1}/used-by", ["benefits", -3]),
        (f"/form-versions/{v1}/used-by", ["benefits", False]),
        (f"/form-versions/{v1}/impact", [PAST_INT64, 0]),
        (f"/form-versions/{v1}/impact", [0, PAST_INT64]),
        (f"/form-versions/{v1}/impact", [-2, 0]),
        ("/forms", ["number"]),
        ("/systems", None),
        (f"/releases/{world.release['id']}/drift", 1.5),
    ]
    for path, position in forged:
        response = client.get(
            f"/api/v1{path}", headers=world.tenant.headers, params={"cursor": encode_cursor(position)}
        )
        assert_problem(response, 422, "cursor", f"GET {path} cursor={position!r}")
    for path in ("/forms", "/forms/number/versions", "/forms/number/fields/number/history"):
        nested = base64.urlsafe_b64encode(b"[" * 5000).decode()
        for token in ("", "!!", "%%%", "AAAA" * 500, nested):
            response = client.get(f"/api/v1{path}", headers=world.tenant.headers, params={"cursor": token})
            assert_problem(response, 422, "cursor", f"GET {path} cursor={token[:20]!r}")


def test_unknown_body_fields_are_refused_and_nothing_is_written(
    lenient_client: TestClient, world: World
) -> None:
    """A misspelt field must not be dropped silently: `parent` would ingest under the latest version."""
    client, tenant = lenient_client, world.tenant
    before = holdings(client, tenant)
    posts: list[tuple[str, dict[str, Any], str]] = [
        ("/forms/fresh/versions", {"definition": world.definition, "parent": [world.v1["id"]]}, "parent"),
        ("/forms/fresh/versions", {"definition": world.definition, "lable": "typo"}, "lable"),
        ("/systems/fresh/releases", {"version": "2", "forms": [pin(world.v2)], "parent": []}, "parent"),
        ("/layouts/search", {"text": "number", "filter": {"form_keys": ["number"]}}, "filter"),
        ("/layouts/search", {"text": "number", "filters": {"form_key": ["number"]}}, "form_key"),
        ("/layouts/recommend", {"positive": [world.v1["id"]], "negatives": [world.v2["id"]]}, "negatives"),
    ]
    for path, body, field in posts:
        response = client.post(f"/api/v1{path}", headers=tenant.headers, json=body)
        assert_problem(response, 422, field, f"POST {path} {sorted(body)}")
    assert holdings(client, tenant) == before


def test_nan_and_infinity_are_refused_wherever_a_body_carries_json_values(
    lenient_client: TestClient, world: World
) -> None:
    """Python's JSON parser reads NaN and Infinity, which JSON has not: a version must not store them."""
    client, tenant = lenient_client, world.tenant
    before = holdings(client, tenant)
    field = {"type": "number", "key": "amount", "label": "Amount", "input": True}
    definition = {"display": "form", "components": [{**field, "defaultValue": "__NUMBER__"}]}
    for constant in ("NaN", "Infinity", "-Infinity"):
        text = json.dumps(definition).replace('"__NUMBER__"', constant)
        posts = [
            ("/forms/fresh/versions", f'{{"definition": {text}}}', "numbers must be finite"),
            (
                "/forms/fresh/versions",
                f'{{"definition": {json.dumps(world.definition)}, "metadata": {{"x": [{constant}]}}}}',
                "finite number",
            ),
            (
                "/systems/fresh/releases",
                f'{{"version": "9", "forms": [{{"form_key": "fresh", "definition": {text}}}]}}',
                "numbers must be finite",
            ),
            ("/layouts/search", f'{{"definition": {text}, "k": 3}}', "numbers must be finite"),
            (
                f"/form-versions/{world.v1['id']}/render?format=json",
                f'{{"data": {{"amount": {constant}}}}}',
                "finite number",
            ),
        ]
        for path, body, needle in posts:
            response = client.post(
                f"/api/v1{path}", headers={**tenant.headers, "content-type": "application/json"}, content=body
            )
            assert_problem(response, 422, needle, f"POST {path} with {constant}")
    assert holdings(client, tenant) == before


def test_a_version_cannot_be_both_a_positive_and_a_negative_example(
    lenient_client: TestClient, world: World
) -> None:
    v1, v2 = world.v1["id"], world.v2["id"]
    body = {"positive": [v1, v2], "negative": [v2]}
    response = lenient_client.post("/api/v1/layouts/recommend", headers=world.tenant.headers, json=body)
    assert_problem(response, 422, v2, "recommend with a version on both sides")


def test_release_names_must_be_printable_text(lenient_client: TestClient, world: World) -> None:
    client, tenant = lenient_client, world.tenant
    before = holdings(client, tenant)
    for name in ("   ", "2\x00", "line\nbreak", "\x1b[31mred"):
        response = client.post(
            "/api/v1/systems/benefits/releases",
            headers=tenant.headers,
            json={"version": name, "forms": [pin(world.v2)]},
        )
        assert_problem(response, 422, "version", f"release name {name!r}")
    assert holdings(client, tenant) == before


def test_bodies_of_the_wrong_shape_or_type_are_4xx_on_every_post(
    lenient_client: TestClient, world: World
) -> None:
    client, tenant = lenient_client, world.tenant
    json_type = {"content-type": "application/json"}
    nested = b'{"definition": {"components": ' + b"[" * 5000 + b"]" * 5000 + b"}}"
    shapes: dict[str, tuple[bytes, dict[str, str], int]] = {
        "empty": (b"", json_type, 422),
        "null": (b"null", json_type, 422),
        "a list": (b"[{}]", json_type, 422),
        "a string": (b'"text"', json_type, 422),
        "invalid JSON": (b'{"definition": ', json_type, 422),
        "text/plain JSON": (
            json.dumps({"definition": world.definition}).encode(),
            {"content-type": "text/plain"},
            415,
        ),
        "form-urlencoded": (b"definition=x", {"content-type": "application/x-www-form-urlencoded"}, 415),
        "JSON in latin-1": (
            '{"text": "café"}'.encode("latin-1"),
            {"content-type": "application/json; charset=latin-1"},
            415,
        ),
        "latin-1 bytes said to be UTF-8": ('{"text": "café"}'.encode("latin-1"), json_type, 400),
        "JSON nested 5000 deep": (nested, json_type, 400),
        "a 5000-digit number": (b'{"k": ' + b"9" * 5000 + b"}", json_type, 400),
    }
    paths = [
        "/forms/fresh/versions",
        "/systems/fresh/releases",
        f"/form-versions/{world.v1['id']}/render",
        "/layouts/search",
        "/layouts/recommend",
    ]
    before = holdings(client, tenant)
    for path in paths:
        for shape, (content, headers, status) in shapes.items():
            response = client.post(f"/api/v1{path}", headers={**tenant.headers, **headers}, content=content)
            assert response.status_code == status, (path, shape, response.text[:300])
            assert response.headers["content-type"] == PROBLEM_JSON, (path, shape)
            assert response.json()["detail"], (path, shape)
            assert "There was an error parsing the body" not in response.json()["detail"], (path, shape)
    assert holdings(client, tenant) == before


def test_without_a_valid_key_every_body_gets_401_unread(lenient_client: TestClient, world: World) -> None:
    """Authentication comes before the body: a caller without a key learns nothing about body handling."""
    nested = b'{"definition": {"components": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
    bodies = {
        "deeply nested": (nested, {"content-type": "application/json"}),
        "not UTF-8": ('{"t": "café"}'.encode("latin-1"), {"content-type": "application/json"}),
        "text/plain": (b"hello", {"content-type": "text/plain"}),
        "a huge number": (b'{"k": ' + b"9" * 5000 + b"}", {"content-type": "application/json"}),
    }
    for credentials in [
        {},
        {"Authorization": "Bearer pf_not_a_key"},
        {"Authorization": "Basic dXNlcjpwdw=="},
    ]:
        for shape, (content, headers) in bodies.items():
            response = lenient_client.post(
                "/api/v1/forms/fresh/versions", headers={**credentials, **headers}, content=content
            )
            assert response.status_code == 401, (credentials, shape, response.text[:300])
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.headers["content-type"] == PROBLEM_JSON


def test_a_trailing_slash_is_404_not_a_redirect_to_the_host_header(
    lenient_client: TestClient, world: World
) -> None:
    response = lenient_client.get(
        "/api/v1/forms/", headers={**world.tenant.headers, "Host": "evil.example"}, follow_redirects=False
    )
    assert response.status_code == 404, response.text
    assert "location" not in response.headers
    assert response.headers["content-type"] == PROBLEM_JSON


def test_definitions_that_do_not_match_their_format_or_nest_too_deep_write_nothing(
    lenient_client: TestClient, world: World
) -> None:
    client, tenant, formio = lenient_client, world.tenant, world.definition
    panels: dict[str, Any] = {"type": "textfield", "key": "leaf"}
    for i in range(400):
        panels = {"type": "panel", "key": f"p{i}", "components": [panels]}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"definition": formio, "format": "jsonschema"}, "JSON Schema"),
        ({"definition": formio, "format": "native"}, "native"),
        ({"definition": formio, "format": "FORMIO"}, "FORMIO"),
        ({"definition": {"pages": "x"}, "format": "surveyjs"}, "surveyjs"),
        ({"definition": {"components": [panels]}, "format": "formio"}, "deeper"),
        ({"definition": "[" * 3000 + "]" * 3000}, "deeper"),
        ({"definition": ""}, "empty"),
        ({"definition": "x" * 900_000}, "object"),
    ]
    before = holdings(client, tenant)
    for body, needle in cases:
        response = client.post("/api/v1/forms/fresh/versions", headers=tenant.headers, json=body)
        assert_problem(response, 422, needle, f"version {str(body)[:80]}")
        inline = {"form_key": "fresh", **body}
        response = client.post(
            "/api/v1/systems/fresh/releases", headers=tenant.headers, json={"version": "1", "forms": [inline]}
        )
        assert_problem(response, 422, needle, f"inline {str(body)[:80]}")
        search = client.post("/api/v1/layouts/search", headers=tenant.headers, json=body)
        assert_problem(search, 422, needle, f"search {str(body)[:80]}")
    assert holdings(client, tenant) == before


def test_a_body_at_the_size_limit_is_taken_and_one_byte_over_is_413_even_when_streamed(
    lenient_client: TestClient, world: World, app_settings: Settings
) -> None:
    client, tenant, limit = lenient_client, world.tenant, app_settings.api.max_body_bytes
    headers = {**tenant.headers, "content-type": "application/json"}

    def body_of(size: int, field_key: str) -> bytes:
        shell = {
            "definition": {"components": [{"type": "textfield", "key": field_key}]},
            "metadata": {"pad": ""},
        }
        empty = json.dumps(shell).encode()
        return empty.replace(b'"pad": ""', b'"pad": "' + b"x" * (size - len(empty)) + b'"')

    def streamed(data: bytes) -> Iterator[bytes]:
        yield from (data[i : i + 65_536] for i in range(0, len(data), 65_536))

    before = holdings(client, tenant)
    over = body_of(limit + 1, "over")
    assert len(over) == limit + 1
    refused = [
        client.post("/api/v1/forms/over/versions", headers=headers, content=over),
        client.post("/api/v1/forms/over/versions", headers=headers, content=streamed(over)),
    ]
    for response in refused:
        assert_problem(response, 413, f"exceeds {limit} bytes", "over the limit")
    assert [response.json()["title"] for response in refused] == ["Payload too large"] * 2
    assert holdings(client, tenant) == before

    at = body_of(limit, "at")
    assert len(at) == limit
    taken = client.post("/api/v1/forms/at/versions", headers=headers, content=at)
    assert taken.status_code == 201, taken.text[:300]
    streamed_at = client.post(
        "/api/v1/forms/at-streamed/versions", headers=headers, content=streamed(body_of(limit, "s"))
    )
    assert streamed_at.status_code == 201, streamed_at.text[:300]


def test_racing_duplicate_posts_make_one_version_and_one_release(
    lenient_client: TestClient, world: World, corpora: Path
) -> None:
    client, tenant = lenient_client, world.tenant
    definition = revision_files(corpora, "radio")[0]

    def post_version(_: int) -> Any:
        return client.post(
            "/api/v1/forms/racing/versions", headers=tenant.headers, json={"definition": definition}
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        versions = list(pool.map(post_version, range(8)))
    assert sorted(r.status_code for r in versions) == [200] * 7 + [201], [r.text[:200] for r in versions]
    assert len({r.json()["id"] for r in versions}) == 1

    inline = {"form_key": "racing-inline", "definition": revision_files(corpora, "radio")[1]}

    def post_release(_: int) -> Any:
        manifest = {"version": "1", "forms": [pin(versions[0].json()), inline]}
        return client.post("/api/v1/systems/racing/releases", headers=tenant.headers, json=manifest)

    with ThreadPoolExecutor(max_workers=8) as pool:
        releases = list(pool.map(post_release, range(8)))
    assert sorted(r.status_code for r in releases) == [200] * 7 + [201], [r.text[:200] for r in releases]
    assert len({r.json()["id"] for r in releases}) == 1
    assert client.get("/api/v1/systems/racing", headers=tenant.headers).json()["release_count"] == 1
    assert client.get("/api/v1/forms/racing-inline", headers=tenant.headers).json()["version_count"] == 1


def test_a_release_refused_as_a_conflict_leaves_none_of_its_inline_forms(
    lenient_client: TestClient, world: World, corpora: Path
) -> None:
    """Racing manifests for one release name: one wins, the others are 409 and must have written nothing."""
    client, tenant = lenient_client, world.tenant
    definitions = revision_files(corpora, "number")

    def post_release(i: int) -> Any:
        manifest = {
            "version": "1",
            "forms": [{"form_key": f"race-{i}", "definition": definitions[i % len(definitions)]}],
        }
        return client.post("/api/v1/systems/contested/releases", headers=tenant.headers, json=manifest)

    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(post_release, range(6)))
    assert sorted(r.status_code for r in responses) == [201] + [409] * 5, [r.text[:200] for r in responses]
    winner = next(r.json() for r in responses if r.status_code == 201)
    forms = client.get("/api/v1/forms", headers=tenant.headers, params={"limit": 200}).json()["items"]
    written = sorted(form["key"] for form in forms if form["key"].startswith("race-"))
    assert written == [p["form_key"] for p in winner["pins"]]


def test_releases_and_direct_posts_racing_on_one_inline_content_make_one_version(
    lenient_client: TestClient, world: World
) -> None:
    """Releases that add content as a new version while clients post that content directly all succeed."""
    client, tenant, shared = lenient_client, world.tenant, world.definition

    def post(i: int) -> Any:
        if i % 2:
            body = {"definition": shared}
            return client.post("/api/v1/forms/shared/versions", headers=tenant.headers, json=body)
        manifest = {"version": "1", "forms": [{"form_key": "shared", "definition": shared}]}
        return client.post(f"/api/v1/systems/system-{i}/releases", headers=tenant.headers, json=manifest)

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(post, range(8)))
    assert all(r.status_code in (200, 201) for r in responses), [r.text[:200] for r in responses]
    versions = {r.json()["id"] for r in responses[1::2]}
    pinned = {pin["version_id"] for r in responses[0::2] for pin in r.json()["pins"]}
    assert len(versions) == 1
    assert pinned == versions
    assert client.get("/api/v1/forms/shared", headers=tenant.headers).json()["version_count"] == 1


def test_tenants_sharing_form_and_system_keys_only_see_their_own(
    lenient_client: TestClient, world: World
) -> None:
    """Both tenants have form `number` and system `benefits`: key-based filters stay inside the tenant."""
    client, tenant = lenient_client, world.tenant
    own_versions = {world.v1["id"], world.v2["id"]}

    used_by = client.get(
        f"/api/v1/form-versions/{world.v2['id']}/used-by", headers=tenant.headers, params={"form": "true"}
    )
    assert used_by.status_code == 200, used_by.text
    assert [r["id"] for r in used_by.json()["items"]] == [world.release["id"]]

    history = client.get("/api/v1/forms/number/fields/number/history", headers=tenant.headers).json()["items"]
    assert history
    assert {entry["version_id"] for entry in history} <= own_versions

    for filters in ({"system": "benefits"}, {"form_keys": ["number"]}):
        search = client.post(
            "/api/v1/layouts/search",
            headers=tenant.headers,
            json={"text": "number", "k": 100, "filters": filters},
        )
        assert search.status_code == 200, search.text
        found = {hit["version_id"] for hit in search.json()["items"]}
        assert found, filters
        assert found <= own_versions, (filters, found)
    similar = client.get(
        f"/api/v1/form-versions/{world.v2['id']}/similar",
        headers=tenant.headers,
        params={"system": "benefits", "k": 100},
    )
    assert [hit["version_id"] for hit in similar.json()["items"]] == [world.v1["id"]]
    drift = client.get(f"/api/v1/releases/{world.release['id']}/drift", headers=tenant.headers).json()
    assert [n["id"] for n in drift["items"][0]["newer"]] == [world.v2["id"]]

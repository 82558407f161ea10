"""FormVersionProcessor through HTTP on the real stack: versions, lineage, diffs, similar, isolation."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.resources import open_graph
from app.settings import Settings
from graph.tenants import TenantRepository
from tests.e2e.conftest import TenantKey, create_tenant, revision_files


def post_version(client: TestClient, tenant: TenantKey, form_key: str, **body: Any) -> Any:
    return client.post(f"/api/v1/forms/{form_key}/versions", headers=tenant.headers, json=body)


def test_versions_get_numbers_lineage_and_diffs(client: TestClient, tenant: TenantKey, corpora: Path) -> None:
    first, second = revision_files(corpora, "conditional-page")[:2]

    v1 = post_version(client, tenant, "grid", definition=first)
    assert v1.status_code == 201, v1.text
    v1_body = v1.json()
    assert (v1_body["number"], v1_body["parents"], v1_body["diffs"]) == (1, [], [])
    assert v1_body["content_hash"].startswith("sha256:")
    assert v1_body["index_pending"] is False

    v2 = post_version(client, tenant, "grid", definition=second, label="rev 2")
    assert v2.status_code == 201, v2.text
    v2_body = v2.json()
    assert v2_body["number"] == 2
    assert v2_body["parents"] == [v1_body["id"]]
    assert v2_body["diffs"][0]["parent_id"] == v1_body["id"]
    assert v2_body["diffs"][0]["summary"] != "no changes"

    read = client.get(f"/api/v1/form-versions/{v2_body['id']}", headers=tenant.headers).json()
    assert read["label"] == "rev 2"
    assert read["parents"] == [v1_body["id"]]
    assert read["diffs"][0]["summary"] == v2_body["diffs"][0]["summary"]
    assert read["definition"]["source_format"] == "formio"

    form = client.get("/api/v1/forms/grid", headers=tenant.headers).json()
    assert (form["version_count"], form["latest_version_id"]) == (2, v2_body["id"])


def test_the_same_content_again_is_the_same_version(
    client: TestClient, tenant: TenantKey, corpora: Path
) -> None:
    first = revision_files(corpora, "conditional-page")[0]
    created = post_version(client, tenant, "again", definition=first)
    reordered = json.loads(json.dumps(first, sort_keys=True))
    again = post_version(client, tenant, "again", definition=reordered)
    assert (created.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == created.json()["id"]
    assert again.json()["created"] is False
    assert again.json()["unchanged"] is False
    assert created.json()["similar"] == []  # looked up: no other form has a layout yet
    assert again.json()["similar"] is None  # not looked up, which [] would not say
    # A revision naming as parent the version whose content it has (an edit that changed nothing kept):
    # that version, said to be unchanged, not a 409.
    same_as_parent = post_version(client, tenant, "again", definition=first, parents=[created.json()["id"]])
    assert same_as_parent.status_code == 200, same_as_parent.text
    assert same_as_parent.json()["id"] == created.json()["id"]
    assert same_as_parent.json()["unchanged"] is True
    versions = client.get("/api/v1/forms/again/versions", headers=tenant.headers).json()["items"]
    assert len(versions) == 1


def test_new_roots_and_explicit_merges(client: TestClient, tenant: TenantKey, corpora: Path) -> None:
    files = revision_files(corpora, "conditional-page")
    a = post_version(client, tenant, "dag", definition=files[0]).json()
    b = post_version(client, tenant, "dag", definition=files[1], parents=[]).json()
    assert b["parents"] == []
    merged_definition = {**files[1], "title": "merged"}
    merged = post_version(client, tenant, "dag", definition=merged_definition, parents=[a["id"], b["id"]])
    assert merged.status_code == 201, merged.text
    assert sorted(merged.json()["parents"]) == sorted([a["id"], b["id"]])
    assert {d["parent_id"] for d in merged.json()["diffs"]} == {a["id"], b["id"]}


def test_lists_are_paginated(client: TestClient, tenant: TenantKey, corpora: Path) -> None:
    files = revision_files(corpora, "conditional-page")
    for key in ("page-a", "page-b", "page-c"):
        assert post_version(client, tenant, key, definition=files[0]).status_code == 201
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get("/api/v1/forms", headers=tenant.headers, params=params).json()
        seen += [form["key"] for form in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["page-a", "page-b", "page-c"]
    bad = client.get("/api/v1/forms", headers=tenant.headers, params={"cursor": "!!"})
    assert bad.status_code == 422


def test_similar_layouts_come_from_other_forms(client: TestClient, tenant: TenantKey, corpora: Path) -> None:
    files = revision_files(corpora, "conditional-page")
    original = post_version(client, tenant, "original", definition=files[0]).json()
    copy = post_version(client, tenant, "copy", definition={**files[-1], "title": "A copy"}).json()
    assert copy["similar"], copy
    assert copy["similar"][0]["version_id"] == original["id"]
    assert copy["similar"][0]["form_key"] == "original"
    assert all(hit["form_key"] != "copy" for hit in copy["similar"])


def test_bad_input_is_refused_and_nothing_is_written(
    client: TestClient, tenant: TenantKey, corpora: Path
) -> None:
    files = revision_files(corpora, "conditional-page")
    cases = {
        "malformed": ({"definition": "{not json"}, 422, "JSON"),
        "wrong-format": ({"definition": files[0], "format": "surveyjs"}, 422, "surveyjs"),
        "unknown-format": ({"definition": files[0], "format": "docx"}, 422, "docx"),
        "unknown-parent": ({"definition": files[0], "parents": ["no-such-id"]}, 422, "no-such-id"),
        "not-a-definition": ({"definition": [1, 2]}, 422, "definition"),
    }
    for form_key, (body, status, needle) in cases.items():
        response = post_version(client, tenant, form_key, **body)
        assert response.status_code == status, (form_key, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert needle in response.json()["detail"], (form_key, response.json())
        assert client.get(f"/api/v1/forms/{form_key}", headers=tenant.headers).status_code == 404

    assert post_version(client, tenant, "bad key!", definition=files[0]).status_code == 422

    other = post_version(client, tenant, "other-form", definition=files[0]).json()
    cross = post_version(client, tenant, "this-form", definition=files[1], parents=[other["id"]])
    assert cross.status_code == 422
    assert "other-form" in cross.json()["detail"]
    assert client.get("/api/v1/forms/this-form", headers=tenant.headers).status_code == 404

    v1 = post_version(client, tenant, "immutable", definition=files[0]).json()
    v2 = post_version(client, tenant, "immutable", definition=files[1]).json()
    cycle = post_version(client, tenant, "immutable", definition=files[0], parents=[v2["id"]])
    assert cycle.status_code == 409
    assert v1["id"] in cycle.json()["detail"]
    assert client.get("/api/v1/forms/immutable", headers=tenant.headers).json()["version_count"] == 2

    huge = client.post(
        "/api/v1/forms/huge/versions",
        headers={**tenant.headers, "content-type": "application/json"},
        content=b'{"definition": "' + b"x" * 1_100_000 + b'"}',
    )
    assert huge.status_code == 413
    assert client.get("/api/v1/forms/huge", headers=tenant.headers).status_code == 404


def test_tenants_never_see_each_other(client: TestClient, app_settings: Settings, corpora: Path) -> None:
    a, b = create_tenant(app_settings), create_tenant(app_settings)
    files = revision_files(corpora, "conditional-page")
    mine = post_version(client, a, "shared-key", definition=files[0]).json()

    assert client.get(f"/api/v1/form-versions/{mine['id']}", headers=b.headers).status_code == 404
    assert client.get("/api/v1/forms/shared-key", headers=b.headers).status_code == 404
    assert client.get("/api/v1/forms", headers=b.headers).json()["items"] == []
    derive = post_version(client, b, "shared-key", definition=files[1], parents=[mine["id"]])
    assert derive.status_code == 422

    theirs = post_version(client, b, "lookalike", definition=files[0]).json()
    assert theirs["number"] == 1
    assert theirs["similar"] == []
    assert all(hit["version_id"] != mine["id"] for hit in theirs["similar"])


def chain_of(client: TestClient, tenant: TenantKey, form_key: str) -> list[dict[str, Any]]:
    """The form's versions by number, each checked to derive from the one before (the first from none)."""
    versions: list[dict[str, Any]] = client.get(
        f"/api/v1/forms/{form_key}/versions", headers=tenant.headers, params={"limit": 200}
    ).json()["items"]
    assert [v["number"] for v in versions] == list(range(1, len(versions) + 1))
    assert [v["parents"] for v in versions] == [[], *([previous["id"]] for previous in versions[:-1])], (
        "the lineage forked"
    )
    return versions


def test_concurrent_posts_lose_nothing_and_form_a_chain(
    client: TestClient, tenant: TenantKey, corpora: Path
) -> None:
    base = revision_files(corpora, "conditional-page")[0]

    def post_all(form_key: str, count: int) -> list[Any]:
        def derive(i: int) -> Any:
            return post_version(client, tenant, form_key, definition={**base, "title": f"variant {i}"})

        with ThreadPoolExecutor(max_workers=count) as pool:
            return list(pool.map(derive, range(count)))

    # Onto a form at v1, and onto a new form: a chain either way, never siblings or several roots.
    post_version(client, tenant, "busy", definition=base)
    for form_key, count, numbers in [("busy", 20, range(2, 22)), ("fresh", 20, range(1, 21))]:
        responses = post_all(form_key, count)
        assert [r.status_code for r in responses] == [201] * count, [r.text for r in responses]
        created = {r.json()["id"]: r.json() for r in responses}
        assert sorted(v["number"] for v in created.values()) == list(numbers)
        versions = chain_of(client, tenant, form_key)
        # Each answer names the parent it really got, with the diff from that parent.
        for version in versions:
            if version["id"] in created:
                answer = created[version["id"]]
                assert answer["parents"] == version["parents"]
                assert [d["parent_id"] for d in answer["diffs"]] == answer["parents"]


def test_releases_adding_versions_and_direct_posts_racing_on_one_form_form_a_chain(
    client: TestClient, tenant: TenantKey, corpora: Path
) -> None:
    base = revision_files(corpora, "conditional-page")[0]
    post_version(client, tenant, "mixed", definition=base)

    def post(i: int) -> Any:
        definition = {**base, "title": f"variant {i}"}
        if i % 2:
            return post_version(client, tenant, "mixed", definition=definition)
        manifest = {"version": "1", "forms": [{"form_key": "mixed", "definition": definition}]}
        return client.post(f"/api/v1/systems/mixed-{i}/releases", headers=tenant.headers, json=manifest)

    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(post, range(16)))
    assert [r.status_code for r in responses] == [201] * 16, [r.text[:300] for r in responses]
    versions = chain_of(client, tenant, "mixed")
    assert len(versions) == 17


def test_a_write_expecting_a_latest_that_moved_is_409_and_writes_nothing(
    client: TestClient, tenant: TenantKey, corpora: Path
) -> None:
    first, second, third = revision_files(corpora, "conditional-page")[:3]
    v1 = post_version(client, tenant, "guarded", definition=first).json()
    v2 = post_version(client, tenant, "guarded", definition=second, expected_latest=v1["id"])
    assert v2.status_code == 201, v2.text
    assert v2.json()["parents"] == [v1["id"]]

    stale = post_version(client, tenant, "guarded", definition=third, expected_latest=v1["id"])
    assert stale.status_code == 409, stale.text
    assert stale.headers["content-type"] == "application/problem+json"
    assert f"is {v2.json()['id']}, not {v1['id']}: nothing was written" in stale.json()["detail"]
    # A branch off an older version is still possible when asked for: parents name it, the guard holds.
    branch = post_version(
        client, tenant, "guarded", definition=third, parents=[v1["id"]], expected_latest=v2.json()["id"]
    )
    assert branch.status_code == 201, branch.text
    assert branch.json()["parents"] == [v1["id"]]
    assert len(client.get("/api/v1/forms/guarded/versions", headers=tenant.headers).json()["items"]) == 3


@pytest.mark.parametrize(
    ("source_format", "definition"),
    [
        (
            "native",
            {
                "key": "twice",
                "title": "Twice",
                "layout": [
                    {"node": "group", "title": "You", "children": [{"node": "field", "key": "name"}]},
                    {"node": "group", "title": "Them", "children": [{"node": "field", "key": "name"}]},
                ],
            },
        ),
        (
            "formio",
            {
                "display": "form",
                "components": [
                    {"type": "textfield", "key": "name", "label": "Your name"},
                    {"type": "textfield", "key": "name", "label": "Their name"},
                ],
            },
        ),
        (
            "surveyjs",
            {
                "pages": [
                    {"name": "p1", "elements": [{"type": "text", "name": "name", "title": "Your name"}]},
                    {"name": "p2", "elements": [{"type": "text", "name": "name", "title": "Their name"}]},
                ]
            },
        ),
    ],
)
def test_a_field_key_several_fields_use_is_taken_with_a_warning_in_every_format(
    client: TestClient, tenant: TenantKey, source_format: str, definition: dict[str, Any]
) -> None:
    form_key = f"twice-{source_format}"
    created = post_version(client, tenant, form_key, definition=definition, format=source_format)
    assert created.status_code == 201, created.text
    assert created.json()["warnings"] == [
        "field key 'name' is used by 2 fields: prefill data and a field's history treat them as one"
    ]
    again = post_version(client, tenant, form_key, definition=definition, format=source_format)
    assert again.json()["warnings"] == created.json()["warnings"]
    single = {"key": "once", "title": "Once", "layout": [{"node": "field", "key": "name"}]}
    assert post_version(client, tenant, f"once-{source_format}", definition=single).json()["warnings"] == []


def test_a_batch_writes_each_item_as_a_post_would_and_a_refused_item_refuses_only_itself(
    client: TestClient, tenant: TenantKey, corpora: Path, app_settings: Settings
) -> None:
    files = revision_files(corpora, "conditional-page")
    items = [
        {"form_key": "batched", "definition": files[0]},
        {"form_key": "batched", "definition": files[1]},
        {"form_key": "batched", "definition": files[0]},  # already the first version: 200
        {"form_key": "batched", "definition": files[2], "format": "no-such-format"},
        {"form_key": "batched-too", "definition": files[2]},
    ]
    response = client.post("/api/v1/forms/versions:batch", headers=tenant.headers, json={"items": items})
    assert response.status_code == 200, response.text
    results = response.json()["items"]
    assert [r["status"] for r in results] == [201, 201, 200, 422, 201]
    assert [r["index"] for r in results] == list(range(5))
    assert results[2]["version"]["id"] == results[0]["version"]["id"]
    assert "no-such-format" in results[3]["problem"]["detail"]
    assert results[3]["version"] is None
    versions = chain_of(client, tenant, "batched")
    assert [v["id"] for v in versions] == [results[0]["version"]["id"], results[1]["version"]["id"]]

    again = client.post("/api/v1/forms/versions:batch", headers=tenant.headers, json={"items": items})
    assert [r["status"] for r in again.json()["items"]] == [200, 200, 200, 422, 200]

    reader = create_tenant(app_settings)
    read_only = client.post(
        "/api/v1/forms/versions:batch",
        headers={"Authorization": f"Bearer {issue_read_only_key(app_settings, reader.name)}"},
        json={"items": items[:1]},
    )
    assert read_only.status_code == 403
    too_many = client.post(
        "/api/v1/forms/versions:batch", headers=tenant.headers, json={"items": [items[0]] * 101}
    )
    assert too_many.status_code == 422


def issue_read_only_key(settings: Settings, tenant: str) -> str:
    async def work() -> str:
        graph = open_graph(settings)
        try:
            return await TenantRepository(graph).issue_key(tenant, "read")
        finally:
            await graph.close()

    return asyncio.run(work())

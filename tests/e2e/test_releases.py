"""SysVersionProcessor through HTTP on the real stack: releases, pins, release diffs, isolation."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from app.settings import Settings
from ingest import diff_definitions
from ingest.native import import_native
from tests.e2e.conftest import TenantKey, create_tenant, post_version, revision_files


def post_release(client: TestClient, tenant: TenantKey, system_key: str, **body: Any) -> Any:
    return client.post(f"/api/v1/systems/{system_key}/releases", headers=tenant.headers, json=body)


def get(client: TestClient, tenant: TenantKey, path: str, **params: Any) -> Any:
    return client.get(f"/api/v1{path}", headers=tenant.headers, params=params)


def pin(version: dict[str, Any]) -> dict[str, str]:
    return {"form_key": version["form_key"], "version_id": version["id"]}


def version_count(client: TestClient, tenant: TenantKey, form_key: str) -> int:
    form = get(client, tenant, f"/forms/{form_key}")
    return 0 if form.status_code == 404 else int(form.json()["version_count"])


def test_a_release_pins_versions_and_the_next_one_reports_its_diff(
    client: TestClient, tenant: TenantKey, corpora: Path
) -> None:
    number = revision_files(corpora, "number")
    number_v1 = post_version(client, tenant, "number", number[0])
    number_v2 = post_version(client, tenant, "number", number[1])
    radio_v1 = post_version(client, tenant, "radio", revision_files(corpora, "radio")[0])
    page_v1 = post_version(client, tenant, "conditional-page", revision_files(corpora, "conditional-page")[0])

    first = post_release(
        client, tenant, "benefits", version="2024.1", forms=[pin(radio_v1), pin(number_v1), pin(page_v1)]
    )
    assert first.status_code == 201, first.text
    r1 = first.json()
    assert (r1["system_key"], r1["version"], r1["number"], r1["created"]) == ("benefits", "2024.1", 1, True)
    assert (r1["parents"], r1["diffs"]) == ([], [])
    assert r1["pins"] == [
        {"form_key": v["form_key"], "version_id": v["id"], "number": 1, "content_hash": v["content_hash"]}
        for v in (page_v1, number_v1, radio_v1)
    ]

    textfield = revision_files(corpora, "textfield")[0]
    second = post_release(
        client,
        tenant,
        "benefits",
        version="2024.2",
        forms=[pin(number_v2), pin(page_v1), {"form_key": "textfield", "definition": textfield}],
    )
    assert second.status_code == 201, second.text
    r2 = second.json()
    textfield_form = get(client, tenant, "/forms/textfield").json()
    assert textfield_form["version_count"] == 1
    assert {p["form_key"]: p["version_id"] for p in r2["pins"]} == {
        "conditional-page": page_v1["id"],
        "number": number_v2["id"],
        "textfield": textfield_form["latest_version_id"],
    }
    assert r2["parents"] == [r1["id"]]
    [diff] = r2["diffs"]
    assert (diff["parent_id"], diff["parent_version"]) == (r1["id"], "2024.1")
    assert diff["forms_added"] == ["textfield"]
    assert diff["forms_removed"] == ["radio"]
    assert diff["forms_changed"] == [
        {
            "form_key": "number",
            "from_version_id": number_v1["id"],
            "to_version_id": number_v2["id"],
            "summary": number_v2["diffs"][0]["summary"],
        }
    ]
    assert number_v2["diffs"][0]["summary"] != "no changes"
    assert diff["forms_unchanged_count"] == 1
    assert diff["summary"] == "forms: 1 added, 1 removed, 1 changed; 1 unchanged"

    read = get(client, tenant, f"/releases/{r2['id']}").json()
    assert read == {key: value for key, value in r2.items() if key != "created"}
    listed = get(client, tenant, "/systems/benefits/releases").json()["items"]
    assert [(r["version"], r["number"], r["pin_count"]) for r in listed] == [
        ("2024.1", 1, 3),
        ("2024.2", 2, 3),
    ]
    system = get(client, tenant, "/systems/benefits").json()
    assert (system["release_count"], system["latest_release_id"]) == (2, r2["id"])


def test_a_pin_that_skips_versions_is_diffed_from_the_definitions(
    client: TestClient, tenant: TenantKey, corpora: Path
) -> None:
    files = revision_files(corpora, "number")
    v1, _v2, v3 = (post_version(client, tenant, "number", definition) for definition in files[:3])
    r1 = post_release(client, tenant, "skips", version="1", forms=[pin(v1)]).json()
    r2 = post_release(client, tenant, "skips", version="2", forms=[pin(v3)])
    assert r2.status_code == 201, r2.text

    definitions = [get(client, tenant, f"/form-versions/{v['id']}").json()["definition"] for v in (v1, v3)]
    expected = diff_definitions(import_native(definitions[0]), import_native(definitions[1])).summary
    [diff] = r2.json()["diffs"]
    assert diff["parent_id"] == r1["id"]
    assert diff["forms_changed"][0]["summary"] == expected
    assert expected != "no changes"
    assert expected != v3["diffs"][0]["summary"]

    # An inline definition whose content already is a version pins that version; nothing new is written.
    r3 = post_release(
        client, tenant, "skips", version="3", forms=[{"form_key": "number", "definition": files[0]}]
    )
    assert r3.status_code == 201, r3.text
    assert r3.json()["pins"][0]["version_id"] == v1["id"]
    assert version_count(client, tenant, "number") == 3


def test_posting_a_release_again_is_idempotent_and_other_pins_conflict(
    client: TestClient, tenant: TenantKey, corpora: Path
) -> None:
    files = revision_files(corpora, "radio")
    v1, v2 = post_version(client, tenant, "radio", files[0]), post_version(client, tenant, "radio", files[1])
    manifest = {"version": "7.0", "forms": [pin(v1)]}
    created = post_release(client, tenant, "again", **manifest)
    assert created.status_code == 201, created.text

    again = post_release(client, tenant, "again", **manifest)
    assert again.status_code == 200, again.text
    assert again.json() == {**created.json(), "created": False}
    inline_again = post_release(
        client, tenant, "again", version="7.0", forms=[{"form_key": "radio", "definition": files[0]}]
    )
    assert inline_again.status_code == 200, inline_again.text
    assert inline_again.json()["id"] == created.json()["id"]

    other = post_release(client, tenant, "again", version="7.0", forms=[pin(v2)])
    assert other.status_code == 409
    assert other.headers["content-type"] == "application/problem+json"
    assert "radio" in other.json()["detail"]
    new_content = {"form_key": "radio", "definition": {**files[0], "title": "never stored"}}
    other_inline = post_release(client, tenant, "again", version="7.0", forms=[new_content])
    assert other_inline.status_code == 409
    assert version_count(client, tenant, "radio") == 2
    assert get(client, tenant, "/systems/again").json()["release_count"] == 1

    def repost(_: int) -> Any:
        return post_release(client, tenant, "again", version="8.0", forms=[pin(v2)])

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(repost, range(8)))
    assert sorted(r.status_code for r in responses) == [200] * 7 + [201], [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert get(client, tenant, "/systems/again").json()["release_count"] == 2


def test_new_roots_and_merges(client: TestClient, tenant: TenantKey, corpora: Path) -> None:
    number = post_version(client, tenant, "number", revision_files(corpora, "number")[0])
    radio = post_version(client, tenant, "radio", revision_files(corpora, "radio")[0])
    a = post_release(client, tenant, "forked", version="a", forms=[pin(number)]).json()
    b = post_release(client, tenant, "forked", version="b", parents=[], forms=[pin(radio)]).json()
    assert (b["parents"], b["diffs"]) == ([], [])
    merged = post_release(
        client, tenant, "forked", version="ab", parents=[a["id"], b["id"]], forms=[pin(number), pin(radio)]
    )
    assert merged.status_code == 201, merged.text
    diffs = {d["parent_version"]: d for d in merged.json()["diffs"]}
    assert (diffs["a"]["forms_added"], diffs["a"]["forms_unchanged_count"]) == (["radio"], 1)
    assert (diffs["b"]["forms_added"], diffs["b"]["forms_unchanged_count"]) == (["number"], 1)
    assert diffs["a"]["forms_removed"] == diffs["b"]["forms_removed"] == []
    assert sorted(merged.json()["parents"]) == sorted([a["id"], b["id"]])


def test_bad_input_is_refused_and_nothing_is_written(
    client: TestClient, tenant: TenantKey, app_settings: Settings, corpora: Path
) -> None:
    number = post_version(client, tenant, "number", revision_files(corpora, "number")[0])
    textfield = revision_files(corpora, "textfield")[0]
    other_tenant = create_tenant(app_settings)
    foreign = post_version(client, other_tenant, "number", revision_files(corpora, "number")[1])
    inline_new = {"form_key": "fresh", "definition": textfield}

    cases: dict[str, tuple[dict[str, Any], str]] = {
        "unknown-version": (
            {"version": "1", "forms": [{"form_key": "number", "version_id": "no-such-id"}]},
            "no-such-id",
        ),
        "other-form": (
            {"version": "1", "forms": [{"form_key": "radio", "version_id": number["id"]}]},
            "'number'",
        ),
        "other-tenant": (
            {"version": "1", "forms": [pin(foreign)]},
            f"form version {foreign['id']} not found",
        ),
        "duplicate": (
            {"version": "1", "forms": [pin(number), inline_new | {"form_key": "number"}]},
            "number",
        ),
        "no-forms": ({"version": "1"}, "forms"),
        "empty-forms": ({"version": "1", "forms": []}, "forms"),
        "no-version": ({"forms": [pin(number)]}, "version"),
        "empty-version": ({"version": "", "forms": [pin(number)]}, "version"),
        "half-a-pin": ({"version": "1", "forms": [{"form_key": "number"}]}, "forms"),
        "unknown-parent": (
            {"version": "1", "parents": ["no-such-release"], "forms": [pin(number), inline_new]},
            "no-such-release",
        ),
        "malformed-inline": (
            {"version": "1", "forms": [pin(number), {"form_key": "fresh", "definition": "{not json"}]},
            "fresh",
        ),
        "bad-form-key": (
            {"version": "1", "forms": [{"form_key": "bad key!", "definition": textfield}]},
            "bad key!",
        ),
    }
    for system_key, (body, needle) in cases.items():
        response = post_release(client, tenant, system_key, **body)
        assert response.status_code == 422, (system_key, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert needle in response.json()["detail"], (system_key, response.json())
        assert get(client, tenant, f"/systems/{system_key}").status_code == 404
        assert get(client, tenant, f"/systems/{system_key}/releases").status_code == 404

    assert post_release(client, tenant, "bad key!", version="1", forms=[pin(number)]).status_code == 422
    assert get(client, tenant, "/systems").json()["items"] == []
    assert version_count(client, tenant, "fresh") == 0
    assert version_count(client, tenant, "number") == 1
    assert get(client, tenant, "/releases/no-such-release").status_code == 404

    # A release of another system is not a parent; the refused release leaves its system as it was.
    elsewhere = post_release(client, tenant, "elsewhere", version="1", forms=[pin(number)]).json()
    here = post_release(client, tenant, "here", version="1", forms=[pin(number)]).json()
    cross = post_release(
        client, tenant, "here", version="2", parents=[elsewhere["id"]], forms=[pin(number), inline_new]
    )
    assert cross.status_code == 422
    assert "elsewhere" in cross.json()["detail"]
    assert get(client, tenant, "/systems/here").json() | {"created_at": None} == {
        "key": "here",
        "release_count": 1,
        "latest_release_id": here["id"],
        "created_at": None,
    }
    assert version_count(client, tenant, "fresh") == 0


def test_tenants_never_see_each_other(client: TestClient, app_settings: Settings, corpora: Path) -> None:
    a, b = create_tenant(app_settings), create_tenant(app_settings)
    files = revision_files(corpora, "radio")
    mine = post_version(client, a, "radio", files[0])
    release = post_release(client, a, "shared", version="1", forms=[pin(mine)]).json()

    assert get(client, b, f"/releases/{release['id']}").status_code == 404
    assert get(client, b, "/systems/shared").status_code == 404
    assert get(client, b, "/systems/shared/releases").status_code == 404
    assert get(client, b, "/systems").json()["items"] == []

    theirs = post_version(client, b, "radio", files[1])
    derive = post_release(client, b, "shared", version="2", parents=[release["id"]], forms=[pin(theirs)])
    assert derive.status_code == 422
    assert derive.json()["detail"] == f"parent release not found: {release['id']}"
    borrow = post_release(client, b, "shared", version="2", forms=[pin(mine)])
    assert borrow.status_code == 422
    assert "not found" in borrow.json()["detail"]

    own = post_release(client, b, "shared", version="1", forms=[pin(theirs)])
    assert own.status_code == 201, own.text
    assert (own.json()["number"], own.json()["parents"]) == (1, [])
    assert get(client, a, "/systems/shared").json()["latest_release_id"] == release["id"]
    assert [r["id"] for r in get(client, a, "/systems/shared/releases").json()["items"]] == [release["id"]]


def test_lists_are_paginated(client: TestClient, tenant: TenantKey, corpora: Path) -> None:
    version = post_version(client, tenant, "radio", revision_files(corpora, "radio")[0])
    for system_key in ("sys-c", "sys-a", "sys-b"):
        assert post_release(client, tenant, system_key, version="1", forms=[pin(version)]).status_code == 201
    for name in ("z", "y", "x"):
        assert post_release(client, tenant, "sys-a", version=name, forms=[pin(version)]).status_code == 201

    def walk(path: str, field: str) -> list[Any]:
        seen: list[Any] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = get(client, tenant, path, **params).json()
            assert len(page["items"]) <= 2
            seen += [item[field] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                return seen

    assert walk("/systems", "key") == ["sys-a", "sys-b", "sys-c"]
    assert walk("/systems/sys-a/releases", "version") == ["1", "z", "y", "x"]
    assert get(client, tenant, "/systems/sys-a/releases", cursor="!!").status_code == 422

"""Lineage endpoints through HTTP on the real stack: ancestry, diffs, merge bases, field history, pins."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.settings import Settings
from ingest import diff_definitions, import_definition
from tests.e2e.conftest import TenantKey, create_tenant, post_version, revision_files


def post_release(client: TestClient, tenant: TenantKey, system_key: str, version: str, *pins: Any) -> Any:
    forms = [{"form_key": v["form_key"], "version_id": v["id"]} for v in pins]
    response = client.post(
        f"/api/v1/systems/{system_key}/releases",
        headers=tenant.headers,
        json={"version": version, "forms": forms},
    )
    assert response.status_code == 201, response.text
    return response.json()


def get(client: TestClient, tenant: TenantKey, path: str, **params: Any) -> Any:
    return client.get(f"/api/v1{path}", headers=tenant.headers, params=params)


def ok(client: TestClient, tenant: TenantKey, path: str, **params: Any) -> Any:
    response = get(client, tenant, path, **params)
    assert response.status_code == 200, response.text
    return response.json()


def summary_of(child: dict[str, Any], parent: dict[str, Any]) -> str:
    return next(d["summary"] for d in child["diffs"] if d["parent_id"] == parent["id"])


def node_set(lineage: dict[str, Any]) -> set[tuple[str, int, str]]:
    return {(n["id"], n["distance"], n["relation"]) for n in lineage["nodes"]}


def edge_set(lineage: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(e["child_id"], e["parent_id"], e["summary"]) for e in lineage["edges"]}


@pytest.fixture
def family(client: TestClient, tenant: TenantKey, corpora: Path) -> dict[str, Any]:
    """v1 <- v2 <- v3, a branch b1 from v1, merges m and x of v3 and b1 (form `number`)."""
    files = revision_files(corpora, "number")
    v1 = post_version(client, tenant, "number", files[0])
    v2 = post_version(client, tenant, "number", files[1])
    v3 = post_version(client, tenant, "number", files[2], parents=[v2["id"]])
    b1 = post_version(client, tenant, "number", files[3], parents=[v1["id"]])
    m = post_version(client, tenant, "number", files[4], parents=[v3["id"], b1["id"]])
    x = post_version(client, tenant, "number", files[5], parents=[b1["id"], v3["id"]])
    return {"v1": v1, "v2": v2, "v3": v3, "b1": b1, "m": m, "x": x}


def test_lineage_up_down_both_with_depth_limits_and_edge_summaries(
    client: TestClient, tenant: TenantKey, family: dict[str, Any]
) -> None:
    v1, v2, v3, b1, m = (family[k] for k in ("v1", "v2", "v3", "b1", "m"))

    up = ok(client, tenant, f"/form-versions/{m['id']}/lineage")
    assert (up["direction"], up["depth"]) == ("up", 50)
    assert node_set(up) == {
        (m["id"], 0, "self"),
        (v3["id"], 1, "ancestor"),
        (b1["id"], 1, "ancestor"),
        (v2["id"], 2, "ancestor"),
        (v1["id"], 2, "ancestor"),
    }
    assert [n["distance"] for n in up["nodes"]] == [0, 1, 1, 2, 2]
    assert edge_set(up) == {
        (m["id"], v3["id"], summary_of(m, v3)),
        (m["id"], b1["id"], summary_of(m, b1)),
        (v3["id"], v2["id"], summary_of(v3, v2)),
        (v2["id"], v1["id"], summary_of(v2, v1)),
        (b1["id"], v1["id"], summary_of(b1, v1)),
    }
    assert all(e["summary"] for e in up["edges"])

    one = ok(client, tenant, f"/form-versions/{m['id']}/lineage", depth=1)
    assert node_set(one) == {(m["id"], 0, "self"), (v3["id"], 1, "ancestor"), (b1["id"], 1, "ancestor")}
    assert {(c, p) for c, p, _ in edge_set(one)} == {(m["id"], v3["id"]), (m["id"], b1["id"])}

    down = ok(client, tenant, f"/form-versions/{v1['id']}/lineage", direction="down", depth=1)
    assert node_set(down) == {(v1["id"], 0, "self"), (v2["id"], 1, "descendant"), (b1["id"], 1, "descendant")}
    assert {(c, p) for c, p, _ in edge_set(down)} == {(v2["id"], v1["id"]), (b1["id"], v1["id"])}

    both = ok(client, tenant, f"/form-versions/{v3['id']}/lineage", direction="both", depth=1)
    assert node_set(both) == {
        (v3["id"], 0, "self"),
        (v2["id"], 1, "ancestor"),
        (m["id"], 1, "descendant"),
        (family["x"]["id"], 1, "descendant"),
    }

    assert ok(client, tenant, f"/form-versions/{m['id']}/lineage", depth=1000)["nodes"] == up["nodes"]
    over = get(client, tenant, f"/form-versions/{m['id']}/lineage", depth=1001)
    assert over.status_code == 422
    assert "cap of 1000" in over.json()["detail"]
    assert get(client, tenant, f"/form-versions/{m['id']}/lineage", depth=0).status_code == 422
    assert get(client, tenant, f"/form-versions/{m['id']}/lineage", direction="sideways").status_code == 422


def test_merge_base_of_branches_merges_and_unrelated_versions(
    client: TestClient, tenant: TenantKey, family: dict[str, Any], corpora: Path
) -> None:
    v1, v3, b1, m, x = (family[k] for k in ("v1", "v3", "b1", "m", "x"))

    def bases(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
        body = ok(client, tenant, f"/form-versions/{a['id']}/merge-base", **{"with": b["id"]})
        return [base["id"] for base in body["merge_bases"]]

    assert bases(v3, b1) == [v1["id"]]
    assert bases(m, v3) == [v3["id"]]
    assert bases(v1, v1) == [v1["id"]]
    assert sorted(bases(m, x)) == sorted([v3["id"], b1["id"]])  # criss-cross: two lowest common ancestors
    radio = post_version(client, tenant, "radio", revision_files(corpora, "radio")[0])
    assert bases(m, radio) == []


def test_diff_between_any_two_versions_matches_an_independent_diff(
    client: TestClient, tenant: TenantKey, family: dict[str, Any], corpora: Path
) -> None:
    files = revision_files(corpora, "number")
    v1, v3 = family["v1"], family["v3"]
    body = ok(client, tenant, f"/form-versions/{v3['id']}/diff", against=v1["id"])
    expected = diff_definitions(
        import_definition(files[0], key="number"), import_definition(files[2], key="number")
    )
    assert body["summary"] == expected.summary
    assert (body["added"], body["removed"], body["changed"]) == (
        expected.added,
        expected.removed,
        expected.changed,
    )
    assert len(body["changes"]) == len(expected.changes)

    radio_file = revision_files(corpora, "radio")[0]
    radio = post_version(client, tenant, "radio", radio_file)
    across = ok(client, tenant, f"/form-versions/{radio['id']}/diff", against=v1["id"])
    expected_across = diff_definitions(
        import_definition(files[0], key="number"), import_definition(radio_file, key="radio")
    )
    assert across["summary"] == expected_across.summary
    assert across["added"] == expected_across.added > 0
    same = ok(client, tenant, f"/form-versions/{v1['id']}/diff", against=v1["id"])
    assert same["changes"] == []


def expected_field_history(definitions: list[Any], field_key: str) -> list[tuple[int, str]]:
    """(version number, action) for the field along a linear chain, from diffs of consecutive files."""
    entries = []
    if any(f.key == field_key for f in definitions[0].fields()):
        entries.append((1, "added"))
    for number, (old, new) in enumerate(itertools.pairwise(definitions), start=2):
        for change in diff_definitions(old, new).changes:
            if change.kind.value.startswith("field_") and field_key in (change.key, change.old_key):
                entries.append((number, change.action))
    return entries


def test_field_history_follows_the_stored_changes_along_the_lineage(
    client: TestClient, tenant: TenantKey, corpora: Path
) -> None:
    files = revision_files(corpora, "number")
    versions = [post_version(client, tenant, "number", f) for f in files]
    definitions = [import_definition(f, key="number") for f in files]

    expected = expected_field_history(definitions, "number2")
    assert len(expected) >= 3
    history = ok(client, tenant, "/forms/number/fields/number2/history")
    assert [(e["number"], e["action"]) for e in history["items"]] == expected
    assert history["next_cursor"] is None
    first_change = next(e for e in history["items"] if e["action"] == "changed")
    assert first_change["properties"], "a change says what changed"
    assert first_change["parent_id"] == versions[first_change["number"] - 2]["id"]

    paged = ok(client, tenant, "/forms/number/fields/number2/history", limit=2)
    rest = ok(client, tenant, "/forms/number/fields/number2/history", limit=2, cursor=paged["next_cursor"])
    assert [e["version_id"] for e in paged["items"] + rest["items"]] == [
        e["version_id"] for e in history["items"]
    ][:4]

    middle = versions[4]
    earlier = ok(client, tenant, "/forms/number/fields/number2/history", version=middle["id"])
    assert [(e["number"], e["action"]) for e in earlier["items"]] == [
        entry for entry in expected if entry[0] <= middle["number"]
    ]
    assert ok(client, tenant, "/forms/number/fields/no-such-field/history")["items"] == []
    assert get(client, tenant, "/forms/no-such-form/fields/number2/history").status_code == 404


def test_field_history_of_a_key_with_a_slash_is_reachable(client: TestClient, tenant: TenantKey) -> None:
    schema = {"type": "object", "title": "Slashes", "properties": {"address/street": {"type": "string"}}}
    first = post_version(client, tenant, "slashes", schema)
    changed = {**schema, "properties": {"address/street": {"type": "string", "title": "Street"}}}
    second = post_version(client, tenant, "slashes", changed)
    for path in [
        "/forms/slashes/fields/address/street/history",
        "/forms/slashes/fields/address%2Fstreet/history",
    ]:
        history = ok(client, tenant, path)
        assert [(e["version_id"], e["action"]) for e in history["items"]] == [
            (first["id"], "added"),
            (second["id"], "changed"),
        ], path


def test_field_history_follows_a_rename(client: TestClient, tenant: TenantKey, corpora: Path) -> None:
    files = revision_files(corpora, "activities")
    for definition in files:
        client.post(
            "/api/v1/forms/activities/versions", headers=tenant.headers, json={"definition": definition}
        )
    history = ok(client, tenant, "/forms/activities/fields/aktivitet/history")["items"]
    renames = [e for e in history if e["action"] == "renamed"]
    assert renames, history
    old_key = renames[0]["old_key"]
    assert old_key
    assert old_key != "aktivitet"
    before = [e for e in history if e["number"] < renames[0]["number"]]
    assert before
    assert all(e["key"] == old_key for e in before)


def test_used_by_impact_and_drift_rank_releases_by_lineage(
    client: TestClient, tenant: TenantKey, corpora: Path
) -> None:
    files = revision_files(corpora, "number")
    v1 = post_version(client, tenant, "number", files[0])
    v2 = post_version(client, tenant, "number", files[1])
    v3 = post_version(client, tenant, "number", files[2])
    b1 = post_version(client, tenant, "number", files[3], parents=[v1["id"]])
    r1 = post_version(client, tenant, "radio", revision_files(corpora, "radio")[0])
    rel_a = post_release(client, tenant, "benefits", "1", v1, r1)
    rel_b = post_release(client, tenant, "benefits", "2", v2, r1)
    rel_c = post_release(client, tenant, "claims", "1", v3)

    def used_by(version: dict[str, Any], **params: Any) -> list[tuple[str, str]]:
        page = ok(client, tenant, f"/form-versions/{version['id']}/used-by", **params)
        return [(item["id"], item["pinned_version_id"]) for item in page["items"]]

    assert used_by(v1) == [(rel_a["id"], v1["id"])]
    assert used_by(r1) == [(rel_a["id"], r1["id"]), (rel_b["id"], r1["id"])]
    assert used_by(b1) == []
    whole_form = [(rel_a["id"], v1["id"]), (rel_b["id"], v2["id"]), (rel_c["id"], v3["id"])]
    assert used_by(b1, form="true") == whole_form
    first = ok(client, tenant, f"/form-versions/{b1['id']}/used-by", form="true", limit=2)
    second = ok(
        client, tenant, f"/form-versions/{b1['id']}/used-by", form="true", cursor=first["next_cursor"]
    )
    assert [i["id"] for i in first["items"] + second["items"]] == [r for r, _ in whole_form]

    impact = ok(client, tenant, f"/form-versions/{v1['id']}/impact")["items"]
    assert [(i["version_id"], i["distance"], [r["id"] for r in i["releases"]]) for i in impact] == [
        (v1["id"], 0, [rel_a["id"]]),
        (v2["id"], 1, [rel_b["id"]]),
        (b1["id"], 1, []),
        (v3["id"], 2, [rel_c["id"]]),
    ]
    head = ok(client, tenant, f"/form-versions/{v1['id']}/impact", limit=3)
    tail = ok(client, tenant, f"/form-versions/{v1['id']}/impact", limit=3, cursor=head["next_cursor"])
    assert [i["version_id"] for i in head["items"] + tail["items"]] == [i["version_id"] for i in impact]

    drift = ok(client, tenant, f"/releases/{rel_a['id']}/drift")
    assert (drift["release_id"], drift["system_key"], drift["version"]) == (rel_a["id"], "benefits", "1")
    pins = {p["form_key"]: p for p in drift["items"]}
    assert list(pins) == ["number", "radio"]
    assert pins["radio"]["newer"] == []
    newer = pins["number"]["newer"]
    assert [(n["id"], n["distance"]) for n in newer] == [(v2["id"], 1), (b1["id"], 1), (v3["id"], 2)]
    assert newer[0]["diffs"] == [{"parent_id": v1["id"], "summary": summary_of(v2, v1)}]
    assert ok(client, tenant, f"/releases/{rel_c['id']}/drift")["items"][0]["newer"] == []


def test_every_lineage_endpoint_is_404_for_another_tenants_ids(
    client: TestClient, tenant: TenantKey, app_settings: Settings, corpora: Path
) -> None:
    files = revision_files(corpora, "number")
    v1 = post_version(client, tenant, "number", files[0])
    v2 = post_version(client, tenant, "number", files[1])
    release = post_release(client, tenant, "benefits", "1", v1)
    other = create_tenant(app_settings)
    theirs = post_version(client, other, "number", files[0])

    paths = [
        f"/form-versions/{v2['id']}/lineage",
        f"/form-versions/{v2['id']}/diff?against={v1['id']}",
        f"/form-versions/{v2['id']}/merge-base?with={v1['id']}",
        f"/form-versions/{v1['id']}/used-by",
        f"/form-versions/{v1['id']}/used-by?form=true",
        f"/form-versions/{v1['id']}/impact",
        f"/releases/{release['id']}/drift",
        f"/forms/number/fields/number2/history?version={v2['id']}",
    ]
    for path in paths:
        response = client.get(f"/api/v1{path}", headers=other.headers)
        assert response.status_code == 404, (path, response.text)
        assert client.get(f"/api/v1{path}", headers=tenant.headers).status_code == 200, path

    mixed = [
        f"/form-versions/{v2['id']}/diff?against={theirs['id']}",
        f"/form-versions/{theirs['id']}/diff?against={v2['id']}",
        f"/form-versions/{v2['id']}/merge-base?with={theirs['id']}",
    ]
    for path in mixed:
        assert client.get(f"/api/v1{path}", headers=tenant.headers).status_code == 404, path
    their_history = ok(client, other, "/forms/number/fields/number/history")["items"]
    assert [(e["version_id"], e["action"]) for e in their_history] == [(theirs["id"], "added")]
    their_lineage = ok(client, other, f"/form-versions/{theirs['id']}/lineage", direction="both")
    assert [n["id"] for n in their_lineage["nodes"]] == [theirs["id"]]

"""Similar layouts through HTTP on the real stack: scopes, grouping, filters, search, recommend, parents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from app.settings import Settings
from tests.e2e.conftest import TenantKey, create_tenant, revision_files


def post_version(client: TestClient, tenant: TenantKey, form_key: str, definition: Any, **body: Any) -> Any:
    response = client.post(
        f"/api/v1/forms/{form_key}/versions", headers=tenant.headers, json={"definition": definition, **body}
    )
    assert response.status_code == 201, response.text
    assert response.json()["index_pending"] is False
    return response.json()


def get(client: TestClient, tenant: TenantKey, path: str, **params: Any) -> Any:
    return client.get(f"/api/v1{path}", headers=tenant.headers, params=params)


def similar(client: TestClient, tenant: TenantKey, version_id: str, **params: Any) -> list[dict[str, Any]]:
    response = get(client, tenant, f"/form-versions/{version_id}/similar", **params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["version_id"] for item in items]


def seed(client: TestClient, tenant: TenantKey, corpora: Path) -> dict[str, list[dict[str, Any]]]:
    """Four versions of `page` (one lineage), two of `grid`, one each of `prefill` and `radio`."""
    page = revision_files(corpora, "conditional-page")[:4]
    grid = revision_files(corpora, "datagrid")[:2]
    return {
        "page": [post_version(client, tenant, "page", d) for d in page],
        "grid": [post_version(client, tenant, "grid", d) for d in grid],
        "prefill": [post_version(client, tenant, "prefill", revision_files(corpora, "prefill-data")[0])],
        "radio": [post_version(client, tenant, "radio", revision_files(corpora, "radio")[0])],
    }


def test_scopes_are_applied_inside_the_vector_query(
    client: TestClient, tenant: TenantKey, corpora: Path
) -> None:
    forms = seed(client, tenant, corpora)
    page = [v["id"] for v in forms["page"]]
    others = {v["id"] for key in ("grid", "prefill", "radio") for v in forms[key]}

    everything = similar(client, tenant, page[1], k=20)
    assert len(everything) == 7
    assert page[1] not in ids(everything)
    assert [h["score"] for h in everything] == sorted((h["score"] for h in everything), reverse=True)
    assert len(similar(client, tenant, page[1], k=2)) == 2

    lineage = similar(client, tenant, page[1], scope="lineage", k=10)
    assert sorted(ids(lineage)) == sorted([page[0], page[2], page[3]])
    # k=2 with the lineage filter inside the query still returns 2, even if closer layouts lie outside it.
    assert set(ids(similar(client, tenant, page[1], scope="lineage", k=2))) <= {page[0], page[2], page[3]}
    assert len(similar(client, tenant, page[1], scope="lineage", k=2)) == 2

    outside = similar(client, tenant, page[1], scope="exclude-lineage", k=10)
    assert set(ids(outside)) == others

    only_grid = similar(client, tenant, page[1], form_key="grid", k=10)
    assert {h["form_key"] for h in only_grid} == {"grid"}
    assert len(only_grid) == 2

    context = {h["version_id"]: h for h in everything}
    assert context[page[3]]["is_latest"] is True
    assert context[page[0]]["is_latest"] is False
    assert context[page[3]]["number"] == 4
    assert context[page[3]]["form_key"] == "page"


def test_group_by_form_returns_the_best_version_of_each_form(
    client: TestClient, tenant: TenantKey, corpora: Path
) -> None:
    forms = seed(client, tenant, corpora)
    grouped = similar(client, tenant, forms["grid"][0]["id"], group_by="form", k=10)
    assert sorted(h["form_key"] for h in grouped) == ["grid", "page", "prefill", "radio"]
    ungrouped = similar(client, tenant, forms["grid"][0]["id"], k=10)
    best_page = next(h for h in ungrouped if h["form_key"] == "page")
    assert next(h for h in grouped if h["form_key"] == "page") == best_page
    assert len(similar(client, tenant, forms["grid"][0]["id"], group_by="form", k=2)) == 2


def test_system_filter_and_pin_counts(client: TestClient, tenant: TenantKey, corpora: Path) -> None:
    forms = seed(client, tenant, corpora)
    pins = [forms["grid"][0], forms["radio"][0]]
    release = client.post(
        "/api/v1/systems/benefits/releases",
        headers=tenant.headers,
        json={"version": "1", "forms": [{"form_key": v["form_key"], "version_id": v["id"]} for v in pins]},
    )
    assert release.status_code == 201, release.text

    hits = similar(client, tenant, forms["page"][0]["id"], system="benefits", k=10)
    assert sorted(ids(hits)) == sorted(v["id"] for v in pins)
    assert all(h["pin_count"] == 1 for h in hits)
    assert similar(client, tenant, forms["page"][0]["id"], system="no-such-system") == []
    unpinned = similar(client, tenant, forms["page"][0]["id"], form_key="page")
    assert all(h["pin_count"] == 0 for h in unpinned)

    # A second release pins only the grid: the release filter keeps what that one release ships.
    second = client.post(
        "/api/v1/systems/benefits/releases",
        headers=tenant.headers,
        json={"version": "2", "forms": [{"form_key": "grid", "version_id": forms["grid"][0]["id"]}]},
    ).json()
    first_id, second_id = release.json()["id"], second["id"]
    page_id = forms["page"][0]["id"]
    assert sorted(ids(similar(client, tenant, page_id, release=first_id))) == sorted(v["id"] for v in pins)
    assert ids(similar(client, tenant, page_id, release=second_id)) == [forms["grid"][0]["id"]]
    assert similar(client, tenant, page_id, release=second_id, form_key="radio") == []
    searched = client.post(
        "/api/v1/layouts/search",
        headers=tenant.headers,
        json={"text": "choose one", "k": 10, "filters": {"release": second_id, "system": "benefits"}},
    )
    assert ids(searched.json()["items"]) == [forms["grid"][0]["id"]]
    missing = "00000000-0000-4000-8000-000000000000"
    response = get(client, tenant, f"/form-versions/{page_id}/similar", release=missing)
    assert response.status_code == 404
    assert "release" in response.json()["detail"]
    body = {"positive": [page_id], "filters": {"release": missing}}
    assert client.post("/api/v1/layouts/recommend", headers=tenant.headers, json=body).status_code == 404


def test_search_by_text_and_definition_and_recommend(
    client: TestClient, tenant: TenantKey, corpora: Path
) -> None:
    forms = seed(client, tenant, corpora)
    later_page = revision_files(corpora, "conditional-page")[5]
    by_definition = client.post(
        "/api/v1/layouts/search", headers=tenant.headers, json={"definition": later_page, "k": 3}
    )
    assert by_definition.status_code == 200, by_definition.text
    assert by_definition.json()["items"][0]["form_key"] == "page"

    grouped = client.post(
        "/api/v1/layouts/search",
        headers=tenant.headers,
        json={"text": "radio buttons choose one", "k": 3, "group_by": "form"},
    ).json()["items"]
    assert len({h["form_key"] for h in grouped}) == len(grouped) == 3

    filtered = client.post(
        "/api/v1/layouts/search",
        headers=tenant.headers,
        json={"text": "table of rows", "k": 10, "filters": {"form_keys": ["grid"]}},
    ).json()["items"]
    assert sorted(ids(filtered)) == sorted(v["id"] for v in forms["grid"])

    positive, negative = forms["page"][0]["id"], forms["grid"][0]["id"]
    recommended = client.post(
        "/api/v1/layouts/recommend",
        headers=tenant.headers,
        json={"positive": [positive], "negative": [negative], "k": 3},
    )
    assert recommended.status_code == 200, recommended.text
    items = recommended.json()["items"]
    assert items[0]["form_key"] == "page"
    assert positive not in ids(items)
    assert negative not in ids(items)


def test_suggested_parents_finds_the_version_it_was_edited_from(
    client: TestClient, tenant: TenantKey, corpora: Path
) -> None:
    forms = seed(client, tenant, corpora)
    orphan = post_version(
        client, tenant, "orphan", revision_files(corpora, "conditional-page")[4], parents=[]
    )
    response = get(client, tenant, f"/form-versions/{orphan['id']}/suggested-parents", k=3)
    assert response.status_code == 200, response.text
    suggested = response.json()["items"]
    assert suggested[0]["version_id"] == forms["page"][3]["id"]
    assert len(suggested) == 3
    assert orphan["id"] not in ids(suggested)
    # Nothing was created before the first version, so it has no candidates.
    first = get(client, tenant, f"/form-versions/{forms['page'][0]['id']}/suggested-parents")
    assert first.status_code == 200
    assert first.json()["items"] == []
    # A later version is never suggested as the parent of an earlier one.
    second = get(client, tenant, f"/form-versions/{forms['page'][1]['id']}/suggested-parents", k=10).json()
    assert ids(second["items"]) == [forms["page"][0]["id"]]
    assert second["items"][0]["same_layout"] == []


def test_suggested_parents_shows_identical_layouts_once(
    client: TestClient, tenant: TenantKey, corpora: Path
) -> None:
    forms = seed(client, tenant, corpora)
    revisions = revision_files(corpora, "conditional-page")
    # The parent's exact layout copied into two other forms: content cannot tell the three apart.
    copies = [post_version(client, tenant, key, revisions[3])["id"] for key in ("copy-a", "copy-b")]
    orphan = post_version(client, tenant, "orphan", revisions[4], parents=[])
    response = get(client, tenant, f"/form-versions/{orphan['id']}/suggested-parents", k=3)
    assert response.status_code == 200, response.text
    suggested = response.json()["items"]
    assert len(suggested) == 3
    first = suggested[0]
    same = {forms["page"][3]["id"], *copies}
    assert {first["version_id"], *first["same_layout"]} == same
    assert len(first["same_layout"]) == 2
    # k counts layouts: the other two suggestions are other layouts, none of them a copy.
    for other in suggested[1:]:
        assert not same & {other["version_id"], *other["same_layout"]}
    # The places the copies no longer take go to other layouts, such as the chain's earlier versions.
    assert {item["version_id"] for item in suggested[1:]} & {v["id"] for v in forms["page"][:3]}


def test_bad_requests_are_refused(client: TestClient, tenant: TenantKey, corpora: Path) -> None:
    forms = seed(client, tenant, corpora)
    version_id = forms["page"][0]["id"]
    for params in ({"k": 0}, {"k": 101}, {"k": "many"}, {"scope": "siblings"}, {"group_by": "system"}):
        assert get(client, tenant, f"/form-versions/{version_id}/similar", **params).status_code == 422
    assert get(client, tenant, f"/form-versions/{version_id}/suggested-parents", k=0).status_code == 422
    for body in ({"text": "   "}, {}, {"text": "a", "definition": {"components": []}}, {"text": "a", "k": 0}):
        assert client.post("/api/v1/layouts/search", headers=tenant.headers, json=body).status_code == 422
    bad_definition = {"definition": "{not json", "format": "formio"}
    assert (
        client.post("/api/v1/layouts/search", headers=tenant.headers, json=bad_definition).status_code == 422
    )
    assert (
        client.post("/api/v1/layouts/recommend", headers=tenant.headers, json={"positive": []}).status_code
        == 422
    )
    for missing in ("no-such-id", "00000000-0000-4000-8000-000000000000"):
        assert get(client, tenant, f"/form-versions/{missing}/similar").status_code == 404
        assert get(client, tenant, f"/form-versions/{missing}/suggested-parents").status_code == 404
        recommend = {"positive": [version_id], "negative": [missing]}
        assert (
            client.post("/api/v1/layouts/recommend", headers=tenant.headers, json=recommend).status_code
            == 404
        )


def test_two_tenants_with_identical_data_never_see_each_other(
    client: TestClient, app_settings: Settings, corpora: Path
) -> None:
    a, b = create_tenant(app_settings), create_tenant(app_settings)
    forms_a, forms_b = seed(client, a, corpora), seed(client, b, corpora)
    own_a = {v["id"] for versions in forms_a.values() for v in versions}
    own_b = {v["id"] for versions in forms_b.values() for v in versions}
    foreign_radio = {a.name: forms_a["radio"][0]["id"], b.name: forms_b["radio"][0]["id"]}

    for tenant, own, foreign, owner in ((a, own_a, own_b, b), (b, own_b, own_a, a)):
        seen: set[str] = set()
        for version_id in own:
            for scope in ("all", "lineage", "exclude-lineage"):
                seen |= set(ids(similar(client, tenant, version_id, scope=scope, k=20)))
            seen |= set(ids(similar(client, tenant, version_id, group_by="form", k=20)))
            parents = get(client, tenant, f"/form-versions/{version_id}/suggested-parents", k=20)
            for item in parents.json()["items"]:
                seen |= {item["version_id"], *item["same_layout"]}
        search = client.post("/api/v1/layouts/search", headers=tenant.headers, json={"text": "date", "k": 50})
        seen |= set(ids(search.json()["items"]))
        recommend = client.post(
            "/api/v1/layouts/recommend", headers=tenant.headers, json={"positive": sorted(own)[:2], "k": 50}
        )
        seen |= set(ids(recommend.json()["items"]))
        assert seen
        assert seen <= own

        other = next(iter(foreign))
        foreign_release = client.post(
            "/api/v1/systems/shared/releases",
            headers=owner.headers,
            json={"version": "1", "forms": [{"form_key": "radio", "version_id": foreign_radio[owner.name]}]},
        )
        assert foreign_release.status_code == 201, foreign_release.text
        own_id = next(iter(own))
        release_filter = {"release": foreign_release.json()["id"]}
        assert get(client, tenant, f"/form-versions/{own_id}/similar", **release_filter).status_code == 404
        assert get(client, tenant, f"/form-versions/{other}/similar").status_code == 404
        assert get(client, tenant, f"/form-versions/{other}/similar", scope="lineage").status_code == 404
        assert get(client, tenant, f"/form-versions/{other}/suggested-parents").status_code == 404
        recommend_foreign = {"positive": [other]}
        response = client.post("/api/v1/layouts/recommend", headers=tenant.headers, json=recommend_foreign)
        assert response.status_code == 404

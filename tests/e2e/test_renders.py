"""LayoutRenderer through HTTP on the real stack: HTML, JSON tree and PDF, prefill, releases, diffs."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

import app.renderer.service as render_service
from app.settings import Settings
from graph.renders import RenderSource, RenderSourceRepository
from render import CSP
from tests.e2e.conftest import TenantKey, create_tenant


def field(key: str, label: str, kind: str = "text", **extra: Any) -> dict[str, Any]:
    return {"node": "field", "key": key, "label": label, "kind": kind, **extra}


def definition(key: str, *, extra_field: dict[str, Any] | None = None) -> dict[str, Any]:
    """A two-page native form with a custom component the semantic lookup has to place."""
    personal = [
        field("fornavn", "Fornavn", required=True, help_text="Som i folkeregisteret"),
        field("fodselsdato", "Fødselsdato", "custom", source_type="navDatepicker"),
        field(
            "sivilstand",
            "Sivilstand",
            "select",
            options=[{"value": "gift", "label": "Gift"}, {"value": "ugift", "label": "Ugift"}],
        ),
    ]
    if extra_field is not None:
        personal.append(extra_field)
    return {
        "key": key,
        "title": "Søknad om støtte",
        "source_format": "native",
        "layout": [
            {"node": "page", "key": "side1", "title": "Personalia", "children": personal},
            {
                "node": "page",
                "key": "side2",
                "title": "Tilleggsopplysninger",
                "children": [field("kommentar", "Kommentar", "textarea")],
            },
        ],
    }


LABELS = ("Fornavn", "Fødselsdato", "Sivilstand", "Kommentar")


def post_version(client: TestClient, tenant: TenantKey, form_key: str, doc: dict[str, Any]) -> dict[str, Any]:
    response = client.post(
        f"/api/v1/forms/{form_key}/versions",
        headers=tenant.headers,
        json={"definition": doc, "format": "native"},
    )
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def render(client: TestClient, tenant: TenantKey, path: str, **params: str) -> Any:
    return client.get(f"/api/v1{path}", headers=tenant.headers, params=params)


@pytest.fixture
def html_renders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of forms the service actually rendered to HTML (renders served from the cache add none)."""
    rendered: list[str] = []
    real: Callable[..., str] = render_service.render_html

    def counting(defn: Any, **kwargs: Any) -> str:
        rendered.append(defn.key)
        return real(defn, **kwargs)

    monkeypatch.setattr(render_service, "render_html", counting)
    return rendered


def input_names(html: str) -> set[str]:
    return set(re.findall(r'<(?:input|select|textarea)\b[^>]*\bname="([^"]+)"', html))


def test_html_render_is_a_standalone_page_with_strict_headers_and_a_repeat_renders_nothing(
    client: TestClient, tenant: TenantKey, html_renders: list[str]
) -> None:
    version = post_version(client, tenant, "soknad", definition("soknad"))

    first = render(client, tenant, f"/form-versions/{version['id']}/render")
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "text/html; charset=utf-8"
    assert first.headers["content-security-policy"] == CSP
    assert first.headers["x-content-type-options"] == "nosniff"
    html = first.text
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert all(label in html for label in (*LABELS, "Personalia", "Tilleggsopplysninger", "Gift", "Ugift"))
    assert {"fornavn", "fodselsdato", "sivilstand", "kommentar"} <= input_names(html)
    assert not re.search(r'\b(?:src|href)="(?:https?:)?//', html), "a render must load nothing from outside"
    assert html_renders == ["soknad"]

    again = render(client, tenant, f"/form-versions/{version['id']}/render", format="html")
    assert (again.status_code, again.content) == (200, first.content)
    assert again.headers["x-render-cache"] == "hit"
    assert html_renders == ["soknad"], "the repeat was rendered again"


def test_json_tree_shows_the_semantic_widget_mapping(client: TestClient, tenant: TenantKey) -> None:
    version = post_version(client, tenant, "tree", definition("tree"))

    response = render(client, tenant, f"/form-versions/{version['id']}/render", format="json")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert "content-security-policy" not in response.headers
    tree = response.json()
    mappings = list(find_dicts(tree, lambda d: d.get("source_type") == "navDatepicker" and "chosen_by" in d))
    assert mappings, f"no widget mapping for the custom component in {str(tree)[:500]}"
    assert mappings[0]["chosen_by"] == "semantic"
    assert mappings[0]["widget"] == "date"
    assert 0 < mappings[0]["score"] <= 1


def find_dicts(value: Any, predicate: Callable[[dict[str, Any]], bool]) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        if predicate(value):
            yield value
        for child in value.values():
            yield from find_dicts(child, predicate)
    elif isinstance(value, list):
        for child in value:
            yield from find_dicts(child, predicate)


def pdf_text(pdf: bytes) -> tuple[int, str]:
    pages = PdfReader(io.BytesIO(pdf)).pages
    return len(pages), "\n".join(page.extract_text() for page in pages)


def test_pdf_render_has_page_headings_labels_and_prefilled_values(
    client: TestClient, tenant: TenantKey
) -> None:
    version = post_version(client, tenant, "paper", definition("paper"))
    path = f"/api/v1/form-versions/{version['id']}/render"

    blank = render(client, tenant, f"/form-versions/{version['id']}/render", format="pdf")
    assert blank.status_code == 200, blank.text
    assert blank.headers["content-type"] == "application/pdf"
    assert blank.content.startswith(b"%PDF-")
    pages, text = pdf_text(blank.content)
    assert pages >= 2, "each wizard page starts a new sheet"
    assert all(heading in text for heading in ("Søknad om støtte", "Personalia", "Tilleggsopplysninger"))
    assert all(label in text for label in LABELS)

    data = {"fornavn": "Kari Nordmann", "kommentar": "Sendes innen fristen"}
    filled = client.post(path, headers=tenant.headers, params={"format": "pdf"}, json={"data": data})
    assert filled.status_code == 200, filled.text
    _, filled_text = pdf_text(filled.content)
    assert "Kari Nordmann" in filled_text
    assert "Sendes innen fristen" in filled_text
    assert "Kari Nordmann" not in text


def test_prefill_is_escaped_and_cached_by_its_data(
    client: TestClient, tenant: TenantKey, html_renders: list[str]
) -> None:
    version = post_version(client, tenant, "prefill", definition("prefill"))
    path = f"/api/v1/form-versions/{version['id']}/render"
    hostile = '"><script>alert(1)</script><img src=x onerror=alert(2)>'

    first = client.post(path, headers=tenant.headers, json={"data": {"fornavn": hostile, "kommentar": "ok"}})
    assert first.status_code == 200, first.text
    assert first.headers["content-security-policy"] == CSP
    assert "<script>alert(1)" not in first.text
    assert "<img src=x" not in first.text
    assert "alert(1)" in first.text, "the value is shown, escaped"

    reordered = client.post(
        path, headers=tenant.headers, json={"data": {"kommentar": "ok", "fornavn": hostile}}
    )
    assert (reordered.headers["x-render-cache"], reordered.content) == ("hit", first.content)
    other = client.post(path, headers=tenant.headers, json={"data": {"fornavn": "Ola"}})
    assert other.headers["x-render-cache"] == "miss"
    assert 'value="Ola"' in other.text
    assert html_renders == ["prefill", "prefill"]

    not_an_object = client.post(path, headers=tenant.headers, json={"data": ["x"]})
    assert not_an_object.status_code == 422


def test_prefilled_renders_of_one_version_read_its_definition_from_the_graph_once(
    client: TestClient, tenant: TenantKey, html_renders: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    real = RenderSourceRepository.version

    async def counting(self: RenderSourceRepository, tenant_id: str, version_id: str) -> RenderSource | None:
        reads.append(version_id)
        return await real(self, tenant_id, version_id)

    monkeypatch.setattr(RenderSourceRepository, "version", counting)
    version = post_version(client, tenant, "kept", definition("kept"))
    path = f"/api/v1/form-versions/{version['id']}/render"

    pages = [client.post(path, headers=tenant.headers, json={"data": {"fornavn": name}}) for name in "ABC"]

    assert [page.headers["x-render-cache"] for page in pages] == ["miss", "miss", "miss"]
    assert all(f'value="{name}"' in page.text for page, name in zip(pages, "ABC", strict=True))
    assert html_renders == ["kept"] * 3
    assert reads == [version["id"]]
    stored = client.get(f"/api/v1/form-versions/{version['id']}", headers=tenant.headers).json()["definition"]
    tenant_id = client.get("/api/v1/tenant", headers=tenant.headers).json()["id"]
    kept = client.app.state.renders.recent.get(tenant_id, version["id"])  # type: ignore[attr-defined]
    assert kept.definition == stored, "renders changed the definition they keep"


def test_release_render_is_the_pinned_version(client: TestClient, tenant: TenantKey) -> None:
    v1 = post_version(client, tenant, "pinned", definition("pinned"))
    v2 = post_version(
        client, tenant, "pinned", definition("pinned", extra_field=field("epost", "E-postadresse", "email"))
    )
    release = client.post(
        "/api/v1/systems/benefits/releases",
        headers=tenant.headers,
        json={"version": "2026.1", "forms": [{"form_key": "pinned", "version_id": v1["id"]}]},
    )
    assert release.status_code == 201, release.text
    release_id = release.json()["id"]

    pinned = render(client, tenant, f"/releases/{release_id}/forms/pinned/render")
    assert pinned.status_code == 200, pinned.text
    assert pinned.content == render(client, tenant, f"/form-versions/{v1['id']}/render").content
    assert "E-postadresse" not in pinned.text
    assert "E-postadresse" in render(client, tenant, f"/form-versions/{v2['id']}/render").text
    assert pinned.headers["content-security-policy"] == CSP

    tree = render(client, tenant, f"/releases/{release_id}/forms/pinned/render", format="json")
    assert tree.status_code == 200
    assert render(client, tenant, f"/releases/{release_id}/forms/other/render").status_code == 404
    assert render(client, tenant, "/releases/no-such-release/forms/pinned/render").status_code == 404


def test_diff_render_marks_added_removed_and_changed_fields(client: TestClient, tenant: TenantKey) -> None:
    old_doc = definition("changing", extra_field=field("telefon", "Telefonnummer", "phone"))
    new_doc = definition("changing", extra_field=field("epost", "E-postadresse", "email"))
    new_doc["layout"][0]["children"][0]["label"] = "Fornavn og mellomnavn"
    old = post_version(client, tenant, "changing", old_doc)
    new = post_version(client, tenant, "changing", new_doc)

    diff = render(client, tenant, f"/form-versions/{new['id']}/render/diff", against=old["id"])

    assert diff.status_code == 200, diff.text
    assert diff.headers["content-security-policy"] == CSP
    marks = diff_marks(diff.text)
    assert (marks.get("epost"), marks.get("telefon"), marks.get("fornavn")) == ("added", "removed", "changed")
    assert "sivilstand" not in marks
    assert "E-postadresse" in diff.text
    assert "Telefonnummer" in diff.text, "the removed field is shown"

    pdf = render(client, tenant, f"/form-versions/{new['id']}/render/diff", against=old["id"], format="pdf")
    assert pdf.status_code == 200
    assert "E-postadresse" in pdf_text(pdf.content)[1]
    unsupported = render(
        client, tenant, f"/form-versions/{new['id']}/render/diff", against=old["id"], format="json"
    )
    assert unsupported.status_code == 422


class _DiffMarks(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.marks: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        key, classes = attributes.get("data-pf-field"), (attributes.get("class") or "").split()
        actions = [name.removeprefix("pf-diff-") for name in classes if name.startswith("pf-diff-")]
        if key and actions:
            self.marks[key] = actions[0]


def diff_marks(html: str) -> dict[str, str]:
    """The diff action each marked field shows, by field key."""
    parser = _DiffMarks()
    parser.feed(html)
    return parser.marks


def test_renders_are_tenant_scoped(client: TestClient, tenant: TenantKey, app_settings: Settings) -> None:
    mine = post_version(client, tenant, "private", definition("private"))
    release = client.post(
        "/api/v1/systems/private/releases",
        headers=tenant.headers,
        json={"version": "1", "forms": [{"form_key": "private", "version_id": mine["id"]}]},
    ).json()
    assert render(client, tenant, f"/form-versions/{mine['id']}/render").status_code == 200
    other = create_tenant(app_settings)
    theirs = post_version(client, other, "private", definition("private"))

    for path, params in (
        (f"/form-versions/{mine['id']}/render", {}),
        (f"/form-versions/{mine['id']}/render", {"format": "pdf"}),
        (f"/releases/{release['id']}/forms/private/render", {}),
        (f"/form-versions/{theirs['id']}/render/diff", {"against": mine["id"]}),
    ):
        response = render(client, other, path, **params)
        assert response.status_code == 404, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert render(client, tenant, f"/form-versions/{mine['id']}/render").status_code == 200
    assert client.get(f"/api/v1/form-versions/{mine['id']}/render").status_code == 401
    bad_format = render(client, tenant, f"/form-versions/{mine['id']}/render", format="docx")
    assert bad_format.status_code == 422

"""Hostile text in labels, options, help, content and prefill data renders inert."""

from __future__ import annotations

from ingest.model import FormDefinition
from render import render_html, render_tree, resolve_widgets
from render.assets import CONDITION_SCRIPT
from tests.unit.render.conftest import definition
from tests.unit.render.parsed import ParsedPage

# Attributes a browser follows or runs as a URL; a javascript: value anywhere else is plain text.
URL_ATTRIBUTES = frozenset(
    {"href", "src", "action", "formaction", "srcdoc", "data", "poster", "xlink:href", "style"}
)
PAYLOADS = (
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "' onmouseover='alert(1)",
    "javascript:alert(1)",
    '<a href="javascript:alert(1)">click</a>',
    "</textarea><script>alert(2)</script>",
    "</title><script>alert(3)</script>",
    "<svg onload=alert(1)>",
    "<iframe srcdoc='<script>alert(1)</script>'></iframe>",
)


def _hostile_definition(payload: str) -> FormDefinition:
    return definition(
        [
            {
                "node": "page",
                "title": payload,
                "description": payload,
                "children": [
                    {
                        "node": "field",
                        "key": "text",
                        "label": payload,
                        "help_text": payload,
                        "placeholder": payload,
                    },
                    {"node": "field", "key": payload, "label": "Key", "kind": "textarea"},
                    {
                        "node": "field",
                        "key": "radio",
                        "label": payload,
                        "kind": "radio",
                        "options": [{"value": payload, "label": payload}],
                    },
                    {
                        "node": "field",
                        "key": "select",
                        "label": payload,
                        "kind": "select",
                        "options": [{"value": payload, "label": payload}],
                    },
                    {"node": "content", "text": payload, "html": True, "title": payload},
                    {"node": "content", "text": payload},
                    {
                        "node": "field",
                        "key": "shown",
                        "label": "Shown",
                        "conditions": [
                            {
                                "effect": "show",
                                "when": payload,
                                "operator": "eq",
                                "value": payload,
                                "expression": payload,
                            }
                        ],
                    },
                    {
                        "node": "field",
                        "key": "custom",
                        "label": payload,
                        "kind": "custom",
                        "source_type": payload,
                    },
                ],
            }
        ],
        title=payload,
        description=payload,
    )


def _assert_inert(html: str) -> None:
    page = ParsedPage(html)
    scripts = page.all("script")
    assert len(scripts) == 1
    assert scripts[0].text == " ".join(CONDITION_SCRIPT.split())
    assert not scripts[0].attrs
    for element in page.elements:
        assert element.tag not in {"img", "svg", "iframe", "a", "object", "embed", "base", "link"}, (
            element.tag
        )
        for name, value in element.attrs.items():
            assert not name.startswith("on"), (element.tag, name)
            assert name not in URL_ATTRIBUTES, (element.tag, name, value)


def test_hostile_definitions_render_inert() -> None:
    for payload in PAYLOADS:
        defn = _hostile_definition(payload)
        html = render_html(defn, widgets=resolve_widgets(defn, matcher=None), title=payload)
        _assert_inert(html)


def test_hostile_prefill_values_render_inert_and_keep_their_text() -> None:
    for payload in PAYLOADS:
        defn = _hostile_definition("Label")
        data = {"text": payload, "Label": payload, "radio": payload, "select": payload, "custom": [payload]}
        html = render_html(defn, widgets=resolve_widgets(defn, matcher=None), data=data)
        _assert_inert(html)
        page = ParsedPage(html)
        assert page.controls("text")[0].get("value") == payload
        assert page.controls("Label")[0].text == " ".join(payload.split())


def test_hostile_labels_are_shown_as_text_not_markup() -> None:
    defn = _hostile_definition("<b>bold</b> & <i>x</i>")
    page = ParsedPage(render_html(defn, widgets=resolve_widgets(defn, matcher=None)))

    assert not page.all("b")
    assert not page.all("i")
    assert "bold & x" in page.label_for(page.controls("text")[0])


def test_the_json_tree_keeps_hostile_text_as_data() -> None:
    payload = PAYLOADS[0]
    defn = _hostile_definition(payload)
    tree = render_tree(defn, widgets=resolve_widgets(defn, matcher=None))

    field = tree["children"][0]["children"][1]
    assert field["key"] == payload

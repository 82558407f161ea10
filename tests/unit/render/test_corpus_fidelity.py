"""Every form of the real corpora: each field is in the HTML with its label and an input named by its key."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest.model import WidgetKind
from render import render_html, render_tree, resolve_widgets
from render.text import plain_text
from tests.corpora import corpus_files, imported
from tests.unit.render.parsed import CONTROLS, ParsedPage

CURRENT_FORMS = (
    "nav-formio/test-forms/*.json",
    "va-jsonschema/current/*.json",
    "bcgov-fla-surveyjs/current/*.json",
)


def current_forms() -> list[Path]:
    files = corpus_files(*CURRENT_FORMS)
    assert len(files) == 58 + 64 + 206, f"expected the 328 current corpus forms, found {len(files)}"
    return files


def _tree_fields(nodes: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for node in nodes:
        if node["node"] == "field":
            yield node
        for row in node.get("rows", []):
            yield from _tree_fields(row)
        yield from _tree_fields(node.get("children", []))


@pytest.mark.parametrize("path", current_forms(), ids=lambda p: f"{p.parents[1].name}/{p.stem}")
def test_every_field_appears_with_its_label_and_an_input_named_by_its_key(path: Path) -> None:
    defn = imported(path)
    page = ParsedPage(render_html(defn, widgets=resolve_widgets(defn, matcher=None)))

    labels_by_name: dict[str, set[str]] = defaultdict(set)
    for element in page.elements:
        if element.tag in CONTROLS and element.get("type") != "hidden" and element.get("name") is not None:
            labels_by_name[element.get("name") or ""].add(page.control_label(element))
    for field in defn.fields():
        assert page.controls(field.key), f"no input named {field.key!r}"
        if field.kind is WidgetKind.HIDDEN:
            continue
        label = plain_text(field.label)
        assert any(label in rendered for rendered in labels_by_name[field.key]), (field.key, label)

    ids = [element.get("id") for element in page.elements if element.get("id")]
    assert len(ids) == len(set(ids)), "duplicate ids"
    controls_by_id = {e.get("id") for e in page.elements if e.tag in CONTROLS}
    assert all(label.get("for") in controls_by_id for label in page.all("label"))
    assert all(any(c.tag == "legend" and c.text for c in f.children) for f in page.all("fieldset"))
    assert all(heading.text for tag in ("h1", "h2", "h3", "h4", "h5", "h6") for heading in page.all(tag))


@pytest.mark.parametrize("path", current_forms()[::8], ids=lambda p: f"{p.parents[1].name}/{p.stem}")
def test_the_json_tree_holds_every_field_with_widget_label_and_options(path: Path) -> None:
    defn = imported(path)
    tree = render_tree(defn, widgets=resolve_widgets(defn, matcher=None))

    rendered = list(_tree_fields(tree["children"]))
    fields = defn.fields()
    assert [node["key"] for node in rendered] == [field.key for field in fields]
    for node, field in zip(rendered, fields, strict=True):
        assert node["label"] == (plain_text(field.label) or node["label"])
        assert node["widget"] in {kind.value for kind in WidgetKind if kind is not WidgetKind.CUSTOM}
        if field.kind in {WidgetKind.SELECT, WidgetKind.RADIO, WidgetKind.CHECKBOX_GROUP}:
            expected = [option.value for option in field.options if option.label.strip() or option.value]
            assert [option["value"] for option in node["options"]] == expected

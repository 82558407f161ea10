"""The JSON render tree: the resolved layout with widgets, labels, options, values and conditions."""

from __future__ import annotations

import json

from render import render_tree, resolve_widgets
from tests.unit.render.conftest import definition
from tests.unit.render.test_html import PERSONAL


def test_the_tree_is_json_and_mirrors_the_layout() -> None:
    defn = definition(PERSONAL)
    tree = render_tree(defn, widgets=resolve_widgets(defn, matcher=None), data={"contact": "phone"})

    assert json.loads(json.dumps(tree)) == tree
    about, family = tree["children"]
    assert (about["node"], about["title"]) == ("page", "About you")
    name, contact, phone, residence = about["children"]
    assert (name["label"], name["widget"], name["required"], name["help_text"]) == (
        "Full name",
        "text",
        True,
        "As in your passport",
    )
    assert contact["options"] == [
        {"value": "mail", "label": "Mail", "selected": False},
        {"value": "phone", "label": "Phone", "selected": True},
    ]
    assert phone["conditions"][0]["when"] == "contact"
    assert residence["children"][1]["children"][0]["key"] == "city"
    repeat = family["children"][0]
    assert [[field["key"] for field in row] for row in repeat["rows"]] == [["childName", "born"]]

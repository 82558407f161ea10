"""The HTML page: semantic, labelled, announced, self-contained, prefilled and diff-marked markup."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

from ingest import diff_definitions
from render import CSP, render_html, resolve_widgets
from tests.unit.render.conftest import definition, render_page
from tests.unit.render.parsed import ParsedPage

PERSONAL: list[dict[str, Any]] = [
    {
        "node": "page",
        "title": "About you",
        "children": [
            {
                "node": "field",
                "key": "name",
                "label": "Full name",
                "required": True,
                "help_text": "As in your passport",
            },
            {
                "node": "field",
                "key": "contact",
                "label": "How may we contact you?",
                "kind": "radio",
                "required": True,
                "options": [{"value": "mail", "label": "Mail"}, {"value": "phone", "label": "Phone"}],
            },
            {
                "node": "field",
                "key": "phone",
                "label": "Phone number",
                "kind": "phone",
                "conditions": [
                    {
                        "effect": "show",
                        "depends_on": ["contact"],
                        "when": "contact",
                        "operator": "eq",
                        "value": "phone",
                    }
                ],
            },
            {
                "node": "section",
                "title": "Residence",
                "children": [
                    {
                        "node": "field",
                        "key": "country",
                        "label": "Country",
                        "kind": "select",
                        "options": [{"value": "no", "label": "Norway"}, {"value": "se", "label": "Sweden"}],
                    },
                    {
                        "node": "section",
                        "title": "Details",
                        "children": [{"node": "field", "key": "city", "label": "City"}],
                    },
                ],
            },
        ],
    },
    {
        "node": "page",
        "title": "Family",
        "children": [
            {
                "node": "repeat",
                "key": "children",
                "label": "Children",
                "children": [
                    {"node": "field", "key": "childName", "label": "Child's name"},
                    {"node": "field", "key": "born", "label": "Date of birth", "kind": "date"},
                ],
            },
            {
                "node": "field",
                "key": "consent",
                "label": "I confirm the answers are true",
                "kind": "checkbox",
            },
            {"node": "field", "key": "notes", "label": "Anything else?", "kind": "textarea"},
            {
                "node": "field",
                "key": "benefits",
                "label": "Benefits you receive",
                "kind": "checkbox_group",
                "required": True,
                "options": [
                    {"value": "child", "label": "Child benefit"},
                    {"value": "rent", "label": "Housing"},
                ],
            },
        ],
    },
]


def _sha256_source(source: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode()


def test_the_page_is_a_complete_document_with_language_title_and_main_landmark() -> None:
    _, page = render_page(definition(PERSONAL))

    assert page.doctype.lower() == "doctype html"
    assert page.all("html")[0].get("lang") == "en"
    assert page.all("title")[0].text == "Test form"
    assert len(page.all("main")) == 1
    assert page.all("h1")[0].text == "Test form"
    assert page.all("meta")[0].get("charset") == "utf-8"


def test_nothing_external_is_loaded_and_the_csp_allows_exactly_the_inline_style_and_script() -> None:
    _, page = render_page(definition(PERSONAL))

    assert not page.all("link")
    assert not page.all("iframe")
    assert not page.all("img")
    assert all(element.get("src") is None for element in page.elements)
    [script], [style] = page.all("script"), page.all("style")
    directives = dict(part.strip().split(" ", 1) for part in CSP.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == f"'{_sha256_source(script.texts[0])}'"
    assert directives["style-src"] == f"'{_sha256_source(style.texts[0])}'"
    assert directives["form-action"] == "'none'"


def test_every_field_has_a_visible_label_bound_to_an_input_named_by_its_key() -> None:
    defn = definition(PERSONAL)
    _, page = render_page(defn)

    for field in defn.fields():
        assert page.controls(field.key), field.key
        assert field.label in page.field_label(field.key)
    assert page.label_for(page.controls("name")[0]).startswith("Full name")


def test_required_fields_are_marked_visibly_and_announced() -> None:
    _, page = render_page(definition(PERSONAL))

    [name] = page.controls("name")
    assert name.has("required")
    assert name.get("aria-required") == "true"
    assert "*" in page.label_for(name)
    assert page.all("p")[0].text == "Fields marked * are required."
    radios = page.controls("contact")
    assert all(radio.has("required") for radio in radios)
    group = next(a for a in radios[0].ancestors() if a.tag == "fieldset")
    assert group.get("role") == "radiogroup"
    assert group.get("aria-required") == "true"
    [city] = page.controls("city")
    assert not city.has("required")
    assert "*" not in page.label_for(city)


def test_a_required_checkbox_group_does_not_require_every_box_but_says_it_is_required() -> None:
    _, page = render_page(definition(PERSONAL))

    boxes = page.controls("benefits")
    assert [box.get("value") for box in boxes] == ["child", "rent"]
    assert all(not box.has("required") for box in boxes)
    assert "(required)" in page.group_legend(boxes[0])


def test_help_text_is_linked_with_aria_describedby() -> None:
    _, page = render_page(definition(PERSONAL))

    [name] = page.controls("name")
    help_id = name.get("aria-describedby")
    assert help_id
    assert page.by_id(help_id).text == "As in your passport"


def test_radio_groups_are_fieldsets_with_legends_and_options_are_rendered() -> None:
    _, page = render_page(definition(PERSONAL))

    radios = page.controls("contact")
    assert [radio.get("type") for radio in radios] == ["radio", "radio"]
    assert [page.label_for(radio) for radio in radios] == ["Mail", "Phone"]
    assert page.group_legend(radios[0]).startswith("How may we contact you?")
    [select] = page.controls("country")
    options = [child for child in select.children if child.tag == "option"]
    assert [(o.get("value"), o.text) for o in options] == [
        ("", "Choose…"),
        ("no", "Norway"),
        ("se", "Sweden"),
    ]


def test_wizard_pages_are_sections_with_h2_and_nested_sections_step_down() -> None:
    _, page = render_page(definition(PERSONAL))

    pages = [s for s in page.all("section") if "pf-page" in (s.get("class") or "")]
    assert [p.children[0].tag for p in pages] == ["h2", "h2"]
    assert [p.children[0].text for p in pages] == ["About you", "Family"]
    assert [h.text for h in page.all("h3")] == ["Residence"]
    assert [h.text for h in page.all("h4")] == ["Details"]
    assert all(heading.text for tag in ("h1", "h2", "h3", "h4") for heading in page.all(tag))


def test_a_repeatable_group_shows_one_empty_row_inside_a_fieldset() -> None:
    _, page = render_page(definition(PERSONAL))

    [child_name] = page.controls("childName")
    [born] = page.controls("born")
    assert child_name.get("value") is None
    assert born.get("type") == "date"
    assert page.group_legend(child_name) == "Children"
    rows = [e for e in page.elements if e.has("data-pf-row")]
    assert len(rows) == 1


def test_prefill_data_fills_every_kind_of_control() -> None:
    data = {
        "name": "Kari Nordmann",
        "contact": "phone",
        "country": "se",
        "consent": True,
        "notes": "See attachment",
        "benefits": {"child": True, "rent": False},
        "children": [{"childName": "Ola", "born": "2015-04-01"}, {"childName": "Per", "born": "not a date"}],
    }
    _, page = render_page(definition(PERSONAL), data=data)

    assert page.controls("name")[0].get("value") == "Kari Nordmann"
    assert [r.has("checked") for r in page.controls("contact")] == [False, True]
    [select] = page.controls("country")
    assert [o.get("value") for o in select.children if o.has("selected")] == ["se"]
    assert page.controls("consent")[0].has("checked")
    assert page.controls("notes")[0].text == "See attachment"
    assert [b.has("checked") for b in page.controls("benefits")] == [True, False]
    assert [c.get("value") for c in page.controls("children[0].childName")] == ["Ola"]
    assert [c.get("value") for c in page.controls("children[1].childName")] == ["Per"]
    assert [c.get("value") for c in page.controls("children[0].born")] == ["2015-04-01"]
    assert [c.get("value") for c in page.controls("children[1].born")] == [None]


def test_duplicate_keys_get_unique_ids_and_each_label_stays_bound() -> None:
    layout: list[dict[str, Any]] = [
        {"node": "section", "title": "A", "children": [{"node": "field", "key": "x", "label": "First x"}]},
        {"node": "section", "title": "A", "children": [{"node": "field", "key": "x", "label": "Second x"}]},
        {"node": "field", "key": "x", "label": "Third x"},
        {"node": "field", "key": "pf-x", "label": "Prefixed"},
        {"node": "field", "key": "X!", "label": "Punctuated"},
    ]
    _, page = render_page(definition(layout))

    ids = [e.get("id") for e in page.elements if e.get("id")]
    assert len(ids) == len(set(ids))
    assert [page.label_for(c) for c in page.controls("x")] == ["First x", "Second x", "Third x"]
    assert all(re.fullmatch(r"[a-z0-9_-]+", i or "") for i in ids)


def test_simple_conditions_become_browser_rules_and_others_stay_as_data() -> None:
    layout: list[dict[str, Any]] = [
        *PERSONAL[0]["children"][:3],
        {
            "node": "field",
            "key": "reason",
            "label": "Reason",
            "conditions": [
                {"effect": "show", "expression": "data.a > 3 && data.b", "language": "javascript"}
            ],
        },
    ]
    _, page = render_page(definition(layout))

    phone_wrapper = page.controls("phone")[0].parent
    assert phone_wrapper is not None
    assert json.loads(phone_wrapper.get("data-pf-show-if") or "") == [
        {"effect": "show", "when": "contact", "op": "eq", "value": "phone"}
    ]
    reason_wrapper = page.controls("reason")[0].parent
    assert reason_wrapper is not None
    assert reason_wrapper.get("data-pf-show-if") is None
    assert (
        json.loads(reason_wrapper.get("data-pf-conditions") or "")[0]["expression"] == "data.a > 3 && data.b"
    )


def test_custom_components_render_through_the_resolved_widget() -> None:
    defn = definition(
        [{"node": "field", "key": "when", "label": "Dato", "kind": "custom", "source_type": "navDatepicker"}]
    )

    class DateMatcher:
        def match(self, descriptions: list[str]) -> list[tuple[str, float]]:
            return [("date", 0.8) for _ in descriptions]

    page = ParsedPage(render_html(defn, widgets=resolve_widgets(defn, matcher=DateMatcher())))
    assert page.controls("when")[0].get("type") == "date"
    fallback = ParsedPage(render_html(defn, widgets=resolve_widgets(defn, matcher=None)))
    assert fallback.controls("when")[0].get("type") == "text"


def test_norwegian_forms_are_marked_as_norwegian_and_use_norwegian_words() -> None:
    layout: list[dict[str, Any]] = [
        {
            "node": "field",
            "key": "harBarn",
            "label": "Har du barn som bor hos deg?",
            "kind": "yes_no",
            "required": True,
        },
        {"node": "field", "key": "navn", "label": "Hva er navnet ditt og hvor bor du?"},
    ]
    _, page = render_page(definition(layout))

    assert page.all("html")[0].get("lang") == "nb"
    assert [page.label_for(c) for c in page.controls("harBarn")] == ["Ja", "Nei"]


def test_diff_mode_marks_added_changed_and_removed_fields_in_place_with_text() -> None:
    old = definition(
        [
            {
                "node": "section",
                "title": "About you",
                "children": [
                    {"node": "field", "key": "name", "label": "Name"},
                    {"node": "field", "key": "fax", "label": "Fax number"},
                    {"node": "field", "key": "age", "label": "Age", "kind": "number"},
                ],
            }
        ]
    )
    new = definition(
        [
            {
                "node": "section",
                "title": "About you",
                "children": [
                    {"node": "field", "key": "name", "label": "Full name", "required": True},
                    {"node": "field", "key": "age", "label": "Age", "kind": "number"},
                    {"node": "field", "key": "email", "label": "Email", "kind": "email"},
                ],
            }
        ]
    )
    diff = diff_definitions(old, new)
    _, page = render_page(new, diff=diff, old=old)

    def wrapper_class(key: str) -> str:
        parent = page.controls(key)[0].parent
        assert parent is not None
        return parent.get("class") or ""

    assert "pf-diff-changed" in wrapper_class("name")
    assert page.label_for(page.controls("name")[0]).startswith("Changed")
    assert "pf-diff-added" in wrapper_class("email")
    assert page.label_for(page.controls("email")[0]).startswith("Added")
    assert "pf-diff-" not in wrapper_class("age")
    [fax] = page.controls("fax")
    assert "pf-diff-removed" in wrapper_class("fax")
    assert page.label_for(fax) == "Removed Fax number"
    assert fax.has("disabled")
    section = next(a for a in fax.ancestors() if a.tag == "section")
    assert section.children[0].text == "About you"
    assert page.by_id("pf--diff-summary").text == "Changes"


def test_removed_fields_without_the_old_definition_come_from_the_diff_itself() -> None:
    old = definition(
        [{"node": "field", "key": "a", "label": "Alpha"}, {"node": "field", "key": "b", "label": "Beta"}]
    )
    new = definition([{"node": "field", "key": "a", "label": "Alpha"}])
    _, page = render_page(new, diff=diff_definitions(old, new))

    [beta] = page.controls("b")
    assert page.label_for(beta) == "Removed Beta"


def test_several_prefilled_rows_keep_separate_radio_groups() -> None:
    layout = [
        {
            "node": "repeat",
            "key": "jobs",
            "label": "Jobs",
            "children": [
                {"node": "field", "key": "paid", "label": "Paid?", "kind": "yes_no", "source_type": "yesno"}
            ],
        }
    ]
    _, page = render_page(definition(layout), data={"jobs": [{"paid": "y"}, {"paid": "n"}]})

    first, second = page.controls("jobs[0].paid"), page.controls("jobs[1].paid")
    assert [r.has("checked") for r in first] == [True, False]
    assert [r.has("checked") for r in second] == [False, True]
    assert all(page.group_legend(radio) == "Paid?" for radio in first + second)

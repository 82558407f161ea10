"""Form.io import: NAV's dialect on hand-written forms and on real corpus files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ingest import DefinitionError, content_hash
from ingest.formio import import_formio
from ingest.model import (
    ColumnNode,
    ColumnsNode,
    ConditionEffect,
    ContentNode,
    FieldNode,
    GroupNode,
    PageNode,
    RepeatNode,
    SectionNode,
    SourceFormat,
    WidgetKind,
)


def form(*components: dict[str, Any], **form_props: Any) -> dict[str, Any]:
    return {
        "title": "Søknad",
        "path": "nav100750",
        "display": "wizard",
        **form_props,
        "components": list(components),
    }


def panel(key: str, *components: dict[str, Any], **props: Any) -> dict[str, Any]:
    return {
        "type": "panel",
        "key": key,
        "title": key.title(),
        "input": False,
        **props,
        "components": list(components),
    }


def field(type_: str, key: str, **props: Any) -> dict[str, Any]:
    return {"type": type_, "key": key, "label": key.title(), "input": True, **props}


def only_field(doc: dict[str, Any]) -> FieldNode:
    fields = import_formio(doc).fields()
    assert len(fields) == 1
    return fields[0]


def test_wizard_panels_become_pages_with_their_fields_in_order() -> None:
    defn = import_formio(
        form(panel("personalia", field("textfield", "navn"), field("fnrfield", "fnr")), panel("vedlegg"))
    )
    assert defn.key == "nav100750"
    assert defn.title == "Søknad"
    assert defn.source_format is SourceFormat.FORMIO
    assert [type(node) for node in defn.layout] == [PageNode, PageNode]
    assert [page.title for page in defn.layout if isinstance(page, PageNode)] == ["Personalia", "Vedlegg"]
    assert [(f.key, f.kind) for f in defn.fields()] == [
        ("navn", WidgetKind.TEXT),
        ("fnr", WidgetKind.IDENTITY_NUMBER),
    ]


def test_panels_of_a_plain_form_are_sections() -> None:
    defn = import_formio(form(panel("personalia", field("textfield", "navn")), display="form"))
    assert isinstance(defn.layout[0], SectionNode)


def test_nav_forms_api_without_display_is_a_wizard_when_every_top_component_is_a_panel() -> None:
    doc = form(panel("start"), panel("slutt"))
    del doc["display"]
    assert all(isinstance(node, PageNode) for node in import_formio(doc).layout)


def test_explicit_key_wins_over_the_form_path() -> None:
    assert import_formio(form(), key="skjema-1").key == "skjema-1"


@pytest.mark.parametrize(
    ("source_type", "kind"),
    [
        ("textfield", WidgetKind.TEXT),
        ("textarea", WidgetKind.TEXTAREA),
        ("number", WidgetKind.NUMBER),
        ("currency", WidgetKind.CURRENCY),
        ("navDatepicker", WidgetKind.DATE),
        ("datetime", WidgetKind.DATETIME),
        ("day", WidgetKind.DATE),
        ("monthPicker", WidgetKind.MONTH),
        ("year", WidgetKind.YEAR),
        ("select", WidgetKind.SELECT),
        ("navSelect", WidgetKind.SELECT),
        ("radiopanel", WidgetKind.RADIO),
        ("radio", WidgetKind.RADIO),
        ("navCheckbox", WidgetKind.CHECKBOX),
        ("selectboxes", WidgetKind.CHECKBOX_GROUP),
        ("email", WidgetKind.EMAIL),
        ("phoneNumber", WidgetKind.PHONE),
        ("attachment", WidgetKind.FILE),
        ("file", WidgetKind.FILE),
        ("navAddress", WidgetKind.ADDRESS),
        ("firstName", WidgetKind.PERSON_NAME),
        ("fnrfield", WidgetKind.IDENTITY_NUMBER),
        ("orgNr", WidgetKind.ORGANISATION_NUMBER),
        ("bankAccount", WidgetKind.BANK_ACCOUNT),
        ("iban", WidgetKind.BANK_ACCOUNT),
        ("landvelger", WidgetKind.COUNTRY),
        ("signature", WidgetKind.SIGNATURE),
        ("hidden", WidgetKind.HIDDEN),
    ],
)
def test_input_types_map_to_canonical_widget_kinds(source_type: str, kind: WidgetKind) -> None:
    node = only_field(form(field(source_type, "svar")))
    assert (node.kind, node.source_type, node.key) == (kind, source_type, "svar")


def test_unknown_type_is_a_custom_field_with_every_property_verbatim() -> None:
    component = field(
        "maalgruppe", "maalgruppe", prefix="", tableView=True, widget={"type": "input"}, x={"y": [1]}
    )
    node = only_field(form(component))
    assert node.kind is WidgetKind.CUSTOM
    assert node.source_type == "maalgruppe"
    assert node.label == "Maalgruppe"
    assert node.extras == {"prefix": "", "tableView": True, "widget": {"type": "input"}, "x": {"y": [1]}}


def test_unknown_type_with_components_keeps_its_children() -> None:
    wrapper = {"type": "navStepper", "key": "steg", "components": [field("textfield", "inni")]}
    defn = import_formio(form(wrapper, display="form"))
    assert isinstance(defn.layout[0], SectionNode)
    assert defn.layout[0].source_type == "navStepper"
    assert [f.key for f in defn.fields()] == ["inni"]


def test_layout_containers_map_to_their_canonical_nodes() -> None:
    columns = {
        "type": "columns",
        "key": "kolonner",
        "columns": [
            {"width": 6, "components": [field("textfield", "venstre")]},
            {"width": 6, "offset": 0, "components": [field("textfield", "hoyre")]},
        ],
    }
    grid = field(
        "datagrid", "barn", components=[field("textfield", "barnetsNavn")], validate={"minLength": "1"}
    )
    container = field("container", "adresse", components=[field("textfield", "gate")])
    group = {
        "type": "navSkjemagruppe",
        "key": "gruppe",
        "legend": "Om deg",
        "components": [field("email", "epost")],
    }
    defn = import_formio(form(panel("side", columns, grid, container, group)))
    page = defn.layout[0]
    assert isinstance(page, PageNode)
    columns_node, repeat, group_node, section = page.children
    assert isinstance(columns_node, ColumnsNode)
    assert all(isinstance(c, ColumnNode) and c.width == 6 for c in columns_node.children)
    assert isinstance(repeat, RepeatNode)
    assert (repeat.key, repeat.label, repeat.min_items) == ("barn", "Barn", 1)
    assert isinstance(group_node, GroupNode)
    assert group_node.key == "adresse"
    assert isinstance(section, SectionNode)
    assert section.title == "Om deg"
    assert [f.key for f in defn.fields()] == ["venstre", "hoyre", "barnetsNavn", "gate", "epost"]
    assert defn.data_keys() == ["venstre", "hoyre", "barn", "barnetsNavn", "adresse", "gate", "epost"]


def test_static_content_is_a_content_node_never_a_field() -> None:
    html = {"type": "htmlelement", "key": "info", "tag": "p", "content": "<p>Les dette</p>", "input": False}
    alert = {"type": "alertstripe", "key": "varsel", "content": "Obs!", "alerttype": "warning", "input": True}
    defn = import_formio(form(html, alert, display="form"))
    assert defn.fields() == []
    first, second = defn.layout
    assert isinstance(first, ContentNode)
    assert (first.text, first.html, first.extras) == ("<p>Les dette</p>", True, {"tag": "p"})
    assert isinstance(second, ContentNode)
    assert (second.key, second.text, second.extras) == (
        "varsel",
        "Obs!",
        {"alerttype": "warning", "input": True},
    )


def test_options_come_from_values_and_from_data_values() -> None:
    radio = field(
        "radiopanel", "svar", values=[{"label": "Ja", "value": "ja"}, {"label": "Nei", "value": "nei"}]
    )
    select = field(
        "navSelect",
        "valg",
        dataSrc="values",
        data={"values": [{"label": "En", "value": "1", "shortcut": ""}]},
    )
    radio_node, select_node = import_formio(form(radio, select)).fields()
    assert [(o.value, o.label) for o in radio_node.options] == [("ja", "Ja"), ("nei", "Nei")]
    assert [(o.value, o.label, o.extras) for o in select_node.options] == [("1", "En", {"shortcut": ""})]
    assert "data" not in select_node.extras
    assert "dataSrc" not in select_node.extras


def test_options_loaded_from_a_url_stay_in_extras() -> None:
    node = only_field(
        form(field("valutavelger", "valuta", dataSrc="url", data={"url": "https://x/currencies"}))
    )
    assert node.options == []
    assert node.extras == {"dataSrc": "url", "data": {"url": "https://x/currencies"}}


def test_label_description_and_validation_are_read() -> None:
    component = field(
        "textfield",
        "kontonummer",
        label="Kontonummer",
        description="Elleve siffer",
        placeholder="1234",
        defaultValue="0",
        validate={
            "required": True,
            "minLength": "11",
            "maxLength": 11,
            "pattern": "\\d+",
            "custom": "",
            "x": 1,
        },
    )
    node = only_field(form(component))
    assert (node.label, node.help_text, node.placeholder, node.default) == (
        "Kontonummer",
        "Elleve siffer",
        "1234",
        "0",
    )
    assert node.required is True
    assert (node.validation.min_length, node.validation.max_length, node.validation.pattern) == (
        11,
        11,
        "\\d+",
    )
    assert node.extras == {"validate": {"x": 1}}


def test_simple_conditional_is_an_evaluable_show_or_hide() -> None:
    shown = field("textfield", "a", conditional={"show": True, "when": "harBarn", "eq": "ja"})
    hidden = field("textfield", "b", conditional={"show": "false", "when": "harBarn", "eq": "nei"})
    none = field("textfield", "c", conditional={"show": None, "when": None, "eq": ""})
    a, b, c = import_formio(form(shown, hidden, none)).fields()
    [rule] = a.conditions
    assert (rule.effect, rule.when, rule.operator, rule.value, rule.depends_on) == (
        ConditionEffect.SHOW,
        "harBarn",
        "eq",
        "ja",
        ["harBarn"],
    )
    assert b.conditions[0].effect is ConditionEffect.HIDE
    assert c.conditions == []
    assert "conditional" not in c.extras


def test_custom_conditional_keeps_the_javascript_and_what_it_reads() -> None:
    node = only_field(
        form(field("textfield", "x", customConditional="show = data.container.alder > 18 && row['harJobb']"))
    )
    [rule] = node.conditions
    assert (rule.effect, rule.language) == (ConditionEffect.SHOW, "javascript")
    assert rule.expression == "show = data.container.alder > 18 && row['harJobb']"
    assert rule.depends_on == ["container.alder", "harJobb"]


def test_logic_rules_and_json_conditionals_are_kept_structured() -> None:
    logic = [
        {
            "name": "skjul",
            "trigger": {"type": "json", "json": {"==": [{"var": "data.status"}, "gift"]}},
            "actions": [{"type": "property", "property": {"value": "hidden"}, "state": True}],
        }
    ]
    json_conditional = {"show": None, "when": None, "eq": "", "json": {"!": {"var": "data.ektefelle"}}}
    node = only_field(form(field("textfield", "x", logic=logic, conditional=json_conditional)))
    json_rule, logic_rule = node.conditions
    assert (json_rule.json_logic, json_rule.depends_on) == ({"!": {"var": "data.ektefelle"}}, ["ektefelle"])
    assert (logic_rule.effect, logic_rule.depends_on, logic_rule.raw) == (
        ConditionEffect.HIDE,
        ["status"],
        logic[0],
    )


def test_calculated_value_is_a_set_value_rule() -> None:
    node = only_field(form(field("maalgruppe", "m", calculateValue="value = data.a + data.b")))
    [rule] = node.conditions
    assert (rule.effect, rule.depends_on) == (ConditionEffect.SET_VALUE, ["a", "b"])


def test_volatile_form_properties_are_metadata_and_the_rest_extras() -> None:
    doc = form(
        _id="65f0",
        created="2024-01-01",
        modified="2024-02-02",
        owner="o",
        project="p",
        machineName="m",
        _vid=3,
        createdBy="redacted",
        changedBy="redacted",
        tags=["nav-skjema"],
        properties={"skjemanummer": "NAV 10-07.50", "modified": "2024-02-02", "modifiedBy": "redacted"},
    )
    defn = import_formio(doc)
    assert set(defn.metadata) == {
        "_id",
        "created",
        "modified",
        "owner",
        "project",
        "machineName",
        "_vid",
        "createdBy",
        "changedBy",
        "properties",
    }
    assert defn.metadata["properties"] == {"modified": "2024-02-02", "modifiedBy": "redacted"}
    assert defn.extras == {
        "path": "nav100750",
        "display": "wizard",
        "tags": ["nav-skjema"],
        "properties": {"skjemanummer": "NAV 10-07.50"},
    }


def test_builder_defaults_say_nothing_so_verbose_and_compact_exports_hash_the_same() -> None:
    compact = field("textfield", "navn", id="e1", navId="n1")
    verbose = {
        **compact,
        "id": "other",
        "placeholder": "",
        "prefix": "",
        "hidden": False,
        "overlay": {"style": "", "left": ""},
        "validate": {"required": False, "custom": "", "multiple": False},
        "conditional": {"show": None, "when": None, "eq": ""},
    }
    assert content_hash(import_formio(form(compact))) == content_hash(import_formio(form(verbose)))


@pytest.mark.parametrize(
    ("doc", "path", "message"),
    [
        ({"components": {"a": 1}}, "$.components", "array of components"),
        ({"path": "p", "components": ["textfield"]}, "$.components[0]", "component object"),
        (form({"key": "x"}), "$.components[0]", "no type"),
        (form(panel("p", {"type": "textfield", "label": "Navn"})), "$.components[0].components[0]", "key"),
        (form(panel("p"), title=["x"]), "$.title", "string"),
    ],
)
def test_malformed_form_gives_the_path_and_the_problem(doc: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        import_formio(doc)
    assert caught.value.path == path
    assert message in caught.value.message


def test_real_nav_form_reads_as_its_author_built_it(corpora: Path) -> None:
    doc = json.loads((corpora / "nav-formio" / "test-forms" / "conditional-datagrid.json").read_bytes())
    defn = import_formio(doc)
    assert defn.key == "conditionaldatagrid"
    assert defn.title == "Container i datagrid"
    assert all(isinstance(node, PageNode) for node in defn.layout)
    assert [node.title for node in defn.layout if isinstance(node, PageNode)][:2] == [
        "Veiledning",
        "Dine opplysninger",
    ]
    kinds = {f.key: f.kind for f in defn.fields()}
    assert kinds["fornavn"] is WidgetKind.PERSON_NAME
    assert defn.metadata["createdBy"] == "redacted"
    assert "createdBy" not in defn.extras
    repeats = [node for _, node in defn.walk() if isinstance(node, RepeatNode)]
    assert repeats
    assert all(node.source_type == "datagrid" for node in repeats)


def test_formio5_condition_list_with_one_comparison_is_evaluable() -> None:
    single = {
        "show": False,
        "conjunction": "all",
        "conditions": [{"component": "gift", "operator": "isEmpty"}],
    }
    several = {
        "show": True,
        "conjunction": "any",
        "conditions": [
            {"component": "a", "operator": "isEqual", "value": "ja"},
            {"component": "b", "operator": "lessThan", "value": 3},
        ],
    }
    first, second = import_formio(
        form(field("textfield", "x", conditional=single), field("textfield", "y", conditional=several))
    ).fields()
    [rule] = first.conditions
    assert (rule.effect, rule.when, rule.operator, rule.raw) == (
        ConditionEffect.HIDE,
        "gift",
        "falsy",
        single,
    )
    [rule] = second.conditions
    assert (rule.effect, rule.operator, rule.depends_on, rule.raw) == (
        ConditionEffect.SHOW,
        None,
        ["a", "b"],
        several,
    )

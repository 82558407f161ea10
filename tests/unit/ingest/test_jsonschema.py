"""JSON Schema import: every VA corpus file (forms and API schemas), plus small hand-written schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ingest.errors import DefinitionError
from ingest.jsonschema import import_jsonschema
from ingest.model import (
    ConditionEffect,
    FieldNode,
    FormDefinition,
    GroupNode,
    RepeatNode,
    SourceFormat,
    WidgetKind,
)
from tests.corpora import CORPORA, raw_document

CORPUS = CORPORA / "va-jsonschema"
# Keywords under which a schema nests further schemas that can contribute properties.
SUBSCHEMA_KEYWORDS = ("items", "allOf", "anyOf", "oneOf", "then", "else")


def corpus_files() -> list[Path]:
    files = [
        *sorted((CORPUS / "current").glob("*.json")),
        *sorted((CORPUS / "current-api").glob("*.json")),
        *sorted((CORPUS / "revisions").glob("*/*.json")),
    ]
    if len(files) < 700:
        raise RuntimeError(f"JSON Schema corpus missing or incomplete at {CORPUS}: {len(files)} files")
    return files


def lookup(doc: dict[str, Any], ref: str) -> Any:
    target: Any = doc
    for token in ref[2:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if not isinstance(target, dict) or token not in target:
            return None
        target = target[token]
    return target


def raw_properties(
    doc: dict[str, Any], schema: Any, expanding: frozenset[str], names: set[str], types: set[str]
) -> None:
    """Independent walk of the raw schema: every property name reachable from the root, and its type."""
    if isinstance(schema, list):
        for item in schema:
            raw_properties(doc, item, expanding, names, types)
        return
    if not isinstance(schema, dict):
        return
    ref = schema.get("$ref")
    if isinstance(ref, str):
        if ref.startswith("#") and ref not in expanding:
            raw_properties(doc, lookup(doc, ref), expanding | {ref}, names, types)
        return
    properties = schema.get("properties")
    if isinstance(properties, dict):
        for name, sub in properties.items():
            names.add(name)
            target = lookup(doc, sub["$ref"]) if isinstance(sub, dict) and "$ref" in sub else sub
            if isinstance(target, dict) and isinstance(target.get("type"), str):
                types.add(target["type"])
            raw_properties(doc, sub, expanding, names, types)
    for keyword in SUBSCHEMA_KEYWORDS:
        raw_properties(doc, schema.get(keyword), expanding, names, types)
    dependencies = schema.get("dependencies")
    if isinstance(dependencies, dict):
        raw_properties(doc, list(dependencies.values()), expanding, names, types)


FILES = corpus_files()


@pytest.mark.parametrize("path", FILES, ids=[str(path.relative_to(CORPUS)) for path in FILES])
def test_corpus_file_imports_without_losing_a_property(path: Path) -> None:
    raw = raw_document(path)
    definition = import_jsonschema(raw, key=path.stem)

    names: set[str] = set()
    types: set[str] = set()
    raw_properties(raw, raw, frozenset(), names, types)
    missing = names - set(definition.data_keys())
    assert not missing, f"properties lost: {sorted(missing)[:10]}"
    source_types = {node.source_type for _, node in definition.walk()}
    assert types <= source_types, f"types lost: {types - source_types}"
    assert definition.source_format is SourceFormat.JSONSCHEMA


def test_corpus_walk_sees_the_properties() -> None:
    """The independent walk is not vacuous: the current forms hold thousands of properties."""
    total = 0
    for path in sorted((CORPUS / "current").glob("*.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        names: set[str] = set()
        raw_properties(raw, raw, frozenset(), names, set())
        total += len(names)
    assert total > 3000


def schema(properties: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "object",
        "properties": properties,
        **more,
    }


def only(definition: FormDefinition, key: str) -> Any:
    matches = [node for _, node in definition.walk() if node.key == key]
    assert len(matches) == 1, f"{key}: {len(matches)} nodes"
    return matches[0]


def test_definitions_are_resolved_with_json_pointer_escapes() -> None:
    doc = schema(
        {"ssn": {"$ref": "#/definitions/ssn"}, "birth": {"$ref": "#/definitions/a~1b"}},
        definitions={
            "ssn": {"type": "string", "pattern": "^[0-9]{9}$"},
            "a/b": {"type": "string", "format": "date"},
        },
        required=["ssn"],
    )
    definition = import_jsonschema(doc)
    ssn = only(definition, "ssn")
    assert (ssn.kind, ssn.required, ssn.validation.pattern) == (
        WidgetKind.IDENTITY_NUMBER,
        True,
        "^[0-9]{9}$",
    )
    assert ssn.extras == {"$ref": "#/definitions/ssn"}
    birth = only(definition, "birth")
    assert (birth.kind, birth.required) == (WidgetKind.DATE, False)


def test_defs_and_anchors_resolve() -> None:
    doc = schema(
        {"when": {"$ref": "#/$defs/day"}, "reach": {"$ref": "#contact"}},
        **{
            "$defs": {
                "day": {"type": "string", "format": "date"},
                "c": {"$anchor": "contact", "type": "string", "format": "email"},
            }
        },
    )
    definition = import_jsonschema(doc)
    assert only(definition, "when").kind is WidgetKind.DATE
    reach = only(definition, "reach")
    assert (reach.kind, reach.extras["$anchor"]) == (WidgetKind.EMAIL, "contact")


def test_recursive_definition_stops_at_the_cycle() -> None:
    doc = schema(
        {"root": {"$ref": "#/definitions/node"}},
        definitions={
            "node": {
                "type": "object",
                "properties": {
                    "label": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/definitions/node"}},
                },
            }
        },
    )
    definition = import_jsonschema(doc)
    assert definition.data_keys() == ["root", "children", "label"]
    children = only(definition, "children")
    assert isinstance(children, FieldNode)
    assert children.kind is WidgetKind.CUSTOM
    assert children.extras["items"] == {"$ref": "#/definitions/node"}


def test_cyclic_ref_chain_is_a_clear_error() -> None:
    doc = schema(
        {"a": {"$ref": "#/definitions/x"}},
        definitions={"x": {"$ref": "#/definitions/y"}, "y": {"$ref": "#/definitions/x"}},
    )
    with pytest.raises(DefinitionError, match="cyclic") as error:
        import_jsonschema(doc)
    assert error.value.path == "$.properties.a"


def test_one_of_alternatives_contribute_fields_and_a_condition() -> None:
    doc = schema(
        {"country": {"type": "string", "enum": ["USA", "CAN"]}},
        oneOf=[
            {"properties": {"country": {"enum": ["USA"]}, "state": {"type": "string", "enum": ["AL", "AK"]}}},
            {"properties": {"country": {"enum": ["CAN"]}, "province": {"type": "string"}}},
        ],
    )
    definition = import_jsonschema(doc)
    assert definition.data_keys() == ["country", "province", "state"]
    assert only(definition, "country").kind is WidgetKind.COUNTRY
    (rule,) = definition.logic
    assert rule.effect is ConditionEffect.OTHER
    assert rule.depends_on == ["country", "province", "state"]
    assert rule.raw == {"oneOf": doc["oneOf"]}


def test_any_of_required_lists_become_a_require_rule_on_the_group() -> None:
    doc = schema(
        {
            "contact": {
                "type": "object",
                "properties": {"email": {"type": "string", "format": "email"}, "phone": {"type": "string"}},
                "anyOf": [{"required": ["email"]}, {"required": ["phone"]}],
            }
        }
    )
    contact = only(import_jsonschema(doc), "contact")
    assert isinstance(contact, GroupNode)
    (rule,) = contact.conditions
    assert (rule.effect, rule.depends_on) == (ConditionEffect.REQUIRE, ["email", "phone"])
    assert [child.kind for child in contact.children if isinstance(child, FieldNode)] == [
        WidgetKind.EMAIL,
        WidgetKind.PHONE,
    ]


def test_if_then_and_dependencies_become_evaluable_rules() -> None:
    doc = schema(
        {"married": {"type": "string", "enum": ["yes", "no"]}, "spouse": {"type": "string"}},
        dependencies={"spouse": ["married"]},
        **{"if": {"properties": {"married": {"const": "yes"}}}, "then": {"required": ["spouse"]}},
    )
    definition = import_jsonschema(doc)
    when_married, dependency = definition.logic
    assert (when_married.effect, when_married.when, when_married.operator, when_married.value) == (
        ConditionEffect.REQUIRE,
        "married",
        "eq",
        "yes",
    )
    assert (dependency.effect, dependency.when, dependency.operator) == (
        ConditionEffect.REQUIRE,
        "spouse",
        "truthy",
    )


def test_nesting_gives_groups_and_repeats() -> None:
    doc = schema(
        {
            "applicant": {
                "type": "object",
                "title": "About you",
                "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 30}},
            },
            "jobs": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "properties": {"employer": {"type": "string"}, "income": {"type": "number"}},
                },
            },
            "benefits": {
                "type": "array",
                "items": {"type": "string", "enum": ["a", "b", "c"]},
                "enumNames": ["x"],
            },
            "remarks": {"type": "string", "maxLength": 1000},
            "agree": {"type": "boolean", "enum": [True]},
            "anything": {"description": "free form"},
        },
        title="My form",
    )
    definition = import_jsonschema(doc)
    assert definition.key == "my-form"
    applicant = only(definition, "applicant")
    assert isinstance(applicant, GroupNode)
    assert applicant.title == "About you"
    name = only(definition, "name")
    assert (name.label, name.validation.min_length, name.validation.max_length) == ("Name", 1, 30)
    jobs = only(definition, "jobs")
    assert isinstance(jobs, RepeatNode)
    assert jobs.min_items == 1
    assert only(definition, "income").kind is WidgetKind.CURRENCY
    benefits = only(definition, "benefits")
    assert (benefits.kind, benefits.multiple) == (WidgetKind.CHECKBOX_GROUP, True)
    assert [option.value for option in benefits.options] == ["a", "b", "c"]
    assert benefits.extras["enumNames"] == ["x"]
    assert only(definition, "remarks").kind is WidgetKind.TEXTAREA
    agree = only(definition, "agree")
    assert (agree.kind, agree.options, agree.extras) == (WidgetKind.CHECKBOX, [], {"enum": [True]})
    anything = only(definition, "anything")
    assert (anything.kind, anything.help_text) == (WidgetKind.CUSTOM, "free form")


def test_enum_names_label_the_options() -> None:
    doc = schema(
        {
            "branch": {
                "type": "string",
                "enum": ["A", "N", "M", "F", "C"],
                "enumNames": ["Army", "Navy", "Marines", "Air Force", "Coast Guard"],
            }
        }
    )
    branch = only(import_jsonschema(doc), "branch")
    assert branch.kind is WidgetKind.SELECT
    assert [(option.value, option.label) for option in branch.options][:2] == [("A", "Army"), ("N", "Navy")]


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"$id": "https://va.gov/schemas/10-10EZ.json", "properties": {}}, "10-10ez"),
        ({"id": "urn:form#", "title": "Ignored", "properties": {}}, "urn-form"),
        ({"title": "Health Benefits", "properties": {}}, "health-benefits"),
        ({"properties": {}}, "schema"),
    ],
)
def test_form_key_comes_from_id_then_title(doc: dict[str, Any], expected: str) -> None:
    assert import_jsonschema(doc).key == expected
    assert import_jsonschema(doc, key="given").key == "given"


def test_a_non_object_root_is_one_field() -> None:
    definition = import_jsonschema({"type": "string", "enum": ["a", "b"]}, key="benefit-type")
    assert definition.data_keys() == ["benefit-type"]
    assert only(definition, "benefit-type").kind is WidgetKind.RADIO


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"properties": []}, "$.properties"),
        ({"properties": {"a": {"$ref": 5}}}, "$.properties.a"),
        ({"properties": {"a": {"type": "object", "oneOf": {}}}}, "$.properties.a.oneOf"),
        ({"display": "wizard", "type": "form", "components": []}, "$.type"),
        ({"pages": [{"name": "p", "elements": []}]}, "$"),
        ({"components": [], "properties": {"skjemanummer": "NAV 10-07.40"}}, "$"),
        ({"title": "x", "properties": {"owner": "me"}}, "$.properties"),
    ],
)
def test_malformed_schema_gives_a_clear_error_with_its_path(doc: dict[str, Any], path: str) -> None:
    with pytest.raises(DefinitionError) as error:
        import_jsonschema(doc)
    assert error.value.path.startswith(path)


def test_deep_nesting_is_refused_without_recursion_error() -> None:
    doc: dict[str, Any] = {"type": "string"}
    for _ in range(10_000):
        doc = {"type": "object", "properties": {"x": doc}}
    with pytest.raises(DefinitionError, match="nested deeper"):
        import_jsonschema(doc)


def test_exponential_ref_fan_out_is_bounded() -> None:
    definitions: dict[str, Any] = {"d0": {"type": "string"}}
    for level in range(1, 30):
        below = {"$ref": f"#/definitions/d{level - 1}"}
        definitions[f"d{level}"] = {"type": "object", "properties": {"a": below, "b": below}}
    with pytest.raises(DefinitionError, match="more than"):
        import_jsonschema(schema({"top": {"$ref": "#/definitions/d29"}}, definitions=definitions))


def test_property_order_does_not_change_the_layout() -> None:
    """JSON objects are unordered: the same schema with shuffled keys is the same form."""
    properties = {"zip": {"type": "string"}, "age": {"type": "integer"}, "name": {"type": "string"}}
    reordered = dict(reversed(list(properties.items())))
    first, second = import_jsonschema(schema(properties)), import_jsonschema(schema(reordered))
    assert first.data_keys() == second.data_keys() == ["age", "name", "zip"]
    assert first == second


def test_required_names_without_a_property_are_kept_as_a_rule() -> None:
    definition = import_jsonschema(schema({"name": {"type": "string"}}, required=["name", "privacyAccepted"]))
    assert only(definition, "name").required
    (rule,) = definition.logic
    assert (rule.effect, rule.depends_on) == (ConditionEffect.REQUIRE, ["privacyAccepted"])


def test_long_chain_of_all_of_references_is_bounded() -> None:
    definitions: dict[str, Any] = {
        f"d{level}": {"allOf": [{"$ref": f"#/definitions/d{level + 1}"}]} for level in range(5_000)
    }
    definitions["d5000"] = {"type": "string"}
    with pytest.raises(DefinitionError, match="nested deeper"):
        import_jsonschema(schema({"top": {"$ref": "#/definitions/d0"}}, definitions=definitions))

"""SurveyJS import: every BC corpus file, plus small hand-written surveys."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from ingest.errors import DefinitionError
from ingest.model import (
    ConditionEffect,
    ContentNode,
    FieldNode,
    FormDefinition,
    GroupNode,
    PageNode,
    RepeatNode,
    SectionNode,
    SourceFormat,
    WidgetKind,
)
from ingest.surveyjs import import_surveyjs
from tests.corpora import CORPORA, raw_document

CORPUS = CORPORA / "bcgov-fla-surveyjs"
# Element types that hold no answer of their own (containers and static content).
NON_DATA_TYPES = {"panel", "html", "image", "expression", "infotext", "helptext", "infotexttitle"}
CHILD_LISTS = ("pages", "elements", "questions", "templateElements")


def corpus_files() -> list[Path]:
    files = sorted((CORPUS / "current").glob("*.json")) + sorted((CORPUS / "revisions").glob("*/*.json"))
    if len(files) < 900:
        raise RuntimeError(f"SurveyJS corpus missing or incomplete at {CORPUS}: {len(files)} files")
    return files


def raw_questions(node: Any, path: str, found: dict[str, str], types: set[str]) -> None:
    """Independent walk of the raw JSON: data key of each question, and every element type."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            raw_questions(item, f"{path}[{index}]", found, types)
        return
    if not isinstance(node, dict):
        return
    element_type = node.get("type")
    if isinstance(element_type, str):
        types.add(element_type)
        if element_type.lower() not in NON_DATA_TYPES or "expression" in node:
            key = node.get("valueName") or node.get("name")
            found[path] = str(key) if key is not None else path
    for name in CHILD_LISTS:
        if name in node:
            raw_questions(node[name], f"{path}.{name}", found, types)


FILES = corpus_files()


@pytest.mark.parametrize("path", FILES, ids=[str(path.relative_to(CORPUS)) for path in FILES])
def test_corpus_file_imports_without_losing_a_question(path: Path) -> None:
    raw = raw_document(path)
    definition = import_surveyjs(raw, key=path.stem)

    questions: dict[str, str] = {}
    types: set[str] = set()
    raw_questions(raw, "$", questions, types)
    # A multiset: two questions sharing a name must give two data nodes.
    missing = Counter(questions.values()) - Counter(definition.data_keys())
    assert not missing, f"questions lost: {sorted(missing)[:10]}"
    source_types = {node.source_type for _, node in definition.walk()}
    assert types <= source_types, f"types lost: {types - source_types}"
    assert definition.source_format is SourceFormat.SURVEYJS


def test_corpus_walk_sees_the_questions() -> None:
    """The independent walk finds the corpus's questions and the importer turns them into fields."""
    raw_count = field_count = 0
    for path in sorted((CORPUS / "current").glob("*.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        questions: dict[str, str] = {}
        raw_questions(raw, "$", questions, set())
        raw_count += len(questions)
        field_count += len(import_surveyjs(raw).fields())
    assert raw_count > 900
    assert field_count >= raw_count - 100  # paneldynamic and multipletext are repeats/groups, not fields


def survey(*elements: dict[str, Any], **settings: Any) -> dict[str, Any]:
    return {"pages": [{"name": "page1", "elements": list(elements)}], **settings}


def only(definition: FormDefinition, key: str) -> Any:
    matches = [node for _, node in definition.walk() if node.key == key]
    assert len(matches) == 1, f"{key}: {len(matches)} nodes"
    return matches[0]


def test_pages_and_panels_become_pages_and_sections() -> None:
    definition = import_surveyjs(
        survey({"type": "panel", "name": "who", "title": "Who", "elements": [{"type": "text", "name": "n"}]}),
        key="k",
    )
    page = definition.layout[0]
    assert isinstance(page, PageNode)
    assert page.key == "page1"
    section = page.children[0]
    assert isinstance(section, SectionNode)
    assert section.title == "Who"
    assert [child.key for child in section.children] == ["n"]


def test_paneldynamic_is_a_repeat_of_its_template() -> None:
    definition = import_surveyjs(
        survey(
            {
                "type": "paneldynamic",
                "name": "children",
                "title": "Children",
                "minPanelCount": 1,
                "panelAddText": "Add child",
                "templateElements": [
                    {"type": "personname", "name": "childName"},
                    {"type": "text", "name": "dob", "inputType": "date"},
                ],
            }
        )
    )
    repeat = only(definition, "children")
    assert isinstance(repeat, RepeatNode)
    assert repeat.min_items == 1
    assert repeat.extras == {"panelAddText": "Add child"}
    kinds = [child.kind for child in repeat.children if isinstance(child, FieldNode)]
    assert kinds == [WidgetKind.PERSON_NAME, WidgetKind.DATE]


def test_localised_title_uses_default_text_and_keeps_all_languages() -> None:
    title = {"default": "Your name", "fr": "Votre nom"}
    definition = import_surveyjs(survey({"type": "text", "name": "name", "title": title}))
    field = only(definition, "name")
    assert field.label == "Your name"
    assert field.extras["title"] == title


def test_simple_visible_if_is_evaluable() -> None:
    definition = import_surveyjs(
        survey(
            {"type": "yesno", "name": "lawyer"},
            {"type": "text", "name": "firm", "visibleIf": "{lawyer} = 'y'"},
            {"type": "text", "name": "why", "visibleIf": "{lawyer} <> 'y'"},
            {"type": "text", "name": "note", "enableIf": "{firm} notempty"},
        )
    )
    shown = only(definition, "firm").conditions[0]
    assert shown.effect is ConditionEffect.SHOW
    assert (shown.when, shown.operator, shown.value) == ("lawyer", "eq", "y")
    assert shown.depends_on == ["lawyer"]
    assert shown.expression == "{lawyer} = 'y'"
    assert shown.language == "surveyjs"
    assert only(definition, "why").conditions[0].operator == "neq"
    enabled = only(definition, "note").conditions[0]
    assert (enabled.effect, enabled.when, enabled.operator) == (ConditionEffect.ENABLE, "firm", "truthy")


def test_complex_expression_keeps_references_but_is_not_evaluable() -> None:
    expression = "{a} = 'y' and ({b} = 'n' or {panel.c} notempty)"
    definition = import_surveyjs(survey({"type": "comment", "name": "q", "requiredIf": expression}))
    condition = only(definition, "q").conditions[0]
    assert condition.effect is ConditionEffect.REQUIRE
    assert condition.depends_on == ["a", "b", "panel.c"]
    assert condition.operator is None
    assert condition.expression == expression


def test_unknown_custom_type_is_kept_with_its_properties() -> None:
    element = {
        "type": "contactinfo",
        "name": "contact",
        "title": "Contact",
        "labelEmail": "Email",
        "labelFax": "Fax",
        "visible": False,
    }
    field = only(import_surveyjs(survey(element)), "contact")
    assert isinstance(field, FieldNode)
    assert field.kind is WidgetKind.CUSTOM
    assert field.source_type == "contactinfo"
    assert field.extras == {"labelEmail": "Email", "labelFax": "Fax", "visible": False}


def test_known_custom_types_map_to_canonical_kinds() -> None:
    definition = import_surveyjs(
        survey(
            {"type": "yesno", "name": "a"},
            {"type": "address", "name": "b"},
            {"type": "infotext", "name": "c", "title": "Read <b>this</b>", "titleLocation": "hidden"},
            {"type": "helptext", "name": "d", "title": "Why?", "body": "Because."},
        )
    )
    assert only(definition, "a").kind is WidgetKind.YES_NO
    assert only(definition, "b").kind is WidgetKind.ADDRESS
    info = only(definition, "c")
    assert isinstance(info, ContentNode)
    assert info.text == "Read <b>this</b>"
    help_box = only(definition, "d")
    assert (help_box.title, help_box.text) == ("Why?", "Because.")
    assert definition.data_keys() == ["a", "b"]


def test_text_input_types_and_choices() -> None:
    definition = import_surveyjs(
        survey(
            {"type": "text", "name": "phone", "inputType": "tel"},
            {"type": "text", "name": "when", "inputType": "month"},
            {"type": "text", "name": "colour", "inputType": "color"},
            {
                "type": "checkbox",
                "name": "pets",
                "choices": ["cat", {"value": "dog", "text": {"default": "Dog"}}],
            },
            {"type": "radiogroup", "name": "old", "choices": ["y|Yes", "n|No"]},
        )
    )
    assert only(definition, "phone").kind is WidgetKind.PHONE
    assert only(definition, "when").kind is WidgetKind.MONTH
    colour = only(definition, "colour")
    assert (colour.kind, colour.extras["inputType"]) == (WidgetKind.TEXT, "color")
    pets = only(definition, "pets")
    assert pets.multiple
    assert [(option.value, option.label) for option in pets.options] == [("cat", "cat"), ("dog", "Dog")]
    assert [(option.value, option.label) for option in only(definition, "old").options] == [
        ("y", "Yes"),
        ("n", "No"),
    ]


def test_matrices_keep_rows_and_columns() -> None:
    definition = import_surveyjs(
        survey(
            {
                "type": "matrix",
                "name": "quality",
                "columns": [{"value": 1, "text": "Bad"}, {"value": 2, "text": "Good"}],
                "rows": ["price", "speed"],
            },
            {
                "type": "matrixdynamic",
                "name": "guardians",
                "choices": ["G1", "G2"],
                "columns": [{"name": "who"}, {"name": "since", "cellType": "text", "inputType": "date"}],
            },
            {"type": "multipletext", "name": "names", "items": [{"name": "first"}, {"name": "last"}]},
        )
    )
    quality = only(definition, "quality")
    assert quality.kind is WidgetKind.MATRIX
    assert [option.label for option in quality.options] == ["Bad", "Good"]
    assert quality.extras["rows"] == ["price", "speed"]
    guardians = only(definition, "guardians")
    assert isinstance(guardians, RepeatNode)
    columns = [child for child in guardians.children if isinstance(child, FieldNode)]
    assert [(column.key, column.kind) for column in columns] == [
        ("who", WidgetKind.SELECT),
        ("since", WidgetKind.DATE),
    ]
    assert [option.value for option in columns[0].options] == ["G1", "G2"]
    names = only(definition, "names")
    assert isinstance(names, GroupNode)
    assert [child.key for child in names.children] == ["first", "last"]


def test_value_name_is_the_data_key() -> None:
    field = only(import_surveyjs(survey({"type": "text", "name": "q1", "valueName": "shared"})), "shared")
    assert field.extras == {"name": "q1"}


def test_triggers_and_calculated_values_become_form_logic() -> None:
    definition = import_surveyjs(
        survey(
            {"type": "yesno", "name": "a"},
            triggers=[{"type": "setvalue", "expression": "{a} = 'y'", "setToName": "b", "setValue": 1}],
            calculatedValues=[{"name": "total", "expression": "{x} + {y}"}],
            title={"default": "Survey", "fr": "Enquête"},
            surveyId="abc",
        )
    )
    trigger, calculated = definition.logic
    assert (trigger.effect, trigger.when, trigger.value) == (ConditionEffect.SET_VALUE, "a", "y")
    assert trigger.raw["setToName"] == "b"
    assert calculated.depends_on == ["x", "y"]
    assert definition.title == "Survey"
    assert definition.key == "survey"
    assert definition.metadata == {"surveyId": "abc"}
    assert definition.extras["title"] == {"default": "Survey", "fr": "Enquête"}


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"components": []}, "$"),
        ({"pages": {}}, "$.pages"),
        ({"pages": [{"elements": [{"name": "x"}]}]}, "$.pages[0].elements[0]"),
        ({"pages": [{"elements": ["text"]}]}, "$.pages[0].elements[0]"),
    ],
)
def test_malformed_survey_gives_a_clear_error_with_its_path(doc: dict[str, Any], path: str) -> None:
    with pytest.raises(DefinitionError) as error:
        import_surveyjs(doc)
    assert error.value.path == path


def test_deep_nesting_is_refused_without_recursion_error() -> None:
    element: dict[str, Any] = {"type": "text", "name": "leaf"}
    for _ in range(10_000):
        element = {"type": "panel", "name": "p", "elements": [element]}
    with pytest.raises(DefinitionError, match="nested deeper"):
        import_surveyjs({"elements": [element]})


def test_huge_survey_is_refused_quickly() -> None:
    elements = [{"type": "text", "name": f"q{index}"} for index in range(100_000)]
    with pytest.raises(DefinitionError, match="more than"):
        import_surveyjs({"pages": [{"name": "p", "elements": elements}]})


def test_validators_become_validation_and_rules() -> None:
    validators = [
        {"type": "numeric", "minValue": 0, "maxValue": 120, "text": "A real age, please"},
        {"type": "expression", "expression": "{age} notempty and {name} notempty"},
    ]
    field = only(import_surveyjs(survey({"type": "text", "name": "age", "validators": validators})), "age")
    assert (field.validation.minimum, field.validation.maximum) == (0, 120)
    assert field.validation.message == "A real age, please"
    numeric, expression = field.conditions
    assert (numeric.effect, numeric.raw) == (ConditionEffect.VALIDATE, validators[0])
    assert (expression.depends_on, expression.language) == (["age", "name"], "surveyjs")
    assert "validators" not in field.extras

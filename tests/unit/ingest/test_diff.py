"""Structural diff on hand-built definitions: each kind of change a user would notice."""

from __future__ import annotations

import json

from ingest.diff import Change, ChangeKind, DefinitionDiff, diff_definitions
from ingest.model import (
    ColumnNode,
    ColumnsNode,
    Condition,
    ConditionEffect,
    ContentNode,
    FieldNode,
    FormDefinition,
    LayoutNode,
    Option,
    PageNode,
    RepeatNode,
    SectionNode,
    Validation,
    WidgetKind,
)

YES_NO = [Option(value="yes", label="Yes"), Option(value="no", label="No")]


def base_form() -> FormDefinition:
    """A two-page application with a repeat, columns, a static block and a rule."""
    return FormDefinition(
        key="application",
        title="Application for support",
        texts={"submit": "Send"},
        metadata={"exported_at": "2024-01-01T00:00:00Z"},
        layout=[
            PageNode(
                key="personal",
                title="Personal details",
                children=[
                    FieldNode(key="firstName", label="First name", required=True),
                    FieldNode(key="lastName", label="Last name", required=True),
                    FieldNode(key="birthDate", label="Date of birth", kind=WidgetKind.DATE),
                    FieldNode(key="married", label="Are you married?", kind=WidgetKind.RADIO, options=YES_NO),
                    ContentNode(key="privacy", text="<p>We keep your data safe.</p>", html=True),
                ],
            ),
            PageNode(
                key="family",
                title="Family",
                children=[
                    RepeatNode(
                        key="children",
                        label="Children",
                        children=[
                            FieldNode(key="childName", label="Name of the child"),
                            FieldNode(key="childBirth", label="Child's date of birth", kind=WidgetKind.DATE),
                        ],
                    ),
                    ColumnsNode(
                        key="columns",
                        children=[
                            ColumnNode(
                                children=[FieldNode(key="phone", label="Phone", kind=WidgetKind.PHONE)]
                            ),
                            ColumnNode(
                                children=[FieldNode(key="email", label="E-mail", kind=WidgetKind.EMAIL)]
                            ),
                        ],
                    ),
                    FieldNode(
                        key="spouseName",
                        label="Spouse's name",
                        conditions=[
                            Condition(
                                effect=ConditionEffect.SHOW,
                                depends_on=["married"],
                                when="married",
                                value="yes",
                            )
                        ],
                    ),
                ],
            ),
        ],
        logic=[Condition(effect=ConditionEffect.SET_VALUE, depends_on=["married"], expression="x")],
    )


def page(defn: FormDefinition, index: int) -> PageNode:
    node = defn.layout[index]
    assert isinstance(node, PageNode)
    return node


def fields_of(diff: DefinitionDiff, kind: ChangeKind) -> list[Change]:
    return [change for change in diff.changes if change.kind is kind]


def test_a_definition_diffed_with_itself_or_a_copy_is_empty() -> None:
    form = base_form()

    for other in (
        form,
        form.model_copy(deep=True),
        FormDefinition.model_validate_json(form.model_dump_json()),
    ):
        diff = diff_definitions(form, other)

        assert diff.is_empty
        assert diff.changes == []
        assert diff.summary == "no changes"
        assert (diff.added, diff.removed, diff.changed, diff.moved, diff.renamed) == (0, 0, 0, 0, 0)


def test_volatile_metadata_never_shows_up() -> None:
    old, new = base_form(), base_form()
    new.metadata = {"exported_at": "2025-06-30T12:00:00Z", "revision": 17}
    first = page(new, 0).children[0]
    assert isinstance(first, FieldNode)
    first.extras = {"id": "e4x9k", "navId": "abc"}  # editor bookkeeping, same as the content hash ignores

    assert diff_definitions(old, new).is_empty


def test_added_and_removed_fields_are_counted_with_their_place() -> None:
    old, new = base_form(), base_form()
    page(new, 0).children.insert(2, FieldNode(key="nationalId", label="National identity number"))
    page(new, 1).children.pop()  # spouseName

    diff = diff_definitions(old, new)

    assert (diff.added, diff.removed, diff.changed, diff.moved, diff.renamed) == (1, 1, 0, 0, 0)
    [added] = fields_of(diff, ChangeKind.FIELD_ADDED)
    assert added.key == "nationalId"
    assert added.new_path == ["personal"]
    assert added.properties["label"].new == "National identity number"
    [removed] = fields_of(diff, ChangeKind.FIELD_REMOVED)
    assert removed.key == "spouseName"
    assert removed.old_path == ["family"]
    assert diff.summary == "1 field added, 1 removed"


def test_changed_field_names_each_property_with_old_and_new() -> None:
    old, new = base_form(), base_form()
    married = page(new, 0).children[3]
    assert isinstance(married, FieldNode)
    married.label = "Are you married or in a partnership?"
    married.options = [*YES_NO, Option(value="partner", label="Registered partnership")]
    married.required = True
    married.validation = Validation(custom="valid = true")
    married.extras = {"tooltip": "Ask us"}

    diff = diff_definitions(old, new)

    [change] = diff.changes
    assert change.kind is ChangeKind.FIELD_CHANGED
    assert change.key == "married"
    assert set(change.properties) == {"label", "options", "required", "validation", "extras.tooltip"}
    assert change.properties["label"].old == "Are you married?"
    assert change.properties["required"].old is False
    assert change.properties["required"].new is True
    assert [option["value"] for option in change.properties["options"].new] == ["yes", "no", "partner"]
    assert change.properties["extras.tooltip"].old is None
    assert diff.summary == "1 field changed"


def test_a_field_moved_to_another_container_is_a_move_not_a_remove_and_add() -> None:
    old, new = base_form(), base_form()
    birth = page(new, 0).children.pop(2)
    page(new, 1).children.append(birth)

    diff = diff_definitions(old, new)

    assert (diff.added, diff.removed, diff.moved) == (0, 0, 1)
    [moved] = fields_of(diff, ChangeKind.FIELD_MOVED)
    assert moved.key == "birthDate"
    assert moved.old_path == ["personal"]
    assert moved.new_path == ["family"]


def test_a_field_moved_between_columns_is_a_move() -> None:
    old, new = base_form(), base_form()
    columns = page(new, 1).children[1]
    assert isinstance(columns, ColumnsNode)
    first, second = columns.children
    assert isinstance(first, ColumnNode)
    assert isinstance(second, ColumnNode)
    second.children.append(first.children.pop())

    diff = diff_definitions(old, new)

    [moved] = fields_of(diff, ChangeKind.FIELD_MOVED)
    assert moved.key == "phone"
    assert moved.old_path == ["family", "columns", "column"]
    assert moved.new_path == ["family", "columns", "column"]  # human path; the identity differs
    assert diff.moved == 1


def test_fields_reordered_in_one_container_are_a_layout_change() -> None:
    old, new = base_form(), base_form()
    children = page(new, 0).children
    children[0], children[1] = children[1], children[0]

    diff = diff_definitions(old, new)

    [change] = diff.changes
    assert change.kind is ChangeKind.LAYOUT_CHANGED
    assert change.action == "reordered"
    assert change.key == "personal"
    assert change.properties["order"].old[:2] == ["firstName", "lastName"]
    assert change.properties["order"].new[:2] == ["lastName", "firstName"]
    assert diff.summary == "layout changed"


def test_renamed_key_with_the_same_label_is_one_rename() -> None:
    old, new = base_form(), base_form()
    first = page(new, 0).children[0]
    assert isinstance(first, FieldNode)
    first.key = "givenName"

    diff = diff_definitions(old, new)

    assert (diff.added, diff.removed, diff.renamed) == (0, 0, 1)
    [renamed] = diff.changes
    assert renamed.kind is ChangeKind.FIELD_RENAMED
    assert (renamed.old_key, renamed.key) == ("firstName", "givenName")
    assert renamed.properties == {"key": renamed.properties["key"]}
    assert diff.summary == "1 field renamed"


def test_renamed_key_with_near_identical_label_and_same_options_is_a_rename() -> None:
    old, new = base_form(), base_form()
    married = page(new, 0).children[3]
    assert isinstance(married, FieldNode)
    married.key = "isMarried"
    married.label = "Are you married ?"

    diff = diff_definitions(old, new)

    [renamed] = diff.changes
    assert renamed.kind is ChangeKind.FIELD_RENAMED
    assert renamed.old_key == "married"
    assert renamed.properties["label"].new == "Are you married ?"


def test_look_alike_fields_are_not_guessed_as_renames() -> None:
    old, new = base_form(), base_form()
    page(new, 0).children.pop(0)  # firstName: "First name"
    page(new, 0).children.insert(0, FieldNode(key="fullName", label="Full name"))
    # Two new fields with the same label as one removed field: ambiguous, so no rename.
    page(old, 1).children.append(FieldNode(key="note", label="Note", kind=WidgetKind.TEXTAREA))
    page(new, 1).children.append(FieldNode(key="note1", label="Note", kind=WidgetKind.TEXTAREA))
    page(new, 1).children.append(FieldNode(key="note2", label="Note", kind=WidgetKind.TEXTAREA))
    # Same label, different widget: a different field.
    page(old, 1).children.append(FieldNode(key="income", label="Income", kind=WidgetKind.CURRENCY))
    page(new, 1).children.append(FieldNode(key="incomeText", label="Income", kind=WidgetKind.TEXT))

    diff = diff_definitions(old, new)

    assert diff.renamed == 0
    assert diff.added == 4
    assert diff.removed == 3


def test_duplicate_keys_are_matched_by_place_then_occurrence() -> None:
    def form(second_label: str, *, swap_sections: bool = False) -> FormDefinition:
        sections = [
            SectionNode(key="a", title="A", children=[FieldNode(key="amount", label="Amount A")]),
            SectionNode(key="b", title="B", children=[FieldNode(key="amount", label=second_label)]),
        ]
        if swap_sections:
            sections.reverse()
        layout: list[LayoutNode] = [PageNode(key="p", children=list(sections))]
        return FormDefinition(key="dup", layout=layout)

    same = diff_definitions(form("Amount B"), form("Amount B"))
    changed = diff_definitions(form("Amount B"), form("Amount in B"))
    swapped = diff_definitions(form("Amount B"), form("Amount B", swap_sections=True))

    assert same.is_empty
    [change] = changed.changes
    assert change.kind is ChangeKind.FIELD_CHANGED
    assert change.new_path == ["p", "b"]
    assert change.properties["label"].old == "Amount B"
    assert [c.action for c in swapped.changes] == ["reordered"]
    assert swapped.changed == 0


def test_duplicate_keys_added_and_removed_never_crash() -> None:
    def form(count: int) -> FormDefinition:
        layout: list[LayoutNode] = [FieldNode(key="x", label=f"X {i}") for i in range(count)]
        return FormDefinition(key="dups", layout=layout)

    grown = diff_definitions(form(2), form(5))
    shrunk = diff_definitions(form(5), form(2))

    assert (grown.added, grown.removed) == (3, 0)
    assert (shrunk.added, shrunk.removed) == (0, 3)


def test_container_added_removed_retitled_and_reordered() -> None:
    old, new = base_form(), base_form()
    new.layout.append(PageNode(key="summary", title="Summary"))
    page(new, 0).title = "About you"
    repeat = page(new, 1).children[0]
    assert isinstance(repeat, RepeatNode)
    repeat.max_items = 10
    new.layout[0], new.layout[1] = new.layout[1], new.layout[0]

    diff = diff_definitions(old, new)

    layout = {(c.action, c.key): c for c in fields_of(diff, ChangeKind.LAYOUT_CHANGED)}
    assert set(layout) == {
        ("added", "summary"),
        ("changed", "personal"),
        ("changed", "children"),
        ("reordered", None),
    }
    assert layout["changed", "personal"].properties["title"].new == "About you"
    assert layout["changed", "children"].properties["max_items"].new == 10
    assert layout["reordered", None].properties["order"].new == ["family", "personal"]
    assert diff.added == diff.removed == diff.moved == 0
    assert diff.summary == "layout changed"


def test_a_container_with_a_new_key_keeps_its_fields_in_place() -> None:
    old, new = base_form(), base_form()
    page(new, 1).key = "familyPage"

    diff = diff_definitions(old, new)

    [change] = diff.changes
    assert change.kind is ChangeKind.LAYOUT_CHANGED
    assert change.action == "renamed"
    assert (change.old_key, change.key) == ("family", "familyPage")
    assert diff.moved == 0


def test_removed_section_reports_its_fields_and_the_section() -> None:
    old, new = base_form(), base_form()
    page(new, 1).children.pop(0)  # the children repeat

    diff = diff_definitions(old, new)

    assert diff.removed == 2
    assert [c.key for c in fields_of(diff, ChangeKind.FIELD_REMOVED)] == ["childName", "childBirth"]
    [layout] = fields_of(diff, ChangeKind.LAYOUT_CHANGED)
    assert (layout.action, layout.node, layout.key) == ("removed", "repeat", "children")


def test_static_content_changes_are_layout_changes() -> None:
    old, new = base_form(), base_form()
    privacy = page(new, 0).children[4]
    assert isinstance(privacy, ContentNode)
    privacy.text = "<p>We keep your data for five years.</p>"

    diff = diff_definitions(old, new)

    [change] = diff.changes
    assert (change.kind, change.action, change.key) == (ChangeKind.LAYOUT_CHANGED, "changed", "privacy")
    assert "five years" in change.properties["text"].new


def test_rules_on_fields_containers_and_form_are_logic_changes() -> None:
    old, new = base_form(), base_form()
    spouse = page(new, 1).children[2]
    assert isinstance(spouse, FieldNode)
    spouse.conditions[0].value = "no"
    page(new, 1).conditions = [Condition(effect=ConditionEffect.HIDE, expression="data.single")]
    new.logic = [
        Condition(effect=ConditionEffect.SET_VALUE, depends_on=["married"], expression="y"),
        Condition(effect=ConditionEffect.VALIDATE, expression="z"),
    ]

    diff = diff_definitions(old, new)

    [field_change] = fields_of(diff, ChangeKind.FIELD_CHANGED)
    assert set(field_change.properties) == {"conditions"}
    assert field_change.properties["conditions"].new[0]["value"] == "no"
    logic = fields_of(diff, ChangeKind.LOGIC_CHANGED)
    assert [(c.action, c.node) for c in logic] == [
        ("changed", "page"),
        ("changed", "form"),
        ("added", "form"),
    ]
    assert logic[1].properties["rule"].old["expression"] == "x"
    assert logic[1].properties["rule"].new["expression"] == "y"
    assert diff.logic == 4
    assert diff.summary == "1 field changed; 4 rules changed"


def test_form_title_description_and_texts_are_form_changes() -> None:
    old, new = base_form(), base_form()
    new.title = "Application for child support"
    new.description = "Apply here."
    new.texts = {"submit": "Submit application", "cancel": "Cancel"}

    diff = diff_definitions(old, new)

    [change] = diff.changes
    assert change.kind is ChangeKind.FORM_CHANGED
    assert set(change.properties) == {"title", "description", "texts.submit", "texts.cancel"}
    assert change.properties["texts.cancel"].old is None
    assert diff.summary == "form texts changed"


def test_summary_counts_each_kind_and_the_diff_is_json_and_deterministic() -> None:
    old, new = base_form(), base_form()
    page(new, 0).children.insert(0, FieldNode(key="title", label="Title"))
    page(new, 0).children.insert(0, FieldNode(key="middleName", label="Middle name"))
    page(new, 0).children.pop(3)  # lastName
    email = page(new, 1).children[1]
    assert isinstance(email, ColumnsNode)
    email_field = email.children[1]
    assert isinstance(email_field, ColumnNode)
    email_field.children[0].label = "Email address"  # type: ignore[union-attr]
    new.logic = []

    first = diff_definitions(old, new)
    second = diff_definitions(old.model_copy(deep=True), new.model_copy(deep=True))

    assert first.summary == "2 fields added, 1 removed, 1 changed; 1 rule changed"
    dumped = first.model_dump(mode="json")
    assert json.loads(json.dumps(dumped)) == dumped
    assert dumped == second.model_dump(mode="json")
    assert DefinitionDiff.model_validate(dumped) == first


def test_empty_definitions_and_everything_added() -> None:
    empty = FormDefinition(key="application")

    built = diff_definitions(empty, base_form())
    torn_down = diff_definitions(base_form(), empty)

    assert built.added == len(base_form().fields()) == torn_down.removed
    assert built.removed == torn_down.added == 0
    assert built.renamed == torn_down.renamed == 0


def test_values_equal_in_python_but_not_in_json_are_changes() -> None:
    old, new = base_form(), base_form()
    for defn, default, rows in ((old, 1, 1), (new, True, 1.0)):
        first = page(defn, 0).children[0]
        assert isinstance(first, FieldNode)
        first.default = default
        first.extras = {"rows": rows}

    diff = diff_definitions(old, new)

    [change] = diff.changes
    assert change.properties["default"].new is True
    assert change.properties["extras.rows"].new == 1.0


def test_changed_entries_of_unmodelled_objects_are_named_not_repeated_whole() -> None:
    old, new = base_form(), base_form()
    old.extras = {"definitions": {"date": {"type": "string"}, "ssn": {"pattern": "^[0-9]{9}$"}}}
    new.extras = {"definitions": {"date": {"type": "string"}, "ssn": {"pattern": "^[0-9]{3}-?[0-9]{6}$"}}}

    diff = diff_definitions(old, new)

    [change] = diff.changes
    assert change.kind is ChangeKind.FORM_CHANGED
    assert set(change.properties) == {"extras.definitions.ssn"}
    assert change.properties["extras.definitions.ssn"].new == {"pattern": "^[0-9]{3}-?[0-9]{6}$"}


def test_a_retitled_section_without_a_key_is_the_same_section() -> None:
    def form(title: str) -> FormDefinition:
        section = SectionNode(title=title, children=[FieldNode(key="income", label="Income")])
        return FormDefinition(key="f", layout=[PageNode(key="p", children=[section])])

    diff = diff_definitions(form("Your income"), form("Income last year"))

    [change] = diff.changes
    assert (change.kind, change.action, change.node) == (ChangeKind.LAYOUT_CHANGED, "changed", "section")
    assert change.properties["title"].old == "Your income"
    assert change.properties["title"].new == "Income last year"
    assert diff.moved == 0

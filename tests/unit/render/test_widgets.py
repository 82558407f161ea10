"""Widget mapping: known kinds stay, custom types take the nearest known widget, else a text input."""

from __future__ import annotations

import pytest

from ingest.model import FieldNode, WidgetKind
from render import KNOWN_WIDGET_DESCRIPTIONS, render_tree, resolve_widgets
from render.widgets import SEMANTIC_THRESHOLD, component_description, split_identifier
from tests.unit.render.conftest import definition

LAYOUT = [
    {"node": "field", "key": "email", "label": "Email", "kind": "email", "source_type": "email"},
    {"node": "field", "key": "born", "label": "Dato", "kind": "custom", "source_type": "navDatepicker"},
    {"node": "field", "key": "thing", "label": "Thing", "kind": "custom", "source_type": "mysteryWidget"},
    {"node": "field", "key": "odd", "label": "Odd", "kind": "custom", "source_type": "oddWidget"},
]


class FakeMatcher:
    """Answers from a fixed table and records what it was asked."""

    def __init__(self, answers: dict[str, tuple[str, float]]) -> None:
        self.answers = answers
        self.asked: list[list[str]] = []

    def match(self, descriptions: list[str]) -> list[tuple[str, float]]:
        self.asked.append(descriptions)
        return [next(v for k, v in self.answers.items() if k in text) for text in descriptions]


def test_known_kinds_keep_their_widget_and_only_custom_types_are_looked_up() -> None:
    matcher = FakeMatcher(
        {"nav datepicker": ("date", 0.71), "mystery widget": ("phone", 0.1), "odd widget": ("carousel", 0.9)}
    )
    mapping = resolve_widgets(definition(LAYOUT), matcher=matcher)

    assert [(c.widget, c.chosen_by) for c in mapping] == [
        (WidgetKind.EMAIL, "kind"),
        (WidgetKind.DATE, "semantic"),
        (WidgetKind.TEXT, "fallback"),
        (WidgetKind.TEXT, "fallback"),
    ]
    assert mapping[1].score == pytest.approx(0.71)
    assert mapping[1].source_type == "navDatepicker"
    assert len(matcher.asked) == 1
    assert matcher.asked[0][:2] == ["nav datepicker: Dato", "nav datepicker"]
    assert len(matcher.asked[0]) == 6
    assert (mapping.semantic, mapping.fallbacks) == (1, 2)


def test_without_a_matcher_every_custom_type_falls_back_and_is_counted() -> None:
    mapping = resolve_widgets(definition(LAYOUT), matcher=None)

    assert [c.chosen_by for c in mapping] == ["kind", "fallback", "fallback", "fallback"]
    assert mapping.fallbacks == 3


def test_a_score_just_below_the_threshold_falls_back() -> None:
    layout = LAYOUT[1:2]
    below = resolve_widgets(
        definition(layout), matcher=FakeMatcher({"": ("date", SEMANTIC_THRESHOLD - 0.01)})
    )
    at = resolve_widgets(definition(layout), matcher=FakeMatcher({"": ("date", SEMANTIC_THRESHOLD)}))

    assert below[0].chosen_by == "fallback"
    assert at[0].chosen_by == "semantic"


def test_a_matcher_answering_the_wrong_number_of_matches_is_refused() -> None:
    class Short:
        def match(self, descriptions: list[str]) -> list[tuple[str, float]]:
            return []

    with pytest.raises(ValueError, match="0 matches for 6 descriptions"):
        resolve_widgets(definition(LAYOUT), matcher=Short())


def test_the_description_holds_type_name_label_help_and_telling_properties_only() -> None:
    node = FieldNode(
        key="contact",
        label="<b>Contact</b> information",
        kind=WidgetKind.CUSTOM,
        source_type="contactinfo",
        help_text="Who we call",
        extras={
            "labelEmail": "Email",
            "id": "e12x",
            "fieldSize": "input--xxl",
            "validate": {"required": True},
        },
    )

    assert component_description(node) == "contactinfo: Contact information (Who we call; label email Email)"
    assert split_identifier("navDatepicker") == "nav datepicker"
    assert split_identifier("fax_contact-info") == "fax contact info"


def test_every_known_widget_is_a_renderable_kind() -> None:
    widgets = {widget for widget, _ in KNOWN_WIDGET_DESCRIPTIONS}

    assert WidgetKind.CUSTOM not in widgets
    assert WidgetKind.HIDDEN not in widgets
    assert len(widgets) >= 25


def test_the_render_tree_shows_the_mapping_of_each_field() -> None:
    matcher = FakeMatcher({"nav datepicker": ("date", 0.71), "mystery": ("phone", 0.1), "odd": ("x", 0.9)})
    defn = definition(LAYOUT)
    tree = render_tree(defn, widgets=resolve_widgets(defn, matcher=matcher))

    born = tree["children"][1]
    assert {k: born[k] for k in ("key", "widget", "source_type", "chosen_by", "score", "input_type")} == {
        "key": "born",
        "widget": "date",
        "source_type": "navDatepicker",
        "chosen_by": "semantic",
        "score": 0.71,
        "input_type": "date",
    }
    assert tree["widgets"] == {"fields": 4, "semantic": 1, "fallback": 2}


def test_the_type_name_alone_wins_when_it_is_closer_than_the_whole_description() -> None:
    class ByText:
        def match(self, descriptions: list[str]) -> list[tuple[str, float]]:
            return [("yes_no", 0.48) if text == "yesno" else ("text", 0.26) for text in descriptions]

    layout = [
        {
            "node": "field",
            "key": "q",
            "label": "Did the other party apply?",
            "kind": "custom",
            "source_type": "yesno",
        }
    ]
    [choice] = resolve_widgets(definition(layout), matcher=ByText())

    assert (choice.widget, choice.chosen_by, choice.score) == (WidgetKind.YES_NO, "semantic", 0.48)

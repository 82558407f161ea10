"""Which known widget renders each field: its canonical kind, else the nearest known widget by meaning."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from ingest.model import FieldNode, FormDefinition, WidgetKind
from render.text import plain_text

ChosenBy = Literal["kind", "semantic", "fallback"]

# Below this cosine score the nearest known widget is not close enough: the field gets a text input.
SEMANTIC_THRESHOLD = 0.35
FALLBACK_WIDGET = WidgetKind.TEXT
_MAX_PROPERTY_CHARS = 60
_MAX_PROPERTIES = 8
# Source properties that say nothing about what a component is (ids, styling, editor state).
_NOISE_PROPERTIES = frozenset(
    {
        "id",
        "navid",
        "key",
        "type",
        "name",
        "input",
        "fieldsize",
        "labelposition",
        "validateon",
        "customclass",
        "errorlabel",
        "redrawon",
        "refreshon",
        "tabindex",
        "titlelocation",
        "schema",
        "$ref",
        "widget",
        "inputtype",
        "prefix",
        "suffix",
    }
)

# The widgets a custom component can resolve to, each described as a person filling in a form sees it.
KNOWN_WIDGET_DESCRIPTIONS: tuple[tuple[WidgetKind, str], ...] = (
    (WidgetKind.TEXT, "text field: a short single line of free text"),
    (WidgetKind.TEXTAREA, "text area: a long answer in several lines: a comment, explain why, a description"),
    (WidgetKind.TEXTAREA, "multiple text inputs: several short answers written as lines of text"),
    (WidgetKind.NUMBER, "number field: a count, amount or quantity entered as a number"),
    (WidgetKind.CURRENCY, "currency amount: money, price, cost, income or expenses in kroner or dollars"),
    (WidgetKind.DATE, "date picker: a calendar date, day month and year, such as date of birth; dato"),
    (
        WidgetKind.DATE,
        "date range: a period from a start date to an end date, valid from and to; varighet, gyldig fra til",
    ),
    (WidgetKind.MONTH, "month picker: a month and year"),
    (WidgetKind.YEAR, "year field: a four digit year"),
    (WidgetKind.TIME, "time picker: a time of day, hours and minutes"),
    (WidgetKind.DATETIME, "date and time: a calendar date with a time of day"),
    (WidgetKind.SELECT, "dropdown select: choose one value from a list of options from a source; velg"),
    (WidgetKind.RADIO, "radio button group: choose exactly one of several options or activities"),
    (WidgetKind.RADIO, "advanced radio group: choose one option, each with a description"),
    (WidgetKind.CHECKBOX, "checkbox: tick one box to confirm, agree or accept"),
    (WidgetKind.CHECKBOX_GROUP, "checkbox group: tick all options that apply, several choices"),
    (WidgetKind.CHECKBOX_GROUP, "multiple checkboxes with a comment box for each ticked choice"),
    (
        WidgetKind.YES_NO,
        "yes/no (yesno) question: did you or do you? answer yes or no, ja eller nei, a boolean",
    ),
    (WidgetKind.EMAIL, "email address field: e-post"),
    (WidgetKind.PHONE, "phone number field: telephone, mobile or fax number; telefonnummer"),
    (WidgetKind.URL, "web address field: a URL or link to a website"),
    (WidgetKind.FILE, "file upload: attach a document, documentation or attachment; vedlegg, dokumentasjon"),
    (WidgetKind.ADDRESS, "postal address: street, city, postal code, province and country; adresse"),
    (WidgetKind.ADDRESS, "contact information: mailing address, phone number and email of a person"),
    (WidgetKind.PERSON_NAME, "person name: first name, middle name and last name, full name, navn"),
    (WidgetKind.COUNTRY, "country picker: choose a country from the list of countries, land"),
    (
        WidgetKind.IDENTITY_NUMBER,
        "national identity number: social security number, fødselsnummer, personal identification",
    ),
    (
        WidgetKind.ORGANISATION_NUMBER,
        "organisation number (org nr): the registry number of a company or employer; organisasjonsnummer",
    ),
    (WidgetKind.BANK_ACCOUNT, "bank account number: kontonummer, IBAN or routing number for payments"),
    (WidgetKind.SIGNATURE, "signature: sign the form with your name and the date"),
    (WidgetKind.RATING, "rating scale: rate from one to five stars"),
    (WidgetKind.MATRIX, "matrix: a table of questions in rows with the same answer columns, a list of trips"),
    (WidgetKind.PASSWORD, "password field: a secret code that is not shown"),
)
KNOWN_WIDGETS = frozenset(widget for widget, _ in KNOWN_WIDGET_DESCRIPTIONS)


class SemanticMatcher(Protocol):
    """Finds the known widget nearest in meaning to each component description."""

    def match(self, descriptions: list[str]) -> list[tuple[str, float]]:
        """For each description, the nearest known widget's name and its cosine score."""
        ...


@dataclass(frozen=True)
class WidgetChoice:
    """The widget one field renders as, with its source type, how it was chosen and the match score."""

    widget: WidgetKind
    source_type: str | None
    chosen_by: ChosenBy
    score: float | None = None

    def as_json(self) -> dict[str, Any]:
        """The choice as a JSON object for the render tree."""
        return {
            "widget": self.widget.value,
            "source_type": self.source_type,
            "chosen_by": self.chosen_by,
            "score": None if self.score is None else round(self.score, 4),
        }


@dataclass(frozen=True)
class WidgetMapping:
    """One WidgetChoice per field of a definition, in layout order (FormDefinition.fields())."""

    choices: tuple[WidgetChoice, ...]

    def __len__(self) -> int:
        return len(self.choices)

    def __iter__(self) -> Iterator[WidgetChoice]:
        return iter(self.choices)

    def __getitem__(self, index: int) -> WidgetChoice:
        return self.choices[index]

    @property
    def fallbacks(self) -> int:
        """How many fields fell back to a generic text input."""
        return sum(1 for choice in self.choices if choice.chosen_by == "fallback")

    @property
    def semantic(self) -> int:
        """How many fields were resolved by semantic lookup."""
        return sum(1 for choice in self.choices if choice.chosen_by == "semantic")


def resolve_widgets(defn: FormDefinition, *, matcher: SemanticMatcher | None) -> WidgetMapping:
    """A widget for every field: its kind when known, else the nearest known widget, else a text input."""
    fields = defn.fields()
    custom = [index for index, node in enumerate(fields) if node.kind is WidgetKind.CUSTOM]
    matches: dict[int, tuple[str, float]] = {}
    if custom and matcher is not None:
        # Each component is asked twice, as a whole and by its type name alone; the closer answer wins.
        asked = [(index, text) for index in custom for text in lookup_descriptions(fields[index])]
        found = matcher.match([text for _, text in asked])
        if len(found) != len(asked):
            raise ValueError(f"matcher returned {len(found)} matches for {len(asked)} descriptions")
        for (index, _), match in zip(asked, found, strict=True):
            if index not in matches or match[1] > matches[index][1]:
                matches[index] = match
    return WidgetMapping(tuple(_choice(node, matches.get(index)) for index, node in enumerate(fields)))


def lookup_descriptions(node: FieldNode) -> list[str]:
    """What the semantic lookup embeds for a component: the whole description, and its type name alone."""
    whole = component_description(node)
    type_name = split_identifier(node.source_type or "")
    return [whole, type_name] if type_name and type_name != whole else [whole]


def _choice(node: FieldNode, match: tuple[str, float] | None) -> WidgetChoice:
    if node.kind is not WidgetKind.CUSTOM:
        return WidgetChoice(node.kind, node.source_type, "kind")
    if match is not None:
        name, score = match
        widget = _known_widget(name)
        if widget is not None and score >= SEMANTIC_THRESHOLD:
            return WidgetChoice(widget, node.source_type, "semantic", score)
        return WidgetChoice(FALLBACK_WIDGET, node.source_type, "fallback", score)
    return WidgetChoice(FALLBACK_WIDGET, node.source_type, "fallback")


def _known_widget(name: str) -> WidgetKind | None:
    try:
        widget = WidgetKind(name)
    except ValueError:
        return None
    return widget if widget in KNOWN_WIDGETS else None


def component_description(node: FieldNode) -> str:
    """What the semantic lookup embeds for a component: its type name, label and telling properties."""
    parts = []
    if node.source_type:
        parts.append(f"{split_identifier(node.source_type)}:")
    parts.append(plain_text(node.label) or split_identifier(node.key))
    properties = list(_telling_properties(node.extras))[:_MAX_PROPERTIES]
    if node.help_text:
        properties.insert(0, plain_text(node.help_text)[:_MAX_PROPERTY_CHARS])
    if properties:
        parts.append("(" + "; ".join(properties) + ")")
    return " ".join(parts)


def split_identifier(name: str) -> str:
    """`navDatepicker` -> `nav datepicker`, `fax_contact-info` -> `fax contact info`."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return " ".join(re.split(r"[\s_\-.#/$]+", spaced)).strip().lower()


def _telling_properties(extras: dict[str, Any]) -> Iterator[str]:
    for key, value in extras.items():
        if key.lower() in _NOISE_PROPERTIES:
            continue
        if isinstance(value, str) and 0 < len(value) <= _MAX_PROPERTY_CHARS:
            yield f"{split_identifier(key)} {plain_text(value)}"
        elif isinstance(value, dict) and key.lower() == "queryparams":
            yield from (f"{split_identifier(str(k))} {v}" for k, v in value.items() if isinstance(v, str))

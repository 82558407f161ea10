"""The words the renderer writes itself, per page language, and how a form's language is told."""

from __future__ import annotations

import re

from ingest.model import FieldNode, FormDefinition

_NORWEGIAN_WORDS = frozenset(
    {"og", "du", "ikke", "har", "jeg", "er", "på", "av", "til", "for", "med", "som", "deg", "din", "hvis"}
)
_ENGLISH_WORDS = frozenset(
    {"the", "and", "you", "your", "of", "to", "is", "are", "have", "if", "for", "with", "what", "do"}
)

# Words the renderer itself writes, per page language.
PHRASES: dict[str, dict[str, str]] = {
    "en": {
        "yes": "Yes",
        "no": "No",
        "page": "Page",
        "row": "Row",
        "choose": "Choose…",
        "required_note": "Fields marked * are required.",
        "required": "required",
        "added": "Added",
        "removed": "Removed",
        "changed": "Changed",
        "moved": "Moved",
        "renamed": "Renamed",
        "changes": "Changes",
        "removed_fields": "Removed fields",
        "group": "Group",
    },
    "nb": {
        "yes": "Ja",
        "no": "Nei",
        "page": "Side",
        "row": "Rad",
        "choose": "Velg…",
        "required_note": "Felt merket med * må fylles ut.",
        "required": "må fylles ut",
        "added": "Lagt til",
        "removed": "Fjernet",
        "changed": "Endret",
        "moved": "Flyttet",
        "renamed": "Nytt navn",
        "changes": "Endringer",
        "removed_fields": "Fjernede felt",
        "group": "Gruppe",
    },
}


def detect_language(defn: FormDefinition) -> str:
    """`nb` when the form's texts read as Norwegian, else `en`."""
    words: list[str] = []
    for _, node in defn.walk():
        text = node.label if isinstance(node, FieldNode) else getattr(node, "title", None) or ""
        words.extend(re.findall(r"[a-zæøå]+", text.lower()))
        if len(words) > 400:
            break
    norwegian = sum(word in _NORWEGIAN_WORDS for word in words)
    english = sum(word in _ENGLISH_WORDS for word in words)
    return "nb" if norwegian > english else "en"

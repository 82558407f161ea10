"""Content hash: blind to key order, whitespace and bookkeeping; sensitive to anything a user sees."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from ingest import content_hash, import_definition, parse_document
from ingest.model import FieldNode, FormDefinition, GroupNode, SectionNode

BASE: dict[str, Any] = {
    "title": "Søknad om barnetrygd",
    "path": "nav330007",
    "display": "wizard",
    "_id": "65f0c0ffee",
    "modified": "2024-05-03T08:01:26.843Z",
    "createdBy": "redacted",
    "components": [
        {
            "type": "panel",
            "key": "side1",
            "title": "Om deg",
            "components": [
                {"type": "textfield", "key": "navn", "label": "Navn", "id": "e1", "navId": "n1"},
                {
                    "type": "radiopanel",
                    "key": "harBarn",
                    "label": "Har du barn?",
                    "values": [{"label": "Ja", "value": "ja"}, {"label": "Nei", "value": "nei"}],
                    "validate": {"required": True},
                },
                {
                    "type": "number",
                    "key": "antall",
                    "label": "Antall barn",
                    "conditional": {"show": True, "when": "harBarn", "eq": "ja"},
                },
            ],
        }
    ],
}


def hash_of(doc: dict[str, Any]) -> str:
    return content_hash(import_definition(doc))


def edited(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    change(doc)
    return doc


def fields(doc: dict[str, Any]) -> list[dict[str, Any]]:
    components: list[dict[str, Any]] = doc["components"][0]["components"]
    return components


def test_hash_is_a_sha256_digest() -> None:
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", hash_of(BASE))


def test_key_order_and_whitespace_do_not_change_the_hash() -> None:
    reordered = json.loads(json.dumps(BASE, sort_keys=True))
    pretty = parse_document(json.dumps(BASE, indent=4, sort_keys=True))
    assert hash_of(reordered) == hash_of(BASE) == hash_of(pretty)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(_id="another-export", modified="2026-01-01T00:00:00Z", createdBy="someone"),
        lambda d: d.update(owner="x", project="y", _vid=9, machineName="m", revisions=""),
        lambda d: fields(d)[0].update(id="e999", navId="n999"),
        lambda d: fields(d)[0].update(placeholder="", hidden=False),
    ],
    ids=["export-stamps", "bookkeeping", "component-ids", "builder-defaults"],
)
def test_volatile_changes_keep_the_hash(change: Callable[[dict[str, Any]], None]) -> None:
    assert hash_of(edited(change)) == hash_of(BASE)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(title="Søknad om kontantstøtte"),
        lambda d: fields(d)[0].update(label="Fullt navn"),
        lambda d: fields(d)[1]["values"][1].update(label="Nei, ingen"),
        lambda d: fields(d)[1]["values"].append({"label": "Vet ikke", "value": "vetIkke"}),
        lambda d: fields(d)[1].update(validate={"required": False}),
        lambda d: fields(d)[2].update(conditional={"show": True, "when": "harBarn", "eq": "nei"}),
        lambda d: fields(d)[2].update(customConditional="show = data.harBarn === 'ja'"),
        lambda d: fields(d).reverse(),
        lambda d: fields(d)[0].update(type="textarea"),
        lambda d: d["components"][0].update(title="Om søkeren"),
        lambda d: fields(d)[0].update(fieldSize="input--s"),
    ],
    ids=[
        "form-title",
        "label",
        "option-label",
        "option-added",
        "required",
        "rule-value",
        "rule-added",
        "field-order",
        "widget",
        "page-title",
        "unknown-property",
    ],
)
def test_changes_a_user_would_notice_change_the_hash(change: Callable[[dict[str, Any]], None]) -> None:
    assert hash_of(edited(change)) != hash_of(BASE)


def test_metadata_never_reaches_the_hash() -> None:
    defn = import_definition(BASE)
    assert defn.metadata
    assert content_hash(defn.model_copy(update={"metadata": {}})) == content_hash(defn)


class FieldNodeWithTooltip(FieldNode):
    """A later model version: one more optional field, still at its default here."""

    tooltip: str | None = None


def test_a_new_optional_model_field_keeps_existing_hashes() -> None:
    plain = FormDefinition(key="k", layout=[SectionNode(children=[FieldNode(key="f", label="F")])])
    later = FormDefinition(key="k", layout=[SectionNode(children=[FieldNodeWithTooltip(key="f", label="F")])])
    assert content_hash(later) == content_hash(plain)
    with_tooltip = FieldNodeWithTooltip(key="f", label="F", tooltip="Hjelp")
    assert content_hash(
        FormDefinition(key="k", layout=[SectionNode(children=[with_tooltip])])
    ) != content_hash(plain)


def test_the_kind_of_container_is_part_of_the_content() -> None:
    child = FieldNode(key="f", label="F")
    section = FormDefinition(key="k", layout=[SectionNode(key="s", children=[child])])
    group = FormDefinition(key="k", layout=[GroupNode(key="s", children=[child])])
    assert content_hash(section) != content_hash(group)

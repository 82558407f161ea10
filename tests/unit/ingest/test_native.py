"""Native format: export then import is the identity, on every corpus file and on YAML."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ingest import (
    DefinitionError,
    SourceFormat,
    content_hash,
    export_native,
    import_definition,
    parse_document,
)
from ingest.model import FieldNode, FormDefinition, PageNode, WidgetKind
from ingest.native import import_native
from tests.corpora import imported

FOLDERS = ["nav-formio", "bcgov-fla-surveyjs", "va-jsonschema"]


@pytest.mark.parametrize("folder", FOLDERS)
def test_native_round_trip_is_the_identity_on_every_corpus_file(corpora: Path, folder: str) -> None:
    files = sorted((corpora / folder).rglob("*.json"))
    assert len(files) > 400
    failures = []
    for path in files:
        defn = imported(path)
        exported = export_native(defn)
        again = import_definition(parse_document(json.dumps(exported)))
        if again != defn or export_native(again) != exported or content_hash(again) != content_hash(defn):
            failures.append(path.name)
    assert not failures, failures[:10]


def sample() -> FormDefinition:
    return FormDefinition(
        key="k",
        title="Skjema",
        source_format=SourceFormat.FORMIO,
        layout=[PageNode(title="Side", children=[FieldNode(key="f", label="Felt", kind=WidgetKind.DATE)])],
        metadata={"_id": "x"},
    )


def test_export_is_plain_json_that_detects_as_native() -> None:
    exported = export_native(sample())
    assert json.loads(json.dumps(exported)) == exported
    assert exported["layout"][0]["children"][0]["kind"] == "date"
    defn = import_definition(exported)
    assert defn == sample()
    assert defn.source_format is SourceFormat.FORMIO


def test_yaml_export_reads_back_the_same() -> None:
    text = yaml.safe_dump(export_native(sample()), allow_unicode=True)
    assert import_definition(parse_document(text.encode())) == sample()


def test_key_argument_overrides_the_written_key() -> None:
    assert import_native(export_native(sample()), key="ny").key == "ny"


def test_unknown_node_kind_is_refused_with_its_path() -> None:
    doc = export_native(sample())
    doc["layout"][0]["node"] = "carousel"
    with pytest.raises(DefinitionError) as caught:
        import_definition(doc, format="native")
    assert caught.value.path == "$.layout[0]"

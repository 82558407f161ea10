"""Parsing, format detection and dispatch: bad input always gets a clear DefinitionError, quickly."""

from __future__ import annotations

import contextlib
import json
import random
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from ingest import DefinitionError, SourceFormat, detect_format, import_definition, parse_document
from ingest.errors import ImporterFailure
from ingest.model import FieldNode

FORMIO = {"title": "T", "path": "t", "components": [{"type": "textfield", "key": "navn", "label": "Navn"}]}
SURVEYJS = {"pages": [{"name": "p1", "elements": [{"type": "text", "name": "navn"}]}]}
JSONSCHEMA = {"$schema": "http://json-schema.org/draft-04/schema#", "type": "object", "properties": {}}
NATIVE = {"key": "k", "source_format": "native", "layout": []}


def nested_json(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def best_seconds(raw: str | bytes, repeats: int = 3) -> float:
    """The quickest of a few parse_document calls on raw, refused or not (the least disturbed by load)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        with contextlib.suppress(DefinitionError):
            parse_document(raw)
        best = min(best, time.perf_counter() - started)
    return best


def valid_like(raw: str | bytes, size: int) -> str:
    """A valid, flat document of about `size` characters in raw's syntax (JSON or YAML): what parsing
    costs when nothing is wrong, the yardstick for how quickly bad input must be refused."""
    numbers = ", ".join(str(n % 10) for n in range(size // 3))
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    return f'{{"a": [{numbers}]}}' if text.lstrip()[:1] in "{[" else f"a:\n  b: [{numbers}]\n"


def test_json_and_yaml_parse_to_the_same_document() -> None:
    yaml_text = "title: T\npath: t\ncomponents:\n  - type: textfield\n    key: navn\n    label: Navn\n"
    assert parse_document(json.dumps(FORMIO).encode()) == FORMIO
    assert parse_document(yaml_text) == FORMIO


def test_utf8_byte_order_mark_is_accepted() -> None:
    assert parse_document(b"\xef\xbb\xbf" + json.dumps(FORMIO).encode()) == FORMIO


def test_truncated_json_names_line_and_column() -> None:
    text = json.dumps(FORMIO, indent=2)
    with pytest.raises(DefinitionError, match=r"invalid JSON: .* at line \d+, column \d+"):
        parse_document(text[: len(text) // 2])


def test_non_utf8_bytes_are_refused_with_the_offset() -> None:
    with pytest.raises(DefinitionError, match="not UTF-8 text: byte 0xff at offset 9"):
        parse_document(b'{"title":\xff"}')


def test_empty_input_is_refused() -> None:
    with pytest.raises(DefinitionError, match="empty"):
        parse_document(b"  \n")


def test_nan_is_not_json() -> None:
    with pytest.raises(DefinitionError, match="NaN"):
        parse_document('{"a": NaN}')


@pytest.mark.parametrize(
    "raw", [nested_json(10_000), "[" * 10_000 + "]" * 10_000, "a:\n  b: " + "[" * 10_000 + "]" * 10_000]
)
def test_nesting_ten_thousand_deep_is_refused_fast(raw: str) -> None:
    with pytest.raises(DefinitionError, match="deeper than 200 levels"):
        parse_document(raw)
    # Refused for less than a valid document of the same size and syntax costs to parse.
    assert best_seconds(raw) < best_seconds(valid_like(raw, len(raw)))


def test_depth_limit_is_exact() -> None:
    assert parse_document(nested_json(10), max_depth=10) is not None
    with pytest.raises(DefinitionError, match="deeper than 10 levels"):
        parse_document(nested_json(11), max_depth=10)


def test_deep_document_given_directly_to_import_is_refused() -> None:
    doc: dict[str, Any] = {"type": "textfield", "key": "x"}
    for _ in range(10_000):
        doc = {"type": "container", "key": "c", "components": [doc]}
    with pytest.raises(DefinitionError, match="deeper than"):
        import_definition({"path": "deep", "components": [doc]})


@pytest.mark.parametrize("as_bytes", [True, False])
def test_fifty_megabyte_definition_is_refused_by_size_quickly(as_bytes: bool) -> None:
    body = '{"components": [' + ",".join(['{"type":"textfield","key":"k"}'] * 1_700_000) + "]}"
    raw: bytes | str = body.encode() if as_bytes else body
    assert len(raw) > 50_000_000
    with pytest.raises(DefinitionError, match=r"more than the limit of 5000000 bytes"):
        parse_document(raw)
    # Refused before parsing: for less than a valid document within the limit (a twelfth) costs to parse.
    assert best_seconds(raw) < best_seconds(valid_like(raw, len(raw) // 12))


def test_yaml_aliases_are_refused_so_a_yaml_bomb_cannot_expand() -> None:
    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n' + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
    )
    with pytest.raises(DefinitionError, match=r"YAML aliases are not allowed .*line 2"):
        parse_document(bomb)
    # Nothing expands: refused for less than a valid YAML document ten times its size costs to parse.
    assert best_seconds(bomb) < best_seconds(valid_like(bomb, 10 * len(bomb)))


def test_yaml_flow_document_that_opens_like_json_gets_the_json_error() -> None:
    with pytest.raises(DefinitionError, match="invalid JSON: Expecting property name"):
        parse_document("{title: T}")


def test_text_that_is_neither_json_nor_yaml_is_refused_with_a_position() -> None:
    with pytest.raises(DefinitionError, match=r"neither JSON nor YAML: .* at line 2"):
        parse_document("title: T\n  - : : [\n")


@pytest.mark.parametrize(
    ("doc", "fmt"),
    [
        (FORMIO, SourceFormat.FORMIO),
        ({"display": "wizard"}, SourceFormat.FORMIO),
        (SURVEYJS, SourceFormat.SURVEYJS),
        ({"elements": []}, SourceFormat.SURVEYJS),
        (JSONSCHEMA, SourceFormat.JSONSCHEMA),
        ({"definitions": {}}, SourceFormat.JSONSCHEMA),
        (NATIVE, SourceFormat.NATIVE),
        # NAV forms carry a top-level `properties` object: components must win over JSON Schema.
        ({**FORMIO, "properties": {"skjemanummer": "x"}}, SourceFormat.FORMIO),
    ],
)
def test_format_is_detected(doc: dict[str, Any], fmt: SourceFormat) -> None:
    assert detect_format(doc) is fmt


@pytest.mark.parametrize(("doc", "message"), [([FORMIO], "got an array"), ({"foo": 1}, "top-level keys are")])
def test_undetectable_documents_are_refused(doc: Any, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        detect_format(doc)


def test_detected_format_is_imported() -> None:
    defn = import_definition(FORMIO)
    assert defn.source_format is SourceFormat.FORMIO
    assert [f.key for f in defn.fields()] == ["navn"]


def test_format_can_be_given_by_name() -> None:
    assert import_definition(FORMIO, format="formio", key="mine").key == "mine"


def test_unknown_format_name_is_refused() -> None:
    with pytest.raises(DefinitionError, match="unknown format 'xform'; expected one of formio, surveyjs"):
        import_definition(FORMIO, format="xform")


def test_surveyjs_claimed_as_formio_says_what_it_looks_like() -> None:
    with pytest.raises(DefinitionError, match=r"not a formio definition: .*components.*looks like surveyjs"):
        import_definition(SURVEYJS, format=SourceFormat.FORMIO)


@pytest.mark.parametrize("fmt", list(SourceFormat))
def test_a_list_claimed_as_any_format_is_refused(fmt: SourceFormat) -> None:
    with pytest.raises(DefinitionError, match=f"a {fmt.value} definition must be an object, got an array"):
        import_definition([FORMIO], format=fmt)


def test_model_validation_errors_become_definition_errors_with_their_location() -> None:
    bad = {**NATIVE, "layout": [{"node": "field", "key": "x", "kind": "hologram"}]}
    with pytest.raises(DefinitionError) as caught:
        import_definition(bad)
    assert caught.value.path == "$.layout[0].field.kind"
    assert "hologram" in caught.value.message or "Input should be" in caught.value.message


def test_importer_errors_keep_their_path() -> None:
    doc = {"path": "p", "components": [{"type": "panel", "components": [{"type": "textfield"}]}]}
    with pytest.raises(DefinitionError) as caught:
        import_definition(doc)
    assert caught.value.path == "$.components[0].components[0]"


def test_damaged_corpus_files_give_definition_errors_never_tracebacks(corpora: Path) -> None:
    """Truncate and corrupt real files at random places: each either imports or is refused by a check the
    importers make (a DefinitionError that is no ImporterFailure: that would be an importer crash)."""
    rng = random.Random(7)
    sources = [
        corpora / "nav-formio" / "test-forms" / "conditional-datagrid.json",
        corpora / "nav-formio" / "test-forms" / "components.json",
        corpora / "va-jsonschema" / "current" / "10-10CG-schema.json",
        corpora / "bcgov-fla-surveyjs" / "current" / "addressChange__address-change.json",
    ]
    outcomes = {"imported": 0, "refused": 0}
    messages: list[str] = []
    crashes: list[str] = []
    for source in sources:
        raw = source.read_bytes()
        for _ in range(60):
            cut = rng.randrange(len(raw))
            damaged = bytearray(raw[:cut] if rng.random() < 0.5 else raw)
            for _ in range(rng.randrange(1, 4)):
                damaged[rng.randrange(len(damaged))] = rng.choice(b'{}[]":,x\xff0 ')
            try:
                defn = import_definition(parse_document(bytes(damaged)))
            except ImporterFailure as exc:
                crashes.append(f"{source.name} cut at {cut}: {exc.message}")
            except DefinitionError as exc:
                messages.append(exc.message)
                outcomes["refused"] += 1
            else:
                assert all(isinstance(f, FieldNode) for f in defn.fields())
                outcomes["imported"] += 1
    assert crashes == []
    assert outcomes["refused"] > 0
    assert all(messages)


def test_yaml_native_document_imports() -> None:
    text = yaml.safe_dump({**NATIVE, "title": "Fra YAML"})
    defn = import_definition(parse_document(text))
    assert (defn.key, defn.title, defn.source_format) == ("k", "Fra YAML", SourceFormat.NATIVE)


def test_plain_text_parses_as_a_yaml_string_and_is_refused_as_a_definition() -> None:
    with pytest.raises(DefinitionError, match="expected an object at the top level, got a string"):
        import_definition(parse_document("just some words"))

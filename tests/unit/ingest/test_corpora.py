"""What must hold over every file of the three real corpora, checked by walks of the raw JSON."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest import content_hash, export_native, import_definition, parse_document
from ingest.model import ContentNode, FieldNode, FormDefinition, GroupNode, RepeatNode, SourceFormat
from ingest.native import import_native
from ingest.prints import layout_prints
from tests.corpora import corpus_root, imported, raw_document

FORMAT_OF_FOLDER = {
    "nav-formio": SourceFormat.FORMIO,
    "bcgov-fla-surveyjs": SourceFormat.SURVEYJS,
    "va-jsonschema": SourceFormat.JSONSCHEMA,
}
# From the corpora README: the number of files each folder holds.
FILE_COUNT = {"nav-formio": 441, "bcgov-fla-surveyjs": 979, "va-jsonschema": 755}
FOLDERS = list(FORMAT_OF_FOLDER)
# Form.io types that show text and never hold data, whatever their `input` flag says.
FORMIO_DISPLAY_TYPES = {"htmlelement", "content", "alertstripe", "image", "accordion"}


def corpus_files(folder: str) -> list[Path]:
    return sorted((corpus_root() / folder).rglob("*.json"))


def failures_message(failures: list[str]) -> str:
    return f"{len(failures)} files failed, first ones:\n" + "\n".join(failures[:10])


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_corpus_file_imports_as_its_format(folder: str) -> None:
    files = corpus_files(folder)
    assert len(files) == FILE_COUNT[folder]
    failures = []
    for path in files:
        try:
            defn = imported(path)
        except Exception as exc:
            failures.append(f"{path.relative_to(corpus_root())}: {type(exc).__name__}: {exc}")
            continue
        if defn.source_format != FORMAT_OF_FOLDER[folder]:
            failures.append(f"{path.name}: detected as {defn.source_format}")
    assert not failures, failures_message(failures)


@pytest.mark.parametrize("folder", FOLDERS)
def test_no_data_component_is_lost(folder: str) -> None:
    failures = []
    for path in corpus_files(folder):
        missing = MISSING_CHECKS[folder](raw_document(path), imported(path))
        if missing:
            failures.append(f"{path.relative_to(corpus_root())}: missing {missing[:8]}")
    assert not failures, failures_message(failures)


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_source_type_is_kept(folder: str) -> None:
    failures = []
    for path in corpus_files(folder):
        source_types = {node.source_type for _, node in imported(path).walk()}
        lost = RAW_TYPES[folder](raw_document(path)) - source_types
        if lost:
            failures.append(f"{path.relative_to(corpus_root())}: types {sorted(lost)} not kept")
    assert not failures, failures_message(failures)


@pytest.mark.parametrize("folder", FOLDERS)
def test_hash_survives_a_round_trip_with_shuffled_keys(folder: str) -> None:
    failures = []
    for path in corpus_files(folder):
        rng = random.Random(path.name)
        shuffled = json.dumps(shuffle_keys(raw_document(path), rng), indent=rng.choice([None, 1, 4]))
        if content_hash(import_definition(parse_document(shuffled))) != content_hash(imported(path)):
            failures.append(f"{path.relative_to(corpus_root())}: hash changed after shuffling key order")
    assert not failures, failures_message(failures)


@pytest.mark.parametrize("folder", FOLDERS)
def test_layout_prints_survive_the_stored_native_definition(folder: str) -> None:
    # Prints are computed at ingest from the imported definition, and for versions stored without them
    # from the stored native export: both must agree, or suggested-parents would rank the two apart.
    failures = []
    for path in corpus_files(folder)[::5]:
        definition = imported(path).model_copy(update={"key": "stored"})
        if layout_prints(definition) != layout_prints(import_native(export_native(definition))):
            failures.append(f"{path.relative_to(corpus_root())}: prints differ after export_native")
    assert not failures, failures_message(failures)


def test_distinct_corpus_forms_hash_differently() -> None:
    files = corpus_files("nav-formio")
    hashes = {content_hash(imported(path)) for path in files}
    distinct_contents = {json.dumps(raw_document(path)["components"], sort_keys=True) for path in files}
    assert len(hashes) >= len(distinct_contents)


def shuffle_keys(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {name: shuffle_keys(child, rng) for name, child in items}
    if isinstance(value, list):
        return [shuffle_keys(child, rng) for child in value]
    return value


# --- Form.io: components with `input: true` hold data ---------------------------------------------


def formio_components(doc: Any) -> Iterator[dict[str, Any]]:
    """Every component, in any components / columns / table rows list, without using the importer."""
    stack: list[Any] = [doc.get("components", [])]
    while stack:
        value = stack.pop()
        if isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, dict):
            if "type" in value:
                yield value
            stack.extend(value.get(name, []) for name in ("components", "columns", "rows"))


def formio_missing(doc: Any, defn: FormDefinition) -> list[tuple[str, str]]:
    expected = Counter((c["key"], c["type"]) for c in formio_components(doc) if c.get("input") is True)
    kept = Counter(
        (node.key, node.source_type)
        for _, node in defn.walk()
        if isinstance(node, FieldNode | RepeatNode | GroupNode)
        or (isinstance(node, ContentNode) and node.source_type in FORMIO_DISPLAY_TYPES)
    )
    return sorted((expected - kept).elements())


def formio_types(doc: Any) -> set[str]:
    return {c["type"] for c in formio_components(doc)}


# --- SurveyJS: every named element other than a panel is a question --------------------------------

SURVEYJS_CHILD_LISTS = ("pages", "elements", "questions", "templateElements")


def surveyjs_elements(doc: Any) -> Iterator[dict[str, Any]]:
    stack: list[Any] = [doc]
    while stack:
        value = stack.pop()
        if isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, dict):
            if isinstance(value.get("type"), str) and value is not doc:
                yield value
            stack.extend(value.get(name, []) for name in SURVEYJS_CHILD_LISTS)


def surveyjs_missing(doc: Any, defn: FormDefinition) -> list[tuple[str | None, str | None]]:
    expected: Counter[tuple[str | None, str | None]] = Counter(
        (str(element.get("valueName") or element["name"]), element["type"])
        for element in surveyjs_elements(doc)
        if element["type"].lower() != "panel" and element.get("name") not in (None, "")
    )
    kept = Counter((node.key, node.source_type) for _, node in defn.walk())
    return sorted((expected - kept).elements())


def surveyjs_types(doc: Any) -> set[str]:
    return {element["type"] for element in surveyjs_elements(doc)}


# --- JSON Schema: leaf properties, through $ref, allOf/anyOf/oneOf and array items -----------------


def resolve(schema: Any, root: Any, refs: tuple[str, ...]) -> tuple[Any, tuple[str, ...]]:
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
        ref = schema["$ref"]
        if ref in refs or not ref.startswith("#"):
            return {}, refs
        refs = (*refs, ref)
        target = root
        for part in ref.lstrip("#/").split("/") if ref != "#" else []:
            target = (
                target.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(target, dict) else {}
            )
        schema = target
    return schema, refs


def schema_leaves(
    schema: Any, name: str | None, root: Any, refs: tuple[str, ...] = ()
) -> list[tuple[str, Any]]:
    """(property name, its schema) for every leaf property, in the order they are written."""
    schema, refs = resolve(schema, root, refs)
    if not isinstance(schema, dict):
        return [(name, schema)] if name is not None else []
    found: list[tuple[str, Any]] = []
    properties = schema.get("properties")
    if isinstance(properties, dict):
        for child_name, child in properties.items():
            found += schema_leaves(child, child_name, root, refs)
    for combinator in ("allOf", "anyOf", "oneOf"):
        for branch in schema.get(combinator, []) if isinstance(schema.get(combinator), list) else []:
            found += schema_leaves(branch, None, root, refs)
    if isinstance(schema.get("items"), dict):
        found += schema_leaves(schema["items"], None, root, refs)
    if not found and name is not None:
        return [(name, schema)]
    return found


def key_tails(key: str) -> set[str]:
    """The key and every tail of it after a path separator: a leaf `city` is traced by `address.city`."""
    return {key} | {key[index + 1 :] for index, char in enumerate(key) if char in "./]"}


def jsonschema_missing(doc: Any, defn: FormDefinition) -> list[str]:
    expected = {name for name, _ in schema_leaves(doc, None, doc)}
    kept = set().union(
        *(
            key_tails(node.key)
            for _, node in defn.walk()
            if isinstance(node, FieldNode | RepeatNode | GroupNode) and node.key
        )
    )
    return sorted(expected - kept)


def jsonschema_types(doc: Any) -> set[str]:
    return {
        schema["type"]
        for _, schema in schema_leaves(doc, None, doc)
        if isinstance(schema, dict) and isinstance(schema.get("type"), str)
    }


MISSING_CHECKS: dict[str, Callable[[Any, FormDefinition], list[Any]]] = {
    "nav-formio": formio_missing,
    "bcgov-fla-surveyjs": surveyjs_missing,
    "va-jsonschema": jsonschema_missing,
}
RAW_TYPES = {
    "nav-formio": formio_types,
    "bcgov-fla-surveyjs": surveyjs_types,
    "va-jsonschema": jsonschema_types,
}


def test_raw_walks_see_the_corpus() -> None:
    """The independent walks themselves find what the corpora README describes."""
    nav = [raw_document(p) for p in corpus_files("nav-formio")]
    nav_types = set().union(*(formio_types(doc) for doc in nav))
    assert {"navDatepicker", "fnrfield", "landvelger", "radiopanel", "alertstripe", "attachment"} <= nav_types
    assert sum(len(formio_missing(doc, FormDefinition(key="empty"))) for doc in nav) > 3000
    bc = [raw_document(p) for p in corpus_files("bcgov-fla-surveyjs")[:50]]
    assert sum(len(surveyjs_missing(doc, FormDefinition(key="empty"))) for doc in bc) > 300
    va = raw_document(corpus_root() / "va-jsonschema" / "current" / "10-10EZ-schema.json")
    va_leaves = {name for name, _ in schema_leaves(va, None, va)}
    assert {"first", "last", "email", "veteranDateOfBirth"} <= va_leaves

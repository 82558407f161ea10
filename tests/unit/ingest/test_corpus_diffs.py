"""Diffs along every revision edge of the three real corpora, checked against walks of the raw JSON.

The rule for counting fields in the raw files (independent of the importers): a field is a leaf that
holds an answer of its own, keyed by the name its answer is stored under.
- Form.io: a component with `input: true` (or no `input` flag: the builder's default) and no child
  components (a datagrid or container holds other fields, it is not one), keyed by `key`; display
  components (htmlelement, content, alertstripe, image, accordion) hold no answer, whatever their
  `input` flag says.
- SurveyJS: a question keyed by `valueName`, else `name`; panels, dynamic panels, dynamic matrices
  and multiple-text questions hold fields (their template questions, matrix columns, text items)
  rather than being one; display elements (html, image, infotext, helptext, infotexttitle, an
  expression without an expression) hold no answer.
- JSON Schema: a property whose (resolved) schema is not an object with properties and not an array
  of such objects, keyed by its property name.

A raw count cannot tell a renamed key from a removed and an added one, so a rename counts once on
each side: raw added == diff added + diff renamed, raw removed == diff removed + diff renamed, and the
keys themselves must agree too.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest

from ingest.diff import ChangeKind, DefinitionDiff, diff_definitions
from ingest.hashing import content_hash
from ingest.model import FormDefinition
from tests.corpora import CORPORA, manifest, raw_document
from tests.corpora import imported as corpus_import

FOLDERS = ("nav-formio", "bcgov-fla-surveyjs", "va-jsonschema")
# From the corpora README: revision edges (rows with prev_file) per manifest.
EDGE_COUNT = {"nav-formio": 322, "bcgov-fla-surveyjs": 598, "va-jsonschema": 595}

SHAPE_KEYWORDS = {"type", "properties", "items", "enum", "const", "format"}
FORMIO_DISPLAY_TYPES = {"htmlelement", "content", "alertstripe", "image", "accordion"}
SURVEYJS_CONTAINER_TYPES = {"panel", "paneldynamic", "matrixdynamic", "multipletext"}
SURVEYJS_DISPLAY_TYPES = {"html", "image", "infotext", "helptext", "infotexttitle"}
# Export bookkeeping nobody filling in the form sees.
FORMIO_VOLATILE = {
    "_id", "id", "_vid", "owner", "project", "created", "modified", "machineName", "access",
    "submissionAccess", "revisions", "submissionRevisions", "createdBy", "changedBy", "publishedBy",
    "changedAt", "publishedAt", "keyModified", "navId",
}  # fmt: skip


def manifest_edges(folder: str) -> list[dict[str, Any]]:
    return [row for row in manifest(folder) if row.get("prev_file")]


def raw(folder: str, file: str) -> Any:
    return raw_document(CORPORA / folder / file)


def imported(folder: str, file: str, key: str | None) -> FormDefinition:
    return corpus_import(CORPORA / folder / file, key)


# --- independent raw walks -------------------------------------------------------------------------


def formio_field_keys(doc: Any) -> Iterator[str]:
    """Form.io: input leaves that are not display components."""
    for component in formio_components(doc.get("components", [])):
        children = any(isinstance(component.get(name), list) for name in ("components", "columns", "rows"))
        if (
            component.get("input") is not False
            and not children
            and component.get("type") not in FORMIO_DISPLAY_TYPES
        ):
            yield str(component.get("key"))


def formio_components(components: Any) -> Iterator[dict[str, Any]]:
    stack = list(reversed(components)) if isinstance(components, list) else []
    while stack:
        component = stack.pop()
        if not isinstance(component, dict):
            continue
        yield component
        nested: list[Any] = []
        if isinstance(component.get("components"), list):
            nested.extend(component["components"])
        columns, rows = component.get("columns"), component.get("rows")
        for column in columns if isinstance(columns, list) else []:
            if isinstance(column, dict):
                nested.extend(column.get("components") or [])
        for row in rows if isinstance(rows, list) else []:
            for cell in row if isinstance(row, list) else []:
                if isinstance(cell, dict):
                    nested.extend(cell.get("components") or [])
        stack.extend(reversed(nested))


def surveyjs_field_keys(doc: Any) -> Iterator[str]:
    """SurveyJS: questions, matrix columns and text items; not containers, not display elements."""
    stack: list[tuple[Any, str]] = [(doc, "$")]
    while stack:
        node, path = stack.pop()
        if not isinstance(node, dict):
            continue
        element_type = str(node.get("type", "")).lower()
        if element_type in ("matrixdynamic", "multipletext"):
            list_name = "columns" if element_type == "matrixdynamic" else "items"
            for index, member in enumerate(node.get(list_name) or []):
                if isinstance(member, dict):
                    yield data_key(member, f"{path}.{list_name}[{index}]")
        elif "type" in node and element_type not in SURVEYJS_CONTAINER_TYPES:
            display = element_type in SURVEYJS_DISPLAY_TYPES
            if not display and not (element_type == "expression" and "expression" not in node):
                yield data_key(node, path)
        for name in reversed(("pages", "elements", "questions", "templateElements")):
            children = node.get(name)
            if isinstance(children, list):
                stack.extend(
                    (child, f"{path}.{name}[{i}]") for i, child in reversed(list(enumerate(children)))
                )


def data_key(element: dict[str, Any], path: str) -> str:
    """Where a SurveyJS answer is stored; a question without a name is known by its place."""
    for name in ("valueName", "name"):
        value = element.get(name)
        if isinstance(value, str | int | float) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    return path


class JsonSchemaWalk:
    """JSON Schema: leaf properties of the object tree, `$ref`s followed, branches merged per object."""

    COMBINATORS = ("allOf", "oneOf", "anyOf")

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc

    def field_keys(self) -> list[str]:
        keys: list[str] = []
        self.object_fields([self.doc], frozenset(), keys)
        return keys

    def deref(self, schema: Any, active: frozenset[str]) -> tuple[dict[str, Any], frozenset[str], bool]:
        """The schema behind a `$ref` chain, the refs now active, and whether the chain loops back."""
        siblings: dict[str, Any] = {}
        while (
            isinstance(schema, dict)
            and isinstance(schema.get("$ref"), str)
            and schema["$ref"].startswith("#")
        ):
            ref = schema["$ref"]
            siblings = {**{k: v for k, v in schema.items() if k != "$ref"}, **siblings}
            if ref in active:
                return siblings, active, True
            target: Any = self.doc
            for token in ref[2:].split("/") if ref != "#" else []:
                target = (
                    target.get(token.replace("~1", "/").replace("~0", "~"))
                    if isinstance(target, dict)
                    else None
                )
            if target is None:  # a dangling reference: the property stays, as it is
                return {**siblings, "$ref": ref}, active, False
            active, schema = active | {ref}, target
        schema = schema if isinstance(schema, dict) else {}
        return {**schema, **siblings}, active, False

    def object_fields(self, variants: list[Any], active: frozenset[str], keys: list[str]) -> None:
        properties: dict[str, list[Any]] = {}
        for variant in variants:
            self.collect(variant, active, properties)
        for name, occurrences in properties.items():
            self.property_fields(name, occurrences, active, keys)

    def collect(self, schema: Any, active: frozenset[str], properties: dict[str, list[Any]]) -> None:
        """Properties of one object schema and of its branches, depth first, in document order."""
        schema, branch_active, cyclic = self.deref(schema, active)
        if cyclic:
            return
        for name, sub in (schema.get("properties") or {}).items():
            properties.setdefault(name, []).append(sub)
        members = [member for keyword in self.COMBINATORS for member in schema.get(keyword) or []]
        members += [schema[name] for name in ("then", "else") if name in schema]
        for keyword in ("dependencies", "dependentSchemas"):
            members += [value for value in (schema.get(keyword) or {}).values() if isinstance(value, dict)]
        for member in members:
            self.collect(member, branch_active, properties)

    def property_fields(
        self, name: str, occurrences: list[Any], active: frozenset[str], keys: list[str]
    ) -> None:
        """A property is one field unless one of its alternatives is an object (or array of objects)."""
        resolved = [self.deref(o, active) for o in occurrences if isinstance(o, dict | bool)]
        primary = next((r for r in resolved if set(r[0]) & SHAPE_KEYWORDS), resolved[0] if resolved else None)
        if primary is None or primary[2]:  # not a schema, or a reference back into itself
            keys.append(name)
            return
        usable = [r for r in resolved if not r[2]]
        objects = [r for r in usable if self.shape(r[0], r[1]) == "object"]
        own_active = frozenset().union(*(r[1] for r in usable))
        schema, schema_active = primary[0], primary[1]
        if objects:
            self.object_fields([r[0] for r in usable], own_active, keys)
        elif self.shape(schema, schema_active) == "array" and isinstance(schema.get("items"), dict):
            items, items_active, items_cyclic = self.deref(schema["items"], schema_active)
            if not items_cyclic and self.shape(items, items_active) == "object":
                variants = [r[0]["items"] for r in usable if isinstance(r[0].get("items"), dict)]
                self.object_fields(variants, schema_active, keys)
            else:
                keys.append(name)
        else:
            keys.append(name)

    def shape(self, schema: dict[str, Any], active: frozenset[str]) -> str:
        declared = schema.get("type")
        json_type = (
            next((t for t in declared if t != "null"), None) if isinstance(declared, list) else declared
        )
        if json_type == "object" or "properties" in schema:
            return "object"
        if json_type == "array" or "items" in schema:
            return "array"
        if json_type is None:
            for keyword in self.COMBINATORS:
                for member in schema.get(keyword) or []:
                    branch, branch_active, cyclic = self.deref(member, active)
                    if not cyclic and self.shape(branch, branch_active) == "object":
                        return "object"
        return "scalar"


RAW_FIELD_KEYS = {
    "nav-formio": lambda doc: list(formio_field_keys(doc)),
    "bcgov-fla-surveyjs": lambda doc: list(surveyjs_field_keys(doc)),
    "va-jsonschema": lambda doc: JsonSchemaWalk(doc).field_keys(),
}

# Properties a person filling in the form sees or is bound by, per format; the rest is editor state.
USER_VISIBLE = {
    "nav-formio": {
        "title", "display", "components", "columns", "rows", "type", "key", "label", "legend", "description",
        "placeholder", "values", "value", "data", "validate", "required", "pattern", "minLength", "maxLength",
        "min", "max", "conditional", "show", "when", "eq", "customConditional", "html", "content",
        "defaultValue", "hidden", "disabled",
    },
    "bcgov-fla-surveyjs": {
        "title", "pages", "elements", "questions", "templateElements", "type", "name", "valueName",
        "description", "choices", "value", "text", "isRequired", "visibleIf", "enableIf", "requiredIf",
        "html", "body", "columns", "items", "rows", "triggers", "expression", "inputType", "defaultValue",
        "validators", "labelTrue", "labelFalse", "placeHolder", "placeholder",
    },
}  # fmt: skip


def user_visible(folder: str, doc: Any) -> Any:
    """The raw document cut down to what users notice; empty and false values mean "not set"."""
    keep = USER_VISIBLE.get(folder)

    def project(value: Any) -> Any:
        if isinstance(value, dict):
            kept = {name: project(v) for name, v in value.items() if keep is None or name in keep}
            return {name: v for name, v in kept.items() if v not in ("", None, False, [], {})}
        if isinstance(value, list):
            return [project(item) for item in value]
        return value

    return project(doc)


@cache
def edge_diffs(folder: str) -> list[tuple[dict[str, Any], DefinitionDiff]]:
    edges = manifest_edges(folder)
    assert len(edges) == EDGE_COUNT[folder]
    return [
        (
            row,
            diff_definitions(
                imported(folder, row["prev_file"], row["form_key"]),
                imported(folder, row["file"], row["form_key"]),
            ),
        )
        for row in edges
    ]


def failures_message(failures: list[str]) -> str:
    return f"{len(failures)} edges failed, first ones:\n" + "\n".join(failures[:10])


@pytest.mark.parametrize("folder", FOLDERS)
def test_diff_is_non_empty_whenever_a_user_would_notice(folder: str) -> None:
    failures = []
    noticed = 0
    for row, diff in edge_diffs(folder):
        old_raw, new_raw = raw(folder, row["prev_file"]), raw(folder, row["file"])
        if user_visible(folder, old_raw) != user_visible(folder, new_raw):
            noticed += 1
            if diff.is_empty:
                failures.append(f"{row['file']}: user-visible raw change, empty diff")
        old_hash = content_hash(imported(folder, row["prev_file"], row["form_key"]))
        new_hash = content_hash(imported(folder, row["file"], row["form_key"]))
        if (old_hash == new_hash) != diff.is_empty:
            failures.append(
                f"{row['file']}: hashes {'equal' if old_hash == new_hash else 'differ'}, {diff.summary}"
            )
    assert not failures, failures_message(failures)
    # At least a third of the revisions in each history are edits someone sees (NAV: 125 of 322);
    # a projection that saw none would make this test vacuous.
    assert noticed >= len(edge_diffs(folder)) // 3


@pytest.mark.parametrize("folder", FOLDERS)
def test_added_and_removed_field_counts_agree_with_raw_key_counts(folder: str) -> None:
    failures = []
    for row, diff in edge_diffs(folder):
        old_keys = Counter(RAW_FIELD_KEYS[folder](raw(folder, row["prev_file"])))
        new_keys = Counter(RAW_FIELD_KEYS[folder](raw(folder, row["file"])))
        raw_added, raw_removed = new_keys - old_keys, old_keys - new_keys
        renamed = [c for c in diff.changes if c.kind is ChangeKind.FIELD_RENAMED]
        diff_added = Counter(c.key for c in diff.changes if c.kind is ChangeKind.FIELD_ADDED)
        diff_removed = Counter(c.key for c in diff.changes if c.kind is ChangeKind.FIELD_REMOVED)
        diff_added.update(c.key for c in renamed)
        diff_removed.update(c.old_key for c in renamed)
        counts_agree = (
            diff.added + diff.renamed == raw_added.total()
            and diff.removed + diff.renamed == raw_removed.total()
        )
        if not counts_agree or diff_added != raw_added or diff_removed != raw_removed:
            failures.append(
                f"{row['file']}: raw +{dict(raw_added)} -{dict(raw_removed)}; "
                f"diff +{dict(diff_added)} -{dict(diff_removed)} ({diff.summary})"
            )
    assert not failures, failures_message(failures)


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_corpus_file_diffed_with_itself_is_empty(folder: str) -> None:
    files = sorted(
        path.relative_to(CORPORA / folder).as_posix() for path in (CORPORA / folder).rglob("*.json")
    )
    assert len(files) > 400
    form_keys = {row["file"]: row["form_key"] for row in manifest_edges(folder)}
    form_keys.update({row["prev_file"]: row["form_key"] for row in manifest_edges(folder)})
    failures = []
    for file in files:
        first = imported(folder, file, form_keys.get(file))
        copy = FormDefinition.model_validate_json(first.model_dump_json())
        for diff in (diff_definitions(first, first), diff_definitions(first, copy)):
            if not diff.is_empty or diff.summary != "no changes":
                failures.append(f"{file}: {diff.summary}")
    assert not failures, failures_message(failures)


@pytest.mark.parametrize("folder", FOLDERS)
def test_edge_diffs_are_deterministic_json(folder: str) -> None:
    for row, diff in edge_diffs(folder)[:60]:
        again = diff_definitions(
            imported(folder, row["prev_file"], row["form_key"]).model_copy(deep=True),
            imported(folder, row["file"], row["form_key"]).model_copy(deep=True),
        )
        dumped = diff.model_dump(mode="json")
        assert json.loads(json.dumps(dumped)) == dumped
        assert again.model_dump(mode="json") == dumped

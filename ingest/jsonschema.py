"""Import a JSON Schema (draft-04 and later) into the model, deriving the layout from object nesting.

Objects become groups (they hold data: a child's data path runs through them), arrays of objects
become repeats, everything else a field keyed by its property name. JSON objects are unordered, so
properties are laid out in name order: a shuffled key order is the same form and hashes the same.
`$ref`s are resolved inside the document; a reference back to a definition that is already being
expanded (a recursive tree) stops there: that property becomes a CUSTOM field carrying the `$ref`
in its extras.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

from ingest.errors import DefinitionError
from ingest.model import (
    Condition,
    ConditionEffect,
    FieldNode,
    FormDefinition,
    GroupNode,
    LayoutNode,
    Option,
    RepeatNode,
    SourceFormat,
    Validation,
    WidgetKind,
)

LANGUAGE = "jsonschema"
_MISSING = object()
MAX_DEPTH = 100
MAX_NODES = 10_000
MAX_JSON_DEPTH = 256
JSON_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})
# At least one of these makes a document a JSON Schema rather than some other JSON.
SCHEMA_KEYWORDS = frozenset(
    {"$schema", "type", "properties", "$ref", "allOf", "anyOf", "oneOf", "items", "enum", "const"}
    | {"definitions", "$defs", "if", "not", "required", "additionalProperties", "dependencies"}
)
# Top-level keys of the other formats; a document with one of them and no `$schema` is not a schema.
OTHER_FORMAT_MARKERS = frozenset({"components", "display", "pages", "elements", "questions"})
RADIO_MAX_OPTIONS = 4
TEXTAREA_MIN_LENGTH = 256

KIND_BY_FORMAT: dict[str, WidgetKind] = {
    "date": WidgetKind.DATE,
    "date-time": WidgetKind.DATETIME,
    "time": WidgetKind.TIME,
    "email": WidgetKind.EMAIL,
    "idn-email": WidgetKind.EMAIL,
    "uri": WidgetKind.URL,
    "url": WidgetKind.URL,
    "iri": WidgetKind.URL,
    "data-url": WidgetKind.FILE,
    "phone": WidgetKind.PHONE,
    "tel": WidgetKind.PHONE,
    "password": WidgetKind.PASSWORD,
}
# Checked in order against the property name and the names of the definitions it refers to.
# Names are camelCase in practice, so case marks word starts ("ssn" must not match "homelessness").
_IDENTITY = r"^ssn|Ssn|SSN|[sS]ocialSecurity|[fF]ile-?Number|[sS]ervice-?Number|centralMailVaFile"
_MONEY = r"[cC]urrency|[aA]mount|[iI]ncome|[sS]alary|[wW]age|[pP]ayment|[cC]ost|[pP]rice|[eE]xpense|[vV]alue$"
KIND_BY_NAME: tuple[tuple[re.Pattern[str], WidgetKind], ...] = (
    (re.compile(_IDENTITY), WidgetKind.IDENTITY_NUMBER),
    (re.compile(r"phone|fax", re.I), WidgetKind.PHONE),
    (re.compile(r"e-?mail", re.I), WidgetKind.EMAIL),
    (re.compile(r"^(account|bankAccount)Number$", re.I), WidgetKind.BANK_ACCOUNT),
    (re.compile(r"country", re.I), WidgetKind.COUNTRY),
    (re.compile(r"^date$|Date$|^date[A-Z_]|^dob$|DOB$"), WidgetKind.DATE),
    (re.compile(r"^year$", re.I), WidgetKind.YEAR),
    (re.compile(r"^currency", re.I), WidgetKind.CURRENCY),
    (re.compile(_MONEY), WidgetKind.CURRENCY),
)
# Name-derived kinds are for strings unless listed here.
NAME_KIND_TYPES: dict[str, frozenset[str]] = {
    _MONEY: frozenset({"number", "integer"}),
    r"^year$": frozenset({"integer", "number", "string"}),
}
COMBINATORS = ("oneOf", "anyOf")
VALIDATION_KEYWORDS = {
    "minLength": "min_length",
    "maxLength": "max_length",
    "minimum": "minimum",
    "maximum": "maximum",
    "pattern": "pattern",
    "minItems": "min_items",
    "maxItems": "max_items",
}
FIELD_KEYWORDS = frozenset(
    {"title", "description", "default", "enum", "enumNames", "format", *VALIDATION_KEYWORDS}
)


def import_jsonschema(doc: dict[str, Any], *, key: str | None = None) -> FormDefinition:
    """Convert a parsed JSON Schema into a FormDefinition; raises DefinitionError on malformed input."""
    if not isinstance(doc, dict):
        raise DefinitionError("a JSON Schema must be a JSON object")
    if not SCHEMA_KEYWORDS & doc.keys():
        raise DefinitionError("not a JSON Schema: no `type`, `properties`, `$ref` or other schema keyword")
    root_types = doc.get("type", [])
    listed = root_types if isinstance(root_types, list) else [root_types]
    if not all(isinstance(item, str) and item in JSON_TYPES for item in listed):
        raise DefinitionError(f"not a JSON Schema: `type` {root_types!r} is not a JSON type", path="$.type")
    if "$schema" not in doc and (markers := sorted(OTHER_FORMAT_MARKERS & doc.keys())):
        raise DefinitionError(
            f"not a JSON Schema: it has `{markers[0]}`, as Form.io and SurveyJS documents do"
        )
    properties = doc.get("properties")
    if (
        isinstance(properties, dict)
        and properties
        and not any(isinstance(value, dict | bool) for value in properties.values())
    ):
        raise DefinitionError("not a JSON Schema: `properties` holds no schemas", path="$.properties")
    _check_json_depth(doc)
    form_key = key or _key_from_id(doc) or _slug(_string(doc.get("title")) or "") or "schema"
    importer = _SchemaImporter(doc)
    root = importer.resolve(doc, "$", frozenset())
    layout: list[LayoutNode]
    logic: list[Condition] = []
    if root.cyclic_ref is None and _shape(importer, root) == "object":
        layout, logic = importer.object_children([(root.schema, root.path)], root.active, depth=1)
    else:
        layout = [importer.property_node(form_key, [(doc, "$")], required=False, active=frozenset(), depth=1)]
    consumed = {"title", "description", "properties", "required", *COMBINATORS, "allOf", "if", "then", "else"}
    consumed |= {"dependencies", "dependentRequired", "dependentSchemas"}
    return FormDefinition(
        key=form_key,
        title=_string(root.schema.get("title")) or _humanise(form_key),
        description=_string(root.schema.get("description")),
        source_format=SourceFormat.JSONSCHEMA,
        layout=layout,
        logic=logic,
        extras={prop: value for prop, value in doc.items() if prop not in consumed},
    )


@dataclass
class _Resolved:
    """A schema with its `$ref` chain followed; `cyclic_ref` is set when expansion must stop there."""

    schema: dict[str, Any]
    path: str
    active: frozenset[str]
    refs: list[str] = field(default_factory=list)
    cyclic_ref: str | None = None


@dataclass
class _ObjectView:
    """Every property an object may have (own, allOf, and conditional branches), with its rules."""

    properties: dict[str, list[tuple[Any, str]]] = field(default_factory=dict)
    required: set[str] = field(default_factory=set)
    rules: list[Condition] = field(default_factory=list)


class _SchemaImporter:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.nodes = 0
        self.collect_level = 0
        self._anchors: dict[str, Any] | None = None
        # Options of each enum list (with its enumNames), by identity: shared definitions such as
        # country or state lists are referenced by many fields, each with hundreds of values.
        self._enum_options: dict[tuple[int, int], tuple[list[Any], Any, list[Option]]] = {}

    def options(self, schema: dict[str, Any]) -> list[Option]:
        """The schema's options as a new list (the caller may extend it)."""
        enum = schema.get("enum")
        if not isinstance(enum, list):
            return _options(schema)
        names = schema.get("enumNames")
        cached = self._enum_options.get((id(enum), id(names)))
        if cached is None or cached[0] is not enum or cached[1] is not names:
            cached = (enum, names, _options(schema))
            self._enum_options[(id(enum), id(names))] = cached
        return list(cached[2])

    def resolve(self, schema: Any, path: str, active: frozenset[str]) -> _Resolved:
        """Follow `$ref`s; sibling keywords next to a `$ref` override the target's."""
        if isinstance(schema, bool):
            return _Resolved({} if schema else {"not": {}}, path, active)
        if not isinstance(schema, dict):
            raise DefinitionError(f"a schema must be an object, got {type(schema).__name__}", path=path)
        siblings: dict[str, Any] = {}
        refs: list[str] = []
        where = path
        current: Any = schema
        while isinstance(current, dict) and "$ref" in current:
            ref = current["$ref"]
            if not isinstance(ref, str):
                raise DefinitionError("`$ref` must be a string", path=where)
            siblings = {**{k: v for k, v in current.items() if k != "$ref"}, **siblings}
            if ref in refs:
                raise DefinitionError(
                    f"cyclic $ref: {' -> '.join([*refs, ref])} never reaches a schema", path=where
                )
            if ref in active:
                return _Resolved(siblings, path, active, [*refs, ref], cyclic_ref=ref)
            if not ref.startswith("#"):
                # An external document: not read (importers do no I/O); kept verbatim.
                return _Resolved({**siblings, "$ref": ref}, path, active, refs)
            target = self.pointer(ref)
            if target is _MISSING:
                # A dangling reference (real schemas have them): kept verbatim, the property stays.
                return _Resolved({**siblings, "$ref": ref}, path, active, refs)
            refs.append(ref)
            current = target
            path = ref
        if isinstance(current, bool):
            current = {} if current else {"not": {}}
        if not isinstance(current, dict):
            raise DefinitionError(f"a schema must be an object, got {type(current).__name__}", path=path)
        return _Resolved({**current, **siblings}, path, active | set(refs), refs)

    def pointer(self, ref: str) -> Any:
        """The target of `#/a/b` (JSON pointer, ~0/~1 and %-escapes) or `#name` (an anchor), or _MISSING."""
        fragment = unquote(ref[1:])
        if fragment and not fragment.startswith("/"):
            return self.anchors().get(fragment, _MISSING)
        target: Any = self.doc
        for raw in fragment.split("/")[1:]:
            token = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(target, dict) and token in target:
                target = target[token]
            elif isinstance(target, list) and token.isdigit() and int(token) < len(target):
                target = target[int(token)]
            else:
                return _MISSING
        return target

    def anchors(self) -> dict[str, Any]:
        """Plain-name fragments: `$anchor: name` (2019+) and `$id: "#name"` (draft-06/07)."""
        if self._anchors is None:
            self._anchors = {}
            stack: list[Any] = [self.doc]
            while stack:
                value = stack.pop()
                if isinstance(value, dict):
                    anchor, identifier = value.get("$anchor"), value.get("$id")
                    if isinstance(anchor, str):
                        self._anchors.setdefault(anchor, value)
                    if isinstance(identifier, str) and identifier.startswith("#") and len(identifier) > 1:
                        self._anchors.setdefault(identifier[1:], value)
                    stack.extend(value.values())
                elif isinstance(value, list):
                    stack.extend(value)
        return self._anchors

    def object_children(
        self, variants: list[tuple[Any, str]], active: frozenset[str], depth: int
    ) -> tuple[list[LayoutNode], list[Condition]]:
        """The fields of an object (from one or several alternative schemas) and its rules."""
        if depth > MAX_DEPTH:
            raise DefinitionError(f"objects nested deeper than {MAX_DEPTH} levels", path=variants[0][1])
        view = _ObjectView()
        for index, (schema, path) in enumerate(variants):
            resolved = self.resolve(schema, path, active)
            if resolved.cyclic_ref is None:
                self.collect(resolved, view, conditional=index > 0)
        # JSON object members are unordered, so the layout is in name order: a key shuffle is no change.
        children = [
            self.property_node(
                name, view.properties[name], required=name in view.required, active=active, depth=depth
            )
            for name in sorted(view.properties)
        ]
        if undeclared := sorted(view.required - set(view.properties)):
            # Required names with no property schema still constrain the data.
            view.rules.append(_rule(ConditionEffect.REQUIRE, undeclared, {"required": undeclared}))
        return children, view.rules

    def collect(self, resolved: _Resolved, view: _ObjectView, *, conditional: bool) -> None:
        """Gather properties, required names and rules of one object schema into `view`."""
        schema, path, active = resolved.schema, resolved.path, resolved.active
        properties = schema.get("properties", {})
        if not isinstance(properties, dict):
            raise DefinitionError("`properties` must be an object", path=f"{path}.properties")
        for name, sub in properties.items():
            view.properties.setdefault(name, []).append((sub, f"{path}.properties.{name}"))
        required = schema.get("required")
        if isinstance(required, list) and not conditional:
            view.required.update(name for name in required if isinstance(name, str))
        for index, member in enumerate(_schemas(schema.get("allOf"), f"{path}.allOf")):
            self.collect_member(member, f"{path}.allOf[{index}]", active, view, conditional=conditional)
        for keyword in COMBINATORS:
            members = _schemas(schema.get(keyword), f"{path}.{keyword}")
            for index, member in enumerate(members):
                self.collect_member(member, f"{path}.{keyword}[{index}]", active, view, conditional=True)
            if keyword in schema:
                view.rules.append(self.branch_rule({keyword: schema[keyword]}, members, active))
        if "if" in schema:
            branches = [schema[name] for name in ("then", "else") if name in schema]
            for name in ("then", "else"):
                if name in schema:
                    self.collect_member(schema[name], f"{path}.{name}", active, view, conditional=True)
            raw: dict[str, Any] = {name: schema[name] for name in ("if", "then", "else") if name in schema}
            view.rules.append(self.if_rule(raw, branches, active))
        for keyword in ("dependencies", "dependentRequired", "dependentSchemas"):
            dependencies = schema.get(keyword)
            if not isinstance(dependencies, dict):
                continue
            for name, dependency in sorted(dependencies.items()):
                if isinstance(dependency, dict | bool):
                    self.collect_member(
                        dependency, f"{path}.{keyword}.{name}", active, view, conditional=True
                    )
                view.rules.append(self.dependency_rule(keyword, name, dependency, active))

    def collect_member(
        self, member: Any, path: str, active: frozenset[str], view: _ObjectView, *, conditional: bool
    ) -> None:
        resolved = self.resolve(member, path, active)
        if resolved.cyclic_ref is None:
            self.collect_level += 1
            _check_level(self.collect_level, path)
            self.collect(resolved, view, conditional=conditional)
            self.collect_level -= 1

    def property_node(
        self,
        name: str,
        occurrences: list[tuple[Any, str]],
        *,
        required: bool,
        active: frozenset[str],
        depth: int,
    ) -> LayoutNode:
        """One property as a field, group or repeat; several occurrences come from alternative branches."""
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise DefinitionError(
                f"schema expands to more than {MAX_NODES} properties", path=occurrences[0][1]
            )
        valid = [(schema, path) for schema, path in occurrences if isinstance(schema, dict | bool)]
        if not valid:
            # Real files have e.g. `"properties": {"$ref": "#/..."}`: a property whose schema is a string.
            return FieldNode(
                key=name,
                label=_humanise(name),
                kind=WidgetKind.CUSTOM,
                required=required,
                extras={"schema": occurrences[0][0]},
            )
        resolved = [self.resolve(schema, path, active) for schema, path in valid]
        primary = next((item for item in resolved if _has_shape(item.schema)), resolved[0])
        if primary.cyclic_ref is not None:
            return self.cyclic_field(name, primary, required)
        shape = _shape(self, primary)
        if shape != "object":
            # Alternatives that disagree on shape: the object one wins, so its properties stay fields;
            # the other alternatives stay verbatim in the parent's oneOf/anyOf rule.
            objects = [
                item for item in resolved if item.cyclic_ref is None and _shape(self, item) == "object"
            ]
            if objects:
                primary, shape = objects[0], "object"
        if shape == "object":
            return self.group(name, primary, resolved, required, depth)
        if shape == "array":
            return self.array(name, primary, resolved, required, depth)
        return self.scalar_field(name, primary, resolved, required)

    def group(
        self, name: str, primary: _Resolved, resolved: list[_Resolved], required: bool, depth: int
    ) -> GroupNode:
        variants = [(item.schema, item.path) for item in resolved if item.cyclic_ref is None]
        active = frozenset().union(*(item.active for item in resolved))
        children, rules = self.object_children(variants, active, depth + 1)
        schema = primary.schema
        consumed = {"title", "description", "properties", "required", "allOf", *COMBINATORS}
        consumed |= {"if", "then", "else", "dependencies", "dependentRequired", "dependentSchemas"}
        extras = _extras(primary, consumed)
        if required:
            extras["required_by_parent"] = True
        return GroupNode(
            key=name,
            source_type=_source_type(schema),
            title=_string(schema.get("title")) or _humanise(name),
            description=_string(schema.get("description")),
            children=children,
            conditions=rules,
            extras=extras,
        )

    def array(
        self, name: str, primary: _Resolved, resolved: list[_Resolved], required: bool, depth: int
    ) -> LayoutNode:
        schema = primary.schema
        items = schema.get("items")
        item_variants: list[tuple[Any, str]] = []
        for variant in resolved:
            variant_items = variant.schema.get("items")
            if isinstance(variant_items, dict | bool):
                item_variants.append((variant_items, f"{variant.path}.items"))
            elif isinstance(variant_items, list):
                item_variants.extend(
                    (sub, f"{variant.path}.items[{index}]")
                    for index, sub in enumerate(variant_items)
                    if isinstance(sub, dict | bool)
                )
        item_resolved = [self.resolve(sub, path, primary.active) for sub, path in item_variants]
        object_items = [
            index
            for index, item in enumerate(item_resolved)
            if item.cyclic_ref is None and _shape(self, item) == "object"
        ]
        if object_items:
            object_variants = [item_variants[index] for index in object_items]
            children, rules = self.object_children(object_variants, primary.active, depth + 1)
            extras = _extras(primary, {"title", "description", "items", "minItems", "maxItems"})
            if isinstance(items, list):
                extras["items"] = items
            elif item_extras := _extras(
                item_resolved[object_items[0]], {"properties", "required", "type", "allOf", *COMBINATORS}
            ):
                extras["items"] = item_extras
            title = _string(schema.get("title")) or _humanise(name)
            return RepeatNode(
                key=name,
                source_type=_source_type(schema),
                title=title,
                label=title,
                description=_string(schema.get("description")),
                required=required,
                min_items=_int(schema.get("minItems")),
                max_items=_int(schema.get("maxItems")),
                children=children,
                conditions=rules,
                extras=extras,
            )
        if isinstance(items, dict) and item_resolved:
            first_item = item_resolved[0]
            if first_item.cyclic_ref is None and _shape(self, first_item) == "scalar":
                field_node = self.scalar_field(name, first_item, [first_item], required)
                field_node.extras = _extras(
                    primary, {"title", "description", "default", "minItems", "maxItems"}
                )
                field_node.default = schema.get("default")
                field_node.source_type = _source_type(schema)
                field_node.label = _string(schema.get("title")) or field_node.label
                field_node.help_text = _string(schema.get("description")) or field_node.help_text
                field_node.multiple = True
                field_node.validation.min_items = _int(schema.get("minItems"))
                field_node.validation.max_items = _int(schema.get("maxItems"))
                if field_node.options and field_node.kind in (WidgetKind.SELECT, WidgetKind.RADIO):
                    field_node.kind = WidgetKind.CHECKBOX_GROUP
                return field_node
        # Tuples, nested arrays, untyped items: kept whole.
        return self.custom_field(name, primary, required, multiple=True)

    def scalar_field(
        self, name: str, primary: _Resolved, resolved: list[_Resolved], required: bool
    ) -> FieldNode:
        schema = _merge_all_of(self, primary)
        options = self.options(schema)
        for other in resolved:
            if other is not primary:
                _add_options(options, self.options(_merge_all_of(self, other)))
        conditions: list[Condition] = []
        for keyword in (*COMBINATORS, "not"):
            if keyword in schema:
                conditions.append(_rule(ConditionEffect.VALIDATE, [], {keyword: schema[keyword]}))
        json_type = _json_type(schema)
        kind = _kind(name, schema, primary.refs, json_type, len(options))
        extras = _extras(primary, FIELD_KEYWORDS | {"allOf", "not", *COMBINATORS}, schema)
        if kind is WidgetKind.CHECKBOX and options:
            # A boolean restricted by enum (e.g. must be true): the restriction, not a choice list.
            extras["enum"] = schema.get("enum")
            options = []
        return FieldNode(
            key=name,
            source_type=_source_type(schema),
            label=_string(schema.get("title")) or _humanise(name),
            kind=kind,
            required=required,
            validation=_validation(schema),
            options=options,
            help_text=_string(schema.get("description")),
            default=schema.get("default"),
            conditions=conditions,
            extras=extras,
        )

    def custom_field(self, name: str, primary: _Resolved, required: bool, *, multiple: bool) -> FieldNode:
        schema = primary.schema
        return FieldNode(
            key=name,
            source_type=_source_type(schema),
            label=_string(schema.get("title")) or _humanise(name),
            kind=WidgetKind.CUSTOM,
            required=required,
            help_text=_string(schema.get("description")),
            multiple=multiple,
            extras=_extras(primary, {"title", "description"}),
        )

    def cyclic_field(self, name: str, primary: _Resolved, required: bool) -> FieldNode:
        node = self.custom_field(name, primary, required, multiple=False)
        node.extras["$ref"] = primary.cyclic_ref
        return node

    def branch_rule(self, raw: dict[str, Any], members: list[Any], active: frozenset[str]) -> Condition:
        """oneOf/anyOf over an object: REQUIRE when the branches only list required names."""
        names = self.mentioned(members, active)
        only_required = all(isinstance(member, dict) and set(member) <= {"required"} for member in members)
        return _rule(ConditionEffect.REQUIRE if only_required else ConditionEffect.OTHER, names, raw)

    def if_rule(self, raw: dict[str, Any], branches: list[Any], active: frozenset[str]) -> Condition:
        test = raw["if"]
        test_names = self.mentioned([test], active)
        requires = any(isinstance(branch, dict) and "required" in branch for branch in branches)
        condition = _rule(ConditionEffect.REQUIRE if requires else ConditionEffect.OTHER, test_names, raw)
        properties = test.get("properties") if isinstance(test, dict) else None
        if isinstance(properties, dict) and len(properties) == 1:
            (when, constraint), *_ = properties.items()
            if isinstance(constraint, dict) and "const" in constraint:
                condition.when, condition.operator, condition.value = when, "eq", constraint["const"]
            elif isinstance(constraint, dict) and _single(constraint.get("enum")):
                condition.when, condition.operator, condition.value = when, "eq", constraint["enum"][0]
        return condition

    def dependency_rule(self, keyword: str, name: str, dependency: Any, active: frozenset[str]) -> Condition:
        requires = isinstance(dependency, list) or (isinstance(dependency, dict) and "required" in dependency)
        effect = ConditionEffect.REQUIRE if requires else ConditionEffect.OTHER
        condition = _rule(effect, [name], {keyword: {name: dependency}})
        condition.when, condition.operator = name, "truthy"
        return condition

    def mentioned(self, members: list[Any], active: frozenset[str]) -> list[str]:
        """Property names a rule reads or constrains, in first-mention order."""
        names: dict[str, None] = {}
        for member in members:
            if isinstance(member, dict) and "$ref" in member:
                resolved = self.resolve(member, "$", active)
                member = resolved.schema if resolved.cyclic_ref is None else {}
            if not isinstance(member, dict):
                continue
            properties = member.get("properties")
            if isinstance(properties, dict):
                names.update(dict.fromkeys(properties))
            required = member.get("required")
            if isinstance(required, list):
                names.update(dict.fromkeys(name for name in required if isinstance(name, str)))
        return sorted(names)


def _rule(effect: ConditionEffect, depends_on: list[str], raw: dict[str, Any]) -> Condition:
    return Condition(effect=effect, depends_on=depends_on, language=LANGUAGE, raw=raw)


def _shape(importer: _SchemaImporter, resolved: _Resolved, level: int = 0) -> str:
    """object, array or scalar: what a property's schema describes."""
    _check_level(level, resolved.path)
    schema = resolved.schema
    json_type = _json_type(schema)
    if json_type == "object" or "properties" in schema:
        return "object"
    if json_type == "array" or "items" in schema:
        return "array"
    if json_type is None:
        for keyword in ("allOf", *COMBINATORS):
            for member in _schemas(schema.get(keyword), resolved.path):
                branch = importer.resolve(member, resolved.path, resolved.active)
                if branch.cyclic_ref is None and _shape(importer, branch, level + 1) == "object":
                    return "object"
    return "scalar"


def _check_level(level: int, path: str) -> None:
    if level > MAX_DEPTH:
        raise DefinitionError(f"schemas nested deeper than {MAX_DEPTH} levels", path=path)


def _check_json_depth(doc: Any) -> None:
    """Refuse absurdly deep documents up front, without recursion."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise DefinitionError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(value, dict):
            stack.extend((child, depth + 1) for child in value.values() if isinstance(child, dict | list))
        elif isinstance(value, list):
            stack.extend((child, depth + 1) for child in value if isinstance(child, dict | list))


def _has_shape(schema: dict[str, Any]) -> bool:
    return any(keyword in schema for keyword in ("type", "properties", "items", "enum", "const", "format"))


def _merge_all_of(importer: _SchemaImporter, resolved: _Resolved, level: int = 0) -> dict[str, Any]:
    """A scalar schema with its allOf members folded in (own keywords win)."""
    _check_level(level, resolved.path)
    schema = resolved.schema
    members = _schemas(schema.get("allOf"), f"{resolved.path}.allOf")
    if not members:
        return schema
    merged: dict[str, Any] = {}
    for index, member in enumerate(members):
        branch = importer.resolve(member, f"{resolved.path}.allOf[{index}]", resolved.active)
        if branch.cyclic_ref is None:
            merged.update(_merge_all_of(importer, branch, level + 1))
    merged.update({k: v for k, v in schema.items() if k != "allOf"})
    return merged


def _kind(
    name: str, schema: dict[str, Any], refs: list[str], json_type: str | None, option_count: int
) -> WidgetKind:
    if json_type == "boolean":
        return WidgetKind.CHECKBOX
    names = [name, *(ref.rsplit("/", 1)[-1] for ref in refs)]
    if option_count:
        if any(re.search("country", candidate, re.I) for candidate in names):
            return WidgetKind.COUNTRY
        return WidgetKind.RADIO if option_count <= RADIO_MAX_OPTIONS else WidgetKind.SELECT
    format_ = schema.get("format")
    if isinstance(format_, str) and format_.lower() in KIND_BY_FORMAT:
        return KIND_BY_FORMAT[format_.lower()]
    for pattern, kind in KIND_BY_NAME:
        allowed = NAME_KIND_TYPES.get(pattern.pattern, frozenset({"string"}))
        if (json_type in allowed or json_type is None) and any(
            pattern.search(candidate) for candidate in names
        ):
            return kind
    if json_type in ("number", "integer"):
        return WidgetKind.NUMBER
    if json_type == "null" or "const" in schema:
        return WidgetKind.HIDDEN
    if json_type == "string":
        max_length = schema.get("maxLength")
        if isinstance(max_length, int) and max_length >= TEXTAREA_MIN_LENGTH:
            return WidgetKind.TEXTAREA
        return WidgetKind.TEXT
    return WidgetKind.CUSTOM if json_type is None else WidgetKind.TEXT


def _options(schema: dict[str, Any]) -> list[Option]:
    """enum (labelled by enumNames), or oneOf/anyOf of const/single-enum alternatives."""
    enum = schema.get("enum")
    if isinstance(enum, list):
        names = schema.get("enumNames")
        labels = names if isinstance(names, list) and len(names) == len(enum) else None
        return [
            Option(value=value, label=(_string(labels[index]) if labels else None) or _plain(value))
            for index, value in enumerate(enum)
        ]
    options: list[Option] = []
    for keyword in COMBINATORS:
        members = schema.get(keyword)
        if not isinstance(members, list):
            continue
        for member in members:
            if not isinstance(member, dict):
                continue
            if "const" in member:
                value = member["const"]
            elif _single(member.get("enum")):
                value = member["enum"][0]
            else:
                continue
            options.append(Option(value=value, label=_string(member.get("title")) or _plain(value)))
    return options


def _add_options(options: list[Option], more: list[Option]) -> None:
    seen = {repr(option.value) for option in options}
    for option in more:
        if repr(option.value) not in seen:
            options.append(option)
            seen.add(repr(option.value))


def _validation(schema: dict[str, Any]) -> Validation:
    values: dict[str, Any] = {}
    for keyword, name in VALIDATION_KEYWORDS.items():
        value = schema.get(keyword)
        if keyword == "pattern":
            if isinstance(value, str):
                values[name] = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            values[name] = value if name in ("minimum", "maximum") else int(value)
    if isinstance(schema.get("format"), str):
        values["format"] = schema["format"]
    return Validation(**values)


def _extras(
    resolved: _Resolved, consumed: set[str] | frozenset[str], schema: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Every keyword the model does not represent, verbatim; the first `$ref` names the definition used."""
    source = resolved.schema if schema is None else schema
    extras = {prop: value for prop, value in source.items() if prop not in consumed}
    if isinstance(source.get("type"), str):
        extras.pop("type", None)
    if isinstance(extras.get("title"), str):
        extras.pop("title", None)
    if resolved.refs:
        extras["$ref"] = resolved.refs[0]
    return extras


def _single(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 1


def _schemas(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise DefinitionError("expected a list of schemas", path=path)
    return value


def _json_type(schema: dict[str, Any]) -> str | None:
    json_type = schema.get("type")
    if isinstance(json_type, list):
        json_type = next((item for item in json_type if item != "null"), "null" if json_type else None)
    if json_type is None and isinstance(schema.get("enum"), list) and schema["enum"]:
        return _type_of(schema["enum"][0])
    return json_type if isinstance(json_type, str) else None


def _type_of(value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string" if isinstance(value, str) else None


def _source_type(schema: dict[str, Any]) -> str | None:
    json_type = schema.get("type")
    if isinstance(json_type, str):
        return json_type
    if isinstance(json_type, list) and all(isinstance(item, str) for item in json_type):
        return "|".join(json_type)
    return None


def _key_from_id(doc: dict[str, Any]) -> str | None:
    identifier = doc.get("$id", doc.get("id"))
    if not isinstance(identifier, str) or not identifier.strip("#/ "):
        return None
    stem = identifier.rstrip("#/").rsplit("/", 1)[-1]
    stem = re.sub(r"(\.schema)?\.json$", "", stem)
    return _slug(stem) or None


@lru_cache(maxsize=4096)
def _humanise(name: str) -> str:
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    words = re.sub(r"[^A-Za-z0-9]+", " ", words).strip().lower()
    return words[:1].upper() + words[1:] if words else name


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80]


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None

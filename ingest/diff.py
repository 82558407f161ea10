"""Structural diff between two form definitions: fields, layout, logic and form texts."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from enum import StrEnum
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from ingest.hashing import VOLATILE_NODE_EXTRAS
from ingest.model import (
    ColumnNode,
    ColumnsNode,
    Condition,
    ContainerNode,
    ContentNode,
    FieldNode,
    FormDefinition,
    GroupNode,
    JsonValue,
    LayoutNode,
    PageNode,
    RepeatNode,
    SectionNode,
)

NodeId = tuple[str, ...]
_T = TypeVar("_T")
_NonField = PageNode | SectionNode | GroupNode | ColumnsNode | ColumnNode | RepeatNode | ContentNode

# Labels this similar (difflib ratio) count as "near-identical" when deciding a rename.
_NEAR_IDENTICAL_LABEL = 0.85
_CONTENT_SEGMENT_CHARS = 40


class ChangeKind(StrEnum):
    FIELD_ADDED = "field_added"
    FIELD_REMOVED = "field_removed"
    FIELD_CHANGED = "field_changed"
    FIELD_MOVED = "field_moved"
    FIELD_RENAMED = "field_renamed"
    LAYOUT_CHANGED = "layout_changed"
    LOGIC_CHANGED = "logic_changed"
    FORM_CHANGED = "form_changed"


Action = Literal["added", "removed", "changed", "moved", "renamed", "reordered"]


class PropertyChange(BaseModel):
    """One property's value before and after."""

    model_config = ConfigDict(extra="forbid")

    old: JsonValue = None
    new: JsonValue = None


class Change(BaseModel):
    """One machine-readable change; `key` is the new key (the old one for removals)."""

    model_config = ConfigDict(extra="forbid")

    kind: ChangeKind
    action: Action
    node: str
    key: str | None = None
    old_key: str | None = None
    old_path: list[str] | None = None
    new_path: list[str] | None = None
    properties: dict[str, PropertyChange] = Field(default_factory=dict)


class DefinitionDiff(BaseModel):
    """Everything that changed from one definition to another, with a one-line summary."""

    model_config = ConfigDict(extra="forbid")

    summary: str
    changes: list[Change] = Field(default_factory=list)
    added: int = 0
    removed: int = 0
    changed: int = 0
    moved: int = 0
    renamed: int = 0
    layout: int = 0
    logic: int = 0

    @property
    def is_empty(self) -> bool:
        """True when the two definitions are the same to a user."""
        return not self.changes


def diff_definitions(old: FormDefinition, new: FormDefinition) -> DefinitionDiff:
    """The structural diff from `old` to `new`; empty when they are the same to a user."""
    old_tree, new_tree = _Tree.of(old), _Tree.of(new)
    container_map = _match_containers(old_tree, new_tree)
    field_pairs, removed, added = _match_fields(old_tree, new_tree, container_map)
    renames = _detect_renames(removed, added, new_tree, container_map)
    renamed_old = {id(pair[0]) for pair in renames}
    renamed_new = {id(pair[1]) for pair in renames}

    changes: list[Change] = []
    changes.extend(_form_changes(old, new))
    for old_field, new_field in field_pairs:
        changes.extend(_matched_field_changes(old_field, new_field, container_map))
    changes.extend(_renamed_field_change(old_field, new_field) for old_field, new_field in renames)
    changes.extend(
        _field_presence_change(ChangeKind.FIELD_REMOVED, item)
        for item in removed
        if id(item) not in renamed_old
    )
    changes.extend(
        _field_presence_change(ChangeKind.FIELD_ADDED, item) for item in added if id(item) not in renamed_new
    )
    field_match = {a.ident: b.ident for a, b in [*field_pairs, *renames]}
    changes.extend(_layout_changes(old_tree, new_tree, container_map, field_match))
    changes.extend(_form_logic_changes(old.logic, new.logic))
    return _assemble(changes)


@dataclass(eq=False)
class _Placed:
    """A layout node with where it sits: its identity, its parent container's identity, its human path."""

    node: _NonField
    ident: NodeId
    parent: NodeId
    path: list[str]
    children: list[_Placed | _PlacedField] = field(default_factory=list)


@dataclass(eq=False)
class _PlacedField:
    node: FieldNode
    ident: NodeId
    parent: NodeId
    path: list[str]


@dataclass
class _Tree:
    root: _Placed
    containers: dict[NodeId, _Placed]
    fields: list[_PlacedField]
    contents: dict[NodeId, _Placed]

    @classmethod
    def of(cls, defn: FormDefinition) -> _Tree:
        root = _Placed(node=SectionNode(), ident=(), parent=(), path=[])
        tree = cls(root=root, containers={(): root}, fields=[], contents={})
        tree._place(defn.layout, root)
        return tree

    def _place(self, nodes: list[LayoutNode], parent: _Placed) -> None:
        seen: dict[str, int] = defaultdict(int)
        for node in nodes:
            segment = _segment(node)
            seen[segment] += 1
            if seen[segment] > 1:
                segment = f"{segment}#{seen[segment]}"
            ident, path = (*parent.ident, segment), [*parent.path, _human_segment(node)]
            if isinstance(node, FieldNode):
                placed_field = _PlacedField(node=node, ident=ident, parent=parent.ident, path=path)
                parent.children.append(placed_field)
                self.fields.append(placed_field)
                continue
            placed = _Placed(node=node, ident=ident, parent=parent.ident, path=path)
            parent.children.append(placed)
            if isinstance(node, ContentNode):
                self.contents[ident] = placed
            else:
                self.containers[ident] = placed
                self._place(node.children, placed)


def _segment(node: LayoutNode) -> str:
    if isinstance(node, FieldNode):
        return f"field:{node.key}"
    if node.key:
        return f"{node.node}:{node.key}"
    if node.title:
        return f"{node.node}~{node.title}"
    if isinstance(node, ContentNode):
        return f"content~{' '.join(node.text.split())[:_CONTENT_SEGMENT_CHARS]}"
    return node.node


def _human_segment(node: LayoutNode) -> str:
    if isinstance(node, FieldNode):
        return node.key
    return node.key or node.title or node.node


def _container_path(placed: _Placed | _PlacedField) -> list[str]:
    return placed.path[:-1]


_FieldPair = tuple[_PlacedField, _PlacedField]


class _ContainerMap:
    """Which old container is which new one, and how old identities translate into new ones."""

    def __init__(self) -> None:
        self.pairs: dict[NodeId, NodeId] = {(): ()}

    def translate(self, ident: NodeId) -> NodeId:
        """The new-side identity an old container would have if nothing above it changed."""
        if ident in self.pairs:
            return self.pairs[ident]
        return (*self.translate(ident[:-1]), ident[-1])


def _match_containers(old: _Tree, new: _Tree) -> _ContainerMap:
    mapping = _ContainerMap()
    claimed: set[NodeId] = {()}
    # A keyed container that is unique on both sides is the same container wherever it went.
    old_by_key = _unique_by_key(old.containers.values())
    new_by_key = _unique_by_key(new.containers.values())
    for key, old_placed in old_by_key.items():
        new_placed = new_by_key.get(key)
        if new_placed is not None:
            mapping.pairs[old_placed.ident] = new_placed.ident
            claimed.add(new_placed.ident)

    # Top down, so a container's parent is settled before the container is looked at.
    depths = sorted({len(ident) for ident in old.containers} | {len(ident) for ident in new.containers})
    for depth in depths:
        olds = [p for i, p in old.containers.items() if len(i) == depth and i not in mapping.pairs]
        for placed in olds:
            candidate = mapping.translate(placed.ident)
            if candidate in new.containers and candidate not in claimed:
                mapping.pairs[placed.ident] = candidate
                claimed.add(candidate)
        unmatched_old = [p for p in olds if p.ident not in mapping.pairs]
        unmatched_new = [p for i, p in new.containers.items() if len(i) == depth and i not in claimed]
        paired = _one_to_one(
            unmatched_old,
            unmatched_new,
            _same_container(mapping),
            lambda o: [(o.node.node, mapping.translate(o.parent))],
            lambda n: [(n.node.node, n.parent)],
        )
        for old_placed, new_placed in paired:
            mapping.pairs[old_placed.ident] = new_placed.ident
            claimed.add(new_placed.ident)
    return mapping


def _unique_by_key(placed: Iterable[_Placed]) -> dict[str, _Placed]:
    groups: dict[str, list[_Placed]] = defaultdict(list)
    for item in placed:
        if item.node.key:
            groups[item.node.key].append(item)
    return {key: items[0] for key, items in groups.items() if len(items) == 1}


def _same_container(mapping: _ContainerMap) -> Callable[[_Placed, _Placed], bool]:
    """Same type under the same parent, and the same title or at least one keyed descendant in common."""

    descendants: dict[int, set[str]] = {}

    def keys_below(placed: _Placed) -> set[str]:
        if id(placed) not in descendants:
            descendants[id(placed)] = _descendant_keys(placed.node)
        return descendants[id(placed)]

    def same(old: _Placed, new: _Placed) -> bool:
        if old.node.node != new.node.node or mapping.translate(old.parent) != new.parent:
            return False
        if old.node.title and old.node.title == new.node.title:
            return True
        return not keys_below(old).isdisjoint(keys_below(new))

    return same


def _descendant_keys(node: LayoutNode) -> set[str]:
    keys: set[str] = set()
    stack: list[LayoutNode] = list(node.children) if isinstance(node, ContainerNode) else []
    while stack:
        child = stack.pop()
        if child.key:
            keys.add(child.key)
        if isinstance(child, ContainerNode):
            stack.extend(child.children)
    return keys


def _one_to_one(
    olds: list[_T],
    news: list[_T],
    similar: Callable[[_T, _T], bool],
    old_buckets: Callable[[_T], Iterable[Hashable]],
    new_buckets: Callable[[_T], Iterable[Hashable]] | None = None,
) -> list[tuple[_T, _T]]:
    """Pairs that are each other's only candidate; anything ambiguous stays unpaired.

    Only items sharing a bucket are compared, which keeps large diffs near linear.
    """
    by_bucket: dict[Hashable, list[_T]] = defaultdict(list)
    for new in news:
        for bucket in (new_buckets or old_buckets)(new):
            by_bucket[bucket].append(new)
    old_candidates: dict[int, list[_T]] = {}
    for old in olds:
        seen: dict[int, _T] = {}
        for bucket in old_buckets(old):
            seen.update(
                (id(n), n) for n in by_bucket.get(bucket, ()) if id(n) not in seen and similar(old, n)
            )
        old_candidates[id(old)] = list(seen.values())
    new_candidate_count: dict[int, int] = defaultdict(int)
    for candidates in old_candidates.values():
        for candidate in candidates:
            new_candidate_count[id(candidate)] += 1
    return [
        (o, old_candidates[id(o)][0])
        for o in olds
        if len(old_candidates[id(o)]) == 1 and new_candidate_count[id(old_candidates[id(o)][0])] == 1
    ]


def _match_fields(
    old: _Tree, new: _Tree, mapping: _ContainerMap
) -> tuple[list[_FieldPair], list[_PlacedField], list[_PlacedField]]:
    """Pair fields by key: in the same container first, then by occurrence (a move)."""
    old_by_key: dict[str, list[_PlacedField]] = defaultdict(list)
    new_by_key: dict[str, list[_PlacedField]] = defaultdict(list)
    for placed in old.fields:
        old_by_key[placed.node.key].append(placed)
    for placed in new.fields:
        new_by_key[placed.node.key].append(placed)

    pairs: list[_FieldPair] = []
    removed: list[_PlacedField] = []
    for key, olds in old_by_key.items():
        news = list(new_by_key.get(key, []))
        leftover: list[_PlacedField] = []
        for old_placed in olds:
            same_place = next((n for n in news if n.parent == mapping.translate(old_placed.parent)), None)
            if same_place is None:
                leftover.append(old_placed)
            else:
                pairs.append((old_placed, same_place))
                news.remove(same_place)
        pairs.extend(zip(leftover, news, strict=False))
        removed.extend(leftover[len(news) :])
    matched_new = {id(n) for _, n in pairs}
    added = [n for n in new.fields if id(n) not in matched_new]
    new_order = {id(n): i for i, n in enumerate(new.fields)}
    pairs.sort(key=lambda pair: new_order[id(pair[1])])
    old_order = {id(o): i for i, o in enumerate(old.fields)}
    removed.sort(key=lambda placed: old_order[id(placed)])
    return pairs, removed, added


def _detect_renames(
    removed: list[_PlacedField], added: list[_PlacedField], new: _Tree, mapping: _ContainerMap
) -> list[_FieldPair]:
    """A removed and an added field that are clearly the same field under a new key."""
    pairs = _one_to_one(removed, added, _same_field, _field_buckets)
    paired = {id(o) for o, _ in pairs} | {id(n) for _, n in pairs}
    # Among several look-alikes, the one in the same container is the same field.
    rest_old = [o for o in removed if id(o) not in paired]
    rest_new = [n for n in added if id(n) not in paired]
    pairs.extend(
        _one_to_one(
            rest_old,
            rest_new,
            lambda o, n: _same_field(o, n) and mapping.translate(o.parent) == n.parent,
            _field_buckets,
        )
    )
    new_order = {id(n): i for i, n in enumerate(new.fields)}
    return sorted(pairs, key=lambda pair: new_order[id(pair[1])])


def _field_buckets(placed: _PlacedField) -> list[Hashable]:
    """Rename candidates share a bucket: the same kind and label, or the same kind and options."""
    node = placed.node
    label = _norm(node.label)
    if not label:
        return [("blank", node.kind, json.dumps(_field_properties(node), sort_keys=True, default=str))]
    buckets: list[Hashable] = [("label", node.kind, label)]
    if node.options:
        buckets.append(("options", node.kind, json.dumps([o.model_dump(mode="json") for o in node.options])))
    return buckets


def _same_field(old: _PlacedField, new: _PlacedField) -> bool:
    a, b = old.node, new.node
    if a.kind != b.kind:
        return False
    old_label, new_label = _norm(a.label), _norm(b.label)
    if old_label and old_label == new_label:
        return True
    if a.options and a.options == b.options and old_label and new_label:
        return SequenceMatcher(None, old_label, new_label).ratio() >= _NEAR_IDENTICAL_LABEL
    if not old_label and not new_label:
        return _field_properties(a) == _field_properties(b) and bool(a.options or a.extras)
    return False


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _field_properties(node: FieldNode) -> dict[str, JsonValue]:
    dumped = node.model_dump(mode="json", exclude={"key", "node", "extras"})
    dumped.update(_extras_properties(node.extras))
    return dumped


def _extras_properties(extras: dict[str, JsonValue]) -> dict[str, JsonValue]:
    return {
        f"extras.{name}": _jsonable(value)
        for name, value in extras.items()
        if name not in VOLATILE_NODE_EXTRAS
    }


def _container_properties(node: _NonField) -> dict[str, JsonValue]:
    exclude: set[str] = {"key", "children", "conditions", "extras"}
    dumped = node.model_dump(mode="json", exclude=exclude)
    dumped.update(_extras_properties(node.extras))
    return dumped


def _jsonable(value: Any) -> JsonValue:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _property_changes(old: dict[str, JsonValue], new: dict[str, JsonValue]) -> dict[str, PropertyChange]:
    changes: dict[str, PropertyChange] = {}
    for name in sorted(set(old) | set(new)):
        old_value, new_value = old.get(name), new.get(name)
        if _same_json(old_value, new_value):
            continue
        if name.startswith("extras.") and isinstance(old_value, dict) and isinstance(new_value, dict):
            # Unmodelled objects (a JSON Schema's definitions, Form.io properties) can be large: name the
            # entries that changed rather than repeating the whole object twice.
            inner = _property_changes(old_value, new_value)
            changes.update((f"{name}.{inner_name}", change) for inner_name, change in inner.items())
        else:
            changes[name] = PropertyChange(old=old_value, new=new_value)
    return changes


def _same_model(old: FieldNode, new: FieldNode) -> bool:
    # Serialising in pydantic-core is far cheaper than dumping to dicts and comparing property by property.
    return old.model_dump_json() == new.model_dump_json()


def _same_json(old: JsonValue, new: JsonValue) -> bool:
    """Equal as JSON: unlike ==, 1 is not true and 1 is not 1.0."""
    if old is new:
        return True
    if old != new:
        return False
    if isinstance(old, str):
        return True
    return json.dumps(old, sort_keys=True, default=str) == json.dumps(new, sort_keys=True, default=str)


def _matched_field_changes(old: _PlacedField, new: _PlacedField, mapping: _ContainerMap) -> list[Change]:
    changes: list[Change] = []
    if mapping.translate(old.parent) != new.parent:
        changes.append(
            Change(
                kind=ChangeKind.FIELD_MOVED,
                action="moved",
                node="field",
                key=new.node.key,
                old_path=_container_path(old),
                new_path=_container_path(new),
            )
        )
    # Equal models have equal properties; comparing is much cheaper than dumping both.
    properties = (
        {}
        if _same_model(old.node, new.node)
        else _property_changes(_field_properties(old.node), _field_properties(new.node))
    )
    if properties:
        changes.append(
            Change(
                kind=ChangeKind.FIELD_CHANGED,
                action="changed",
                node="field",
                key=new.node.key,
                old_path=_container_path(old),
                new_path=_container_path(new),
                properties=properties,
            )
        )
    return changes


def _renamed_field_change(old: _PlacedField, new: _PlacedField) -> Change:
    properties = _property_changes(_field_properties(old.node), _field_properties(new.node))
    properties["key"] = PropertyChange(old=old.node.key, new=new.node.key)
    return Change(
        kind=ChangeKind.FIELD_RENAMED,
        action="renamed",
        node="field",
        key=new.node.key,
        old_key=old.node.key,
        old_path=_container_path(old),
        new_path=_container_path(new),
        properties=dict(sorted(properties.items())),
    )


def _field_presence_change(kind: ChangeKind, placed: _PlacedField) -> Change:
    added = kind is ChangeKind.FIELD_ADDED
    path = _container_path(placed)
    return Change(
        kind=kind,
        action="added" if added else "removed",
        node="field",
        key=placed.node.key,
        old_path=None if added else path,
        new_path=path if added else None,
        properties={
            "label": PropertyChange(
                old=None if added else placed.node.label, new=placed.node.label if added else None
            )
        },
    )


def _layout_changes(
    old: _Tree, new: _Tree, mapping: _ContainerMap, field_match: dict[NodeId, NodeId]
) -> list[Change]:
    changes: list[Change] = []
    reverse = {new_ident: old_ident for old_ident, new_ident in mapping.pairs.items()}
    content_pairs = _match_contents(old, new, mapping)
    reverse_content = {n: o for o, n in content_pairs.items()}

    for old_ident, old_placed in old.containers.items():
        if old_ident and old_ident not in mapping.pairs:
            changes.append(_layout_presence("removed", old_placed))
    for old_ident, old_placed in old.contents.items():
        if old_ident not in content_pairs:
            changes.append(_layout_presence("removed", old_placed))

    for new_ident, new_placed in new.containers.items():
        if new_ident not in reverse:
            changes.append(_layout_presence("added", new_placed))
            continue
        old_placed = old.containers[reverse[new_ident]]
        changes.extend(_container_pair_changes(old_placed, new_placed, mapping))
        changes.extend(_reorder_change(old_placed, new_placed, mapping, field_match, content_pairs))
    for new_ident, new_placed in new.contents.items():
        if new_ident not in reverse_content:
            changes.append(_layout_presence("added", new_placed))
            continue
        changes.extend(_container_pair_changes(old.contents[reverse_content[new_ident]], new_placed, mapping))
    return changes


def _match_contents(old: _Tree, new: _Tree, mapping: _ContainerMap) -> dict[NodeId, NodeId]:
    """Static blocks: a unique key wherever it went, else the same place."""
    new_by_key = _unique_by_key(new.contents.values())
    pairs = {
        placed.ident: new_by_key[key].ident
        for key, placed in _unique_by_key(old.contents.values()).items()
        if key in new_by_key
    }
    claimed = set(pairs.values())
    for old_ident in old.contents:
        candidate = mapping.translate(old_ident)
        if old_ident not in pairs and candidate in new.contents and candidate not in claimed:
            pairs[old_ident] = candidate
            claimed.add(candidate)
    return pairs


def _layout_presence(action: Action, placed: _Placed) -> Change:
    node = placed.node
    title = node.title if isinstance(node, ContainerNode | ContentNode) else None
    added = action == "added"
    return Change(
        kind=ChangeKind.LAYOUT_CHANGED,
        action=action,
        node=node.node,
        key=_human_segment(node),
        old_path=None if added else _container_path(placed),
        new_path=_container_path(placed) if added else None,
        properties={"title": PropertyChange(old=None if added else title, new=title if added else None)},
    )


def _container_pair_changes(old: _Placed, new: _Placed, mapping: _ContainerMap) -> list[Change]:
    changes: list[Change] = []
    key = _human_segment(new.node)
    if mapping.translate(old.parent) != new.parent:
        changes.append(
            Change(
                kind=ChangeKind.LAYOUT_CHANGED,
                action="moved",
                node=new.node.node,
                key=key,
                old_path=_container_path(old),
                new_path=_container_path(new),
            )
        )
    properties = _property_changes(_container_properties(old.node), _container_properties(new.node))
    if old.node.key != new.node.key:
        properties["key"] = PropertyChange(old=old.node.key, new=new.node.key)
    if properties:
        changes.append(
            Change(
                kind=ChangeKind.LAYOUT_CHANGED,
                action="renamed" if set(properties) == {"key"} else "changed",
                node=new.node.node,
                key=key,
                old_key=old.node.key if old.node.key != new.node.key else None,
                old_path=_container_path(old),
                new_path=_container_path(new),
                properties=dict(sorted(properties.items())),
            )
        )
    old_rules, new_rules = _conditions_json(old.node.conditions), _conditions_json(new.node.conditions)
    if old_rules != new_rules:
        changes.append(
            Change(
                kind=ChangeKind.LOGIC_CHANGED,
                action="changed",
                node=new.node.node,
                key=key,
                old_path=_container_path(old),
                new_path=_container_path(new),
                properties={"conditions": PropertyChange(old=old_rules, new=new_rules)},
            )
        )
    return changes


def _reorder_change(
    old: _Placed,
    new: _Placed,
    mapping: _ContainerMap,
    field_match: dict[NodeId, NodeId],
    content_pairs: dict[NodeId, NodeId],
) -> list[Change]:
    """Children present on both sides whose order differs."""

    def counterpart(child: _Placed | _PlacedField) -> NodeId | None:
        if isinstance(child, _PlacedField):
            return field_match.get(child.ident)
        if isinstance(child.node, ContentNode):
            return content_pairs.get(child.ident)
        return mapping.pairs.get(child.ident)

    new_ids = {child.ident for child in new.children}
    old_common = [target for target in map(counterpart, old.children) if target in new_ids]
    old_common_set = set(old_common)
    new_common = [c.ident for c in new.children if c.ident in old_common_set]
    if old_common == new_common:
        return []
    names = {c.ident: _human_segment(c.node) for c in new.children}
    return [
        Change(
            kind=ChangeKind.LAYOUT_CHANGED,
            action="reordered",
            node=new.node.node if new.ident else "form",
            key=_human_segment(new.node) if new.ident else None,
            old_path=old.path,
            new_path=new.path,
            properties={
                "order": PropertyChange(
                    old=[names[i] for i in old_common], new=[names[i] for i in new_common]
                )
            },
        )
    ]


def _conditions_json(conditions: list[Condition]) -> list[JsonValue]:
    return [condition.model_dump(mode="json") for condition in conditions]


def _form_changes(old: FormDefinition, new: FormDefinition) -> list[Change]:
    def properties(defn: FormDefinition) -> dict[str, JsonValue]:
        values: dict[str, JsonValue] = {"key": defn.key, "title": defn.title, "description": defn.description}
        values.update({f"texts.{name}": text for name, text in defn.texts.items()})
        values.update({f"extras.{name}": _jsonable(value) for name, value in defn.extras.items()})
        return values

    changed = _property_changes(properties(old), properties(new))
    if not changed:
        return []
    return [
        Change(kind=ChangeKind.FORM_CHANGED, action="changed", node="form", key=new.key, properties=changed)
    ]


def _form_logic_changes(old: list[Condition], new: list[Condition]) -> list[Change]:
    """Form-level rules: a rule with the same effect and subject on both sides is a changed rule."""
    old_rules, new_rules = _conditions_json(old), _conditions_json(new)
    if old_rules == new_rules:
        return []
    new_left = list(range(len(new_rules)))
    unchanged: list[tuple[int, int]] = []
    for i, rule in enumerate(old_rules):
        match = next((j for j in new_left if new_rules[j] == rule), None)
        if match is not None:
            unchanged.append((i, match))
            new_left.remove(match)
    old_left = [i for i in range(len(old_rules)) if i not in {i for i, _ in unchanged}]
    changes: list[Change] = []
    for i in old_left:
        subject = _rule_subject(old[i])
        match = next((j for j in new_left if _rule_subject(new[j]) == subject), None)
        if match is None:
            changes.append(_rule_change("removed", old_rules[i], None))
        else:
            new_left.remove(match)
            changes.append(_rule_change("changed", old_rules[i], new_rules[match]))
    changes.extend(_rule_change("added", None, new_rules[j]) for j in new_left)
    if not changes:
        changes.append(
            Change(
                kind=ChangeKind.LOGIC_CHANGED,
                action="reordered",
                node="form",
                properties={"logic": PropertyChange(old=old_rules, new=new_rules)},
            )
        )
    return changes


def _rule_subject(rule: Condition) -> tuple[str, tuple[str, ...], str | None]:
    return (rule.effect.value, tuple(rule.depends_on), rule.when)


def _rule_change(action: Action, old: JsonValue, new: JsonValue) -> Change:
    return Change(
        kind=ChangeKind.LOGIC_CHANGED,
        action=action,
        node="form",
        properties={"rule": PropertyChange(old=old, new=new)},
    )


def _assemble(changes: list[Change]) -> DefinitionDiff:
    def count(kind: ChangeKind) -> int:
        return sum(1 for change in changes if change.kind is kind)

    conditional_fields = sum(
        1 for c in changes if c.kind is ChangeKind.FIELD_CHANGED and "conditions" in c.properties
    )
    diff = DefinitionDiff(
        summary="",
        changes=changes,
        added=count(ChangeKind.FIELD_ADDED),
        removed=count(ChangeKind.FIELD_REMOVED),
        changed=count(ChangeKind.FIELD_CHANGED),
        moved=count(ChangeKind.FIELD_MOVED),
        renamed=count(ChangeKind.FIELD_RENAMED),
        layout=count(ChangeKind.LAYOUT_CHANGED),
        logic=count(ChangeKind.LOGIC_CHANGED) + conditional_fields,
    )
    diff.summary = _summary(diff, form_changed=count(ChangeKind.FORM_CHANGED) > 0)
    return diff


def _summary(diff: DefinitionDiff, *, form_changed: bool) -> str:
    if diff.is_empty:
        return "no changes"
    counts = [
        (diff.added, "added"),
        (diff.removed, "removed"),
        (diff.changed, "changed"),
        (diff.moved, "moved"),
        (diff.renamed, "renamed"),
    ]
    field_parts = [f"{n} {word}" for n, word in counts if n]
    parts: list[str] = []
    if field_parts:
        first = next(n for n, _ in counts if n)
        field_parts[0] = field_parts[0].replace(" ", " field " if first == 1 else " fields ", 1)
        parts.append(", ".join(field_parts))
    if diff.layout:
        parts.append("layout changed")
    if diff.logic:
        parts.append(f"{diff.logic} rule{'s' if diff.logic != 1 else ''} changed")
    if form_changed:
        parts.append("form texts changed")
    return "; ".join(parts)

"""The resolved layout every output is drawn from: widgets, ids, labels, options, values and diff marks."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ingest.diff import Change, DefinitionDiff
from ingest.model import (
    ColumnNode,
    ColumnsNode,
    Condition,
    ContentNode,
    FieldNode,
    FormDefinition,
    GroupNode,
    LayoutNode,
    Option,
    PageNode,
    RepeatNode,
    SectionNode,
    WidgetKind,
)
from render.phrases import PHRASES, detect_language
from render.text import markup_paragraphs, plain_paragraphs, plain_text
from render.widgets import WidgetChoice, WidgetMapping

Control = Literal["input", "textarea", "select", "choices", "checkbox", "hidden"]
DiffAction = Literal["added", "removed", "changed", "moved", "renamed"]

_MAX_ID_SEGMENT = 40
_MAX_ROWS = 200
_TRUE_WORDS = frozenset({"true", "on", "yes", "ja", "y", "1", "checked"})
# The HTML input type, inputmode and autocomplete token of each widget rendered as an <input>.
_INPUT_ATTRIBUTES: dict[WidgetKind, dict[str, str]] = {
    WidgetKind.TEXT: {"type": "text"},
    WidgetKind.NUMBER: {"type": "number"},
    WidgetKind.CURRENCY: {"type": "text", "inputmode": "decimal"},
    WidgetKind.DATE: {"type": "date"},
    WidgetKind.MONTH: {"type": "month"},
    WidgetKind.YEAR: {"type": "number", "min": "1800", "max": "2200", "step": "1"},
    WidgetKind.TIME: {"type": "time"},
    WidgetKind.DATETIME: {"type": "datetime-local"},
    WidgetKind.EMAIL: {"type": "email", "autocomplete": "email"},
    WidgetKind.PHONE: {"type": "tel", "autocomplete": "tel"},
    WidgetKind.URL: {"type": "url", "autocomplete": "url"},
    WidgetKind.FILE: {"type": "file"},
    WidgetKind.PERSON_NAME: {"type": "text", "autocomplete": "name"},
    WidgetKind.COUNTRY: {"type": "text", "autocomplete": "country-name"},
    WidgetKind.IDENTITY_NUMBER: {"type": "text", "inputmode": "numeric"},
    WidgetKind.ORGANISATION_NUMBER: {"type": "text", "inputmode": "numeric"},
    WidgetKind.BANK_ACCOUNT: {"type": "text", "inputmode": "numeric"},
    WidgetKind.SIGNATURE: {"type": "text"},
    WidgetKind.PASSWORD: {"type": "password", "autocomplete": "off"},
    WidgetKind.HIDDEN: {"type": "hidden"},
}
_VALUE_FORMATS = {
    "date": re.compile(r"\d{4}-\d{2}-\d{2}"),
    "month": re.compile(r"\d{4}-\d{2}"),
    "time": re.compile(r"\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?"),
    "datetime-local": re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?"),
    "number": re.compile(r"-?(\d+(\.\d+)?|\.\d+)([eE][-+]?\d+)?"),
}
_CHOICE_WIDGETS = frozenset(
    {WidgetKind.RADIO, WidgetKind.CHECKBOX_GROUP, WidgetKind.YES_NO, WidgetKind.RATING}
)
_OPTION_WIDGETS = _CHOICE_WIDGETS | {WidgetKind.SELECT, WidgetKind.COUNTRY, WidgetKind.MATRIX}


@dataclass
class OptionView:
    id: str
    value: Any
    text_value: str
    label: str
    selected: bool


@dataclass
class DiffMark:
    action: DiffAction
    text: str
    detail: str = ""


@dataclass
class FieldView:
    id: str
    key: str
    label: str
    choice: WidgetChoice
    control: Control
    input_type: str
    required: bool
    help_text: str | None
    help_id: str | None
    placeholder: str | None
    options: list[OptionView]
    value: str
    checked: bool
    multi_choice: bool
    attributes: dict[str, str]
    conditions: list[dict[str, Any]]
    simple_conditions: list[dict[str, Any]]
    diff: DiffMark | None = None
    disabled: bool = False
    name: str = ""
    node: Literal["field"] = "field"

    @property
    def widget(self) -> WidgetKind:
        """The widget this field renders as."""
        return self.choice.widget

    @property
    def labelled(self) -> bool:
        """False only for hidden inputs, which carry no visible label."""
        return self.control != "hidden"


@dataclass
class ContentView:
    title: str | None
    paragraphs: list[str]
    conditions: list[dict[str, Any]]
    simple_conditions: list[dict[str, Any]]
    node: Literal["content"] = "content"


@dataclass
class RowView:
    label: str
    children: list[NodeView]


@dataclass
class ContainerView:
    node: str
    id: str
    key: str | None
    title: str
    heading_level: int
    description: list[str]
    children: list[NodeView]
    rows: list[RowView]
    conditions: list[dict[str, Any]]
    simple_conditions: list[dict[str, Any]]
    width: int | None = None


NodeView = FieldView | ContentView | ContainerView
_Container = PageNode | SectionNode | GroupNode | ColumnsNode | ColumnNode | RepeatNode


@dataclass
class FormView:
    key: str
    title: str
    lang: str
    description: list[str]
    children: list[NodeView]
    phrases: dict[str, str]
    diff_summary: str | None = None
    has_required: bool = False
    fields: list[FieldView] = field(default_factory=list)


class _Ids:
    """Unique, safe element ids derived from field paths."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def make(self, *segments: str) -> str:
        slug = "-".join(_slug(segment) for segment in segments if segment) or "x"
        candidate, suffix = f"pf-{slug}", 1
        while candidate in self._taken:
            suffix += 1
            candidate = f"pf-{slug}-{suffix}"
        self._taken.add(candidate)
        return candidate


def _slug(segment: str) -> str:
    slug = re.sub(r"[^a-z0-9_]+", "-", segment.lower()).strip("-")
    return slug[:_MAX_ID_SEGMENT] or "x"


@dataclass
class _DiffIndex:
    """The field changes of a diff, looked up by key and container path."""

    marks: dict[tuple[str, tuple[str, ...]], Change]
    by_key: dict[str, Change]
    removed: list[Change]
    old: FormDefinition | None

    @classmethod
    def of(cls, diff: DefinitionDiff, old: FormDefinition | None) -> _DiffIndex:
        marks: dict[tuple[str, tuple[str, ...]], Change] = {}
        by_key: dict[str, Change] = {}
        removed: list[Change] = []
        for change in diff.changes:
            if change.node != "field" or change.key is None:
                continue
            if change.action == "removed":
                removed.append(change)
                continue
            marks.setdefault((change.key, tuple(change.new_path or ())), change)
            by_key.setdefault(change.key, change)
        return cls(marks, by_key, removed, old)

    def change_for(self, key: str, path: tuple[str, ...]) -> Change | None:
        return self.marks.get((key, path)) or self.by_key.get(key)


class _Builder:
    def __init__(
        self,
        defn: FormDefinition,
        widgets: WidgetMapping,
        data: Mapping[str, Any] | None,
        diff: _DiffIndex | None,
    ) -> None:
        fields = defn.fields()
        if len(fields) != len(widgets):
            raise ValueError(f"widget mapping has {len(widgets)} choices for {len(fields)} fields")
        self.choices = {id(node): widgets[index] for index, node in enumerate(fields)}
        self.data = dict(data or {})
        self.diff = diff
        self.ids = _Ids()
        self.lang = detect_language(defn)
        self.phrases = PHRASES[self.lang]
        self.fields: list[FieldView] = []
        self.placed_removed: set[int] = set()
        self.page_number = 0
        self.name_prefix = ""

    def nodes(
        self, nodes: list[LayoutNode], scope: Mapping[str, Any], path: tuple[str, ...], level: int, row: str
    ) -> list[NodeView]:
        views: list[NodeView] = []
        for node in nodes:
            if isinstance(node, FieldNode):
                views.append(self.field(node, scope, path, row))
            elif isinstance(node, ContentNode):
                views.append(self.content(node))
            else:
                views.append(self.container(node, scope, path, level, row))
        views.extend(self.removed_here(path, row))
        return views

    def container(
        self, node: _Container, scope: Mapping[str, Any], path: tuple[str, ...], level: int, row: str
    ) -> ContainerView:
        inner_path = (*path, node.key or node.title or node.node)
        title = plain_text(node.title or "")
        inner_scope = scope
        if isinstance(node, GroupNode) and node.key and isinstance(scope.get(node.key), Mapping):
            inner_scope = scope[node.key]
        if isinstance(node, PageNode):
            self.page_number += 1
            title = title or f"{self.phrases['page']} {self.page_number}"
        if isinstance(node, RepeatNode):
            title = plain_text(node.label) or title
        if isinstance(node, GroupNode | RepeatNode) and not title:
            title = _humanise(node.key or "") or self.phrases["group"]
        heading_level = 2 if isinstance(node, PageNode) else min(level, 6)
        element_id = self.ids.make(*path, row, node.key or node.title or node.node)
        child_level = level + 1 if isinstance(node, PageNode | SectionNode) and title else level
        if isinstance(node, PageNode):
            child_level = 3
        conditions, simple = _conditions(node.conditions)
        view = ContainerView(
            node=node.node,
            id=element_id,
            key=node.key,
            title=title,
            heading_level=heading_level,
            description=plain_paragraphs(node.description or ""),
            children=[],
            rows=[],
            conditions=conditions,
            simple_conditions=simple,
            width=node.width if isinstance(node, ColumnNode) else None,
        )
        if isinstance(node, RepeatNode):
            view.rows = self.rows(node, scope, inner_path, child_level, row)
        else:
            view.children = self.nodes(node.children, inner_scope, inner_path, child_level, row)
        return view

    def rows(
        self, node: RepeatNode, scope: Mapping[str, Any], path: tuple[str, ...], level: int, row: str
    ) -> list[RowView]:
        given = scope.get(node.key) if node.key else None
        row_data = [item for item in given if isinstance(item, Mapping)] if isinstance(given, list) else []
        row_data = row_data[:_MAX_ROWS] or [{}]
        outer_prefix, views = self.name_prefix, []
        for number, item in enumerate(row_data, start=1):
            # One row keeps plain keys as names; several rows need their own radio groups, so row names.
            if len(row_data) > 1:
                self.name_prefix = f"{outer_prefix}{node.key or 'row'}[{number - 1}]."
            children = self.nodes(node.children, item, path, level, f"{row}r{number}")
            views.append(RowView(label=f"{self.phrases['row']} {number}", children=children))
        self.name_prefix = outer_prefix
        return views

    def content(self, node: ContentNode) -> ContentView:
        conditions, simple = _conditions(node.conditions)
        paragraphs = markup_paragraphs(node.text) if node.html else plain_paragraphs(node.text)
        return ContentView(
            title=plain_text(node.title) if node.title else None,
            paragraphs=paragraphs,
            conditions=conditions,
            simple_conditions=simple,
        )

    def field(
        self,
        node: FieldNode,
        scope: Mapping[str, Any],
        path: tuple[str, ...],
        row: str,
        choice: WidgetChoice | None = None,
        mark: DiffMark | None = None,
    ) -> FieldView:
        choice = choice or self.choices.get(id(node)) or WidgetChoice(node.kind, node.source_type, "kind")
        if mark is None and self.diff is not None:
            change = self.diff.change_for(node.key, path)
            mark = _mark(change, self.phrases) if change else None
        element_id = self.ids.make(*path, row, node.key)
        value = scope[node.key] if node.key in scope else self.data.get(node.key, node.default)
        view = _field_view(node, choice, element_id, value, self.phrases)
        view.name = self.name_prefix + node.key
        view.diff = mark
        view.disabled = mark is not None and mark.action == "removed"
        if node.help_text:
            view.help_id = f"{element_id}--help"
        self.fields.append(view)
        return view

    def removed_here(self, path: tuple[str, ...], row: str) -> list[FieldView]:
        if self.diff is None:
            return []
        views = []
        for index, change in enumerate(self.diff.removed):
            if index in self.placed_removed or tuple(change.old_path or ()) != path:
                continue
            self.placed_removed.add(index)
            views.append(self.removed_field(change, path, row))
        return views

    def removed_field(self, change: Change, path: tuple[str, ...], row: str) -> FieldView:
        assert self.diff is not None
        assert change.key is not None
        old_node = _find_old_field(self.diff.old, change)
        if old_node is None:
            label = change.properties.get("label")
            old_node = FieldNode(key=change.key, label=str(label.old) if label and label.old else change.key)
        kind = old_node.kind if old_node.kind is not WidgetKind.CUSTOM else WidgetKind.TEXT
        choice = WidgetChoice(kind, old_node.source_type, "kind" if kind is old_node.kind else "fallback")
        mark = DiffMark("removed", self.phrases["removed"])
        return self.field(old_node, {}, path, row, choice=choice, mark=mark)

    def unplaced_removed(self) -> list[FieldView]:
        if self.diff is None:
            return []
        return [
            self.removed_field(change, (), "removed")
            for index, change in enumerate(self.diff.removed)
            if index not in self.placed_removed
        ]


def build_view(
    defn: FormDefinition,
    *,
    widgets: WidgetMapping,
    data: Mapping[str, Any] | None = None,
    diff: DefinitionDiff | None = None,
    old: FormDefinition | None = None,
) -> FormView:
    """The resolved layout of a definition, optionally prefilled and marked with a diff."""
    builder = _Builder(defn, widgets, data, _DiffIndex.of(diff, old) if diff is not None else None)
    has_pages = any(isinstance(node, PageNode) for node in defn.layout)
    children = builder.nodes(defn.layout, builder.data, (), 3 if has_pages else 2, "")
    leftovers = builder.unplaced_removed()
    if leftovers:
        children.append(
            ContainerView(
                node="section",
                id=builder.ids.make("removed-fields"),
                key=None,
                title=builder.phrases["removed_fields"],
                heading_level=2,
                description=[],
                children=list(leftovers),
                rows=[],
                conditions=[],
                simple_conditions=[],
            )
        )
    return FormView(
        key=defn.key,
        title=plain_text(defn.title) or defn.key,
        lang=builder.lang,
        description=plain_paragraphs(defn.description or ""),
        children=children,
        phrases=builder.phrases,
        diff_summary=diff.summary if diff is not None else None,
        has_required=any(view.required for view in builder.fields),
        fields=builder.fields,
    )


def _field_view(
    node: FieldNode, choice: WidgetChoice, element_id: str, value: Any, phrases: dict[str, str]
) -> FieldView:
    widget = choice.widget
    options = (
        [o for o in node.options if o.label.strip() or _as_text(o.value)] if widget in _OPTION_WIDGETS else []
    )
    if widget is WidgetKind.YES_NO and not options:
        options = _yes_no_options(node, phrases)
    if widget is WidgetKind.RATING and not options:
        options = [Option(value=number, label=str(number)) for number in range(1, 6)]
    multi_choice = widget is WidgetKind.CHECKBOX_GROUP or (widget is WidgetKind.SELECT and node.multiple)
    control = _control(widget, options)
    selected = _selected_values(value, multi_choice)
    option_views = [
        OptionView(
            id=f"{element_id}--{number}",
            value=option.value,
            text_value=_as_text(option.value),
            label=plain_text(option.label) or _as_text(option.value),
            selected=_as_text(option.value) in selected,
        )
        for number, option in enumerate(options, start=1)
    ]
    attributes = dict(_INPUT_ATTRIBUTES.get(widget, {})) if control == "input" else {}
    if control == "input" and "type" not in attributes:
        attributes["type"] = "text"
    _add_validation(node, control, attributes)
    if widget is WidgetKind.FILE and node.multiple:
        attributes["multiple"] = ""
    conditions, simple = _conditions(node.conditions)
    input_type = attributes.pop("type", "")
    return FieldView(
        id=element_id,
        key=node.key,
        label=plain_text(node.label) or _humanise(node.key) or node.key,
        choice=choice,
        control=control,
        input_type=input_type,
        required=node.required,
        help_text=plain_text(node.help_text) if node.help_text else None,
        help_id=None,
        placeholder=plain_text(node.placeholder) if node.placeholder else None,
        options=option_views,
        value=_input_value(input_type, value),
        checked=control == "checkbox" and _is_true(value),
        multi_choice=multi_choice,
        attributes=attributes,
        conditions=conditions,
        simple_conditions=simple,
    )


def _control(widget: WidgetKind, options: list[Option]) -> Control:
    if widget is WidgetKind.HIDDEN:
        return "hidden"
    if widget is WidgetKind.CHECKBOX:
        return "checkbox"
    if widget in {WidgetKind.TEXTAREA, WidgetKind.ADDRESS, WidgetKind.MATRIX} and not options:
        return "textarea"
    if not options:
        return "input"
    if widget in {WidgetKind.SELECT, WidgetKind.COUNTRY}:
        return "select"
    return "choices"


def _yes_no_options(node: FieldNode, phrases: dict[str, str]) -> list[Option]:
    # bcgov's SurveyJS `yesno` stores y/n; SurveyJS `boolean` stores true/false.
    if node.source_type == "yesno":
        values: tuple[Any, Any] = ("y", "n")
    elif node.source_type == "boolean":
        values = (True, False)
    else:
        values = ("yes", "no")
    return [Option(value=values[0], label=phrases["yes"]), Option(value=values[1], label=phrases["no"])]


def _add_validation(node: FieldNode, control: Control, attributes: dict[str, str]) -> None:
    rules = node.validation
    text_like = attributes.get("type", "text") in {"text", "email", "tel", "url", ""}
    if control in {"input", "textarea"} and text_like:
        if rules.max_length is not None and rules.max_length > 0:
            attributes["maxlength"] = str(rules.max_length)
        if rules.min_length is not None and 0 < rules.min_length <= (rules.max_length or rules.min_length):
            attributes["minlength"] = str(rules.min_length)
    if control == "input" and attributes.get("type") == "number":
        if rules.minimum is not None:
            attributes["min"] = _number(rules.minimum)
        if rules.maximum is not None and (rules.minimum is None or rules.maximum >= rules.minimum):
            attributes["max"] = _number(rules.maximum)
    if (
        node.placeholder
        and control in {"input", "textarea"}
        and attributes.get("type")
        in {
            None,
            "text",
            "email",
            "tel",
            "url",
            "number",
            "password",
        }
    ):
        attributes["placeholder"] = plain_text(node.placeholder)


def _input_value(input_type: str, value: Any) -> str:
    """The value as an input of this type accepts it; empty when it would not parse."""
    if value is None or isinstance(value, Mapping | list):
        return ""
    text = _as_text(value)
    pattern = _VALUE_FORMATS.get(input_type)
    return text if pattern is None or pattern.fullmatch(text) else ""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _conditions(conditions: list[Condition]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """All conditions as JSON, and the simple show/hide ones a browser evaluates."""
    every = [item.model_dump(mode="json", exclude_none=True, exclude={"raw"}) for item in conditions]
    simple = [
        {"effect": condition.effect.value, "when": condition.when, "op": condition.operator}
        | {"value": condition.value}
        for condition in conditions
        if condition.effect.value in {"show", "hide"} and condition.when and condition.operator
    ]
    return every, simple


def _mark(change: Change, phrases: dict[str, str]) -> DiffMark:
    action: DiffAction = "changed"
    if change.action in {"added", "moved", "renamed"}:
        action = change.action
    detail = ", ".join(sorted(change.properties)) if action in {"changed", "renamed"} else ""
    if change.action == "renamed" and change.old_key:
        detail = f"{change.old_key} → {change.key}" + (f"; {detail}" if detail else "")
    return DiffMark(action, phrases[action], detail)


def _find_old_field(old: FormDefinition | None, change: Change) -> FieldNode | None:
    if old is None:
        return None
    wanted = tuple(change.old_path or ())
    candidates = [
        node
        for path, node in _walk_human(old.layout, ())
        if isinstance(node, FieldNode) and node.key == change.key and path == wanted
    ]
    return candidates[0] if candidates else None


def _walk_human(nodes: list[LayoutNode], path: tuple[str, ...]) -> list[tuple[tuple[str, ...], LayoutNode]]:
    found: list[tuple[tuple[str, ...], LayoutNode]] = []
    for node in nodes:
        found.append((path, node))
        if isinstance(node, _Container):
            found.extend(_walk_human(node.children, (*path, node.key or node.title or node.node)))
    return found


def _selected_values(value: Any, multi: bool) -> set[str]:
    if value is None:
        return set()
    if isinstance(value, Mapping):
        return {str(key) for key, ticked in value.items() if _is_true(ticked)}
    if isinstance(value, list):
        return {_as_text(item) for item in value}
    return {_as_text(value)}


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return _number(value) if isinstance(value, float) else str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _is_true(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    return isinstance(value, str) and value.strip().lower() in _TRUE_WORDS


def _humanise(key: str) -> str:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", key)
    words = re.split(r"[\s_\-.]+", spaced)
    return " ".join(word for word in words if word).capitalize()

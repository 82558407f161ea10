"""A form definition as a JSON render tree, for clients that draw forms themselves."""

from __future__ import annotations

from typing import Any

from ingest.model import FormDefinition
from render.view import ContainerView, ContentView, FieldView, NodeView, build_view
from render.widgets import WidgetMapping


def render_tree(
    defn: FormDefinition, *, widgets: WidgetMapping, data: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The resolved layout as JSON: every node with its widget mapping, label, options and value."""
    view = build_view(defn, widgets=widgets, data=data)
    return {
        "key": view.key,
        "title": view.title,
        "lang": view.lang,
        "description": view.description,
        "widgets": {
            "fields": len(widgets),
            "semantic": widgets.semantic,
            "fallback": widgets.fallbacks,
        },
        "children": [_node(child) for child in view.children],
    }


def _node(view: NodeView) -> dict[str, Any]:
    if isinstance(view, FieldView):
        return _field(view)
    if isinstance(view, ContentView):
        return {
            "node": "content",
            "title": view.title,
            "paragraphs": view.paragraphs,
            "conditions": view.conditions,
        }
    return _container(view)


def _field(view: FieldView) -> dict[str, Any]:
    return {
        "node": "field",
        "id": view.id,
        "key": view.key,
        "name": view.name,
        "label": view.label,
        **view.choice.as_json(),
        "control": view.control,
        "input_type": view.input_type or None,
        "required": view.required,
        "multiple": view.multi_choice,
        "help_text": view.help_text,
        "placeholder": view.placeholder,
        "options": [
            {"value": option.value, "label": option.label, "selected": option.selected}
            for option in view.options
        ],
        "value": view.checked if view.control == "checkbox" else view.value or None,
        "attributes": view.attributes,
        "conditions": view.conditions,
    }


def _container(view: ContainerView) -> dict[str, Any]:
    tree: dict[str, Any] = {
        "node": view.node,
        "id": view.id,
        "key": view.key,
        "title": view.title,
        "description": view.description,
        "conditions": view.conditions,
    }
    if view.node == "repeat":
        tree["rows"] = [[_node(child) for child in row.children] for row in view.rows]
    else:
        tree["children"] = [_node(child) for child in view.children]
    if view.width is not None:
        tree["width"] = view.width
    return tree

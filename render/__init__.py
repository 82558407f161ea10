"""LayoutRenderer internals: the canonical model as HTML and a JSON render tree, custom types by meaning."""

from render.assets import CSP
from render.html import render_html
from render.tree import render_tree
from render.widgets import (
    KNOWN_WIDGET_DESCRIPTIONS,
    SemanticMatcher,
    WidgetChoice,
    WidgetMapping,
    resolve_widgets,
)

__all__ = [
    "CSP",
    "KNOWN_WIDGET_DESCRIPTIONS",
    "SemanticMatcher",
    "WidgetChoice",
    "WidgetMapping",
    "render_html",
    "render_tree",
    "resolve_widgets",
]

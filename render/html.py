"""A form definition as one complete, standalone, accessible HTML5 document."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from ingest.diff import DefinitionDiff
from ingest.model import FormDefinition
from render.assets import CONDITION_SCRIPT, CSP_META, STYLESHEET, page_template
from render.view import build_view
from render.widgets import WidgetMapping


def render_html(
    defn: FormDefinition,
    *,
    widgets: WidgetMapping,
    data: dict[str, Any] | None = None,
    diff: DefinitionDiff | None = None,
    title: str | None = None,
    old: FormDefinition | None = None,
) -> str:
    """The form as an HTML page: prefilled with `data`, and with `diff` (from `old`) marked when given."""
    view = build_view(defn, widgets=widgets, data=data, diff=diff, old=old)
    return page_template().render(
        form=view,
        phrases=view.phrases,
        title=title or view.title,
        csp=CSP_META,
        css=Markup(STYLESHEET),
        script=Markup(CONDITION_SCRIPT),
    )

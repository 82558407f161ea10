"""Shared helpers for render tests: small definitions built from the canonical model."""

from __future__ import annotations

from typing import Any

from ingest.model import FormDefinition
from render import render_html, resolve_widgets
from tests.unit.render.parsed import ParsedPage


def definition(layout: list[dict[str, Any]], **form: Any) -> FormDefinition:
    """A native definition from plain layout dicts."""
    return FormDefinition.model_validate({"key": "test-form", "title": "Test form", **form, "layout": layout})


def render_page(defn: FormDefinition, **options: Any) -> tuple[str, ParsedPage]:
    """The HTML of a definition (custom types as text inputs) and its parsed page."""
    html = render_html(defn, widgets=resolve_widgets(defn, matcher=None), **options)
    return html, ParsedPage(html)

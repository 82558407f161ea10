"""PageForge's own format: the canonical model written out as JSON (or YAML)."""

from __future__ import annotations

from typing import Any

from ingest.errors import DefinitionError
from ingest.model import FormDefinition


def import_native(doc: dict[str, Any], *, key: str | None = None) -> FormDefinition:
    """Read a native definition; `key` overrides the key written in it."""
    if not isinstance(doc, dict):
        raise DefinitionError("a native definition must be an object")
    if key is not None:
        doc = {**doc, "key": key}
    return FormDefinition.model_validate(doc)


def export_native(defn: FormDefinition) -> dict[str, Any]:
    """The JSON-able native document of a definition; import_native reads it back unchanged."""
    exported: dict[str, Any] = defn.model_dump(mode="json")
    return exported

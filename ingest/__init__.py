"""Canonical form model, format importers, content hashing, diffs and layout text: pure code, no I/O."""

from ingest.diff import DefinitionDiff, diff_definitions
from ingest.errors import DefinitionError
from ingest.hashing import content_hash
from ingest.model import FormDefinition, SourceFormat
from ingest.native import export_native
from ingest.parse import detect_format, import_definition, parse_document
from ingest.text import layout_text

__all__ = [
    "DefinitionDiff",
    "DefinitionError",
    "FormDefinition",
    "SourceFormat",
    "content_hash",
    "detect_format",
    "diff_definitions",
    "export_native",
    "import_definition",
    "layout_text",
    "parse_document",
]

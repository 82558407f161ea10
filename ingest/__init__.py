"""Canonical form model, format importers, content hashing: pure code, no I/O."""

from ingest.errors import DefinitionError
from ingest.hashing import content_hash
from ingest.model import FormDefinition, SourceFormat
from ingest.native import export_native
from ingest.parse import detect_format, import_definition, parse_document

__all__ = [
    "DefinitionError",
    "FormDefinition",
    "SourceFormat",
    "content_hash",
    "detect_format",
    "export_native",
    "import_definition",
    "parse_document",
]

"""Request and response bodies of the SysVersionProcessor."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Any

from fastapi.openapi.models import Example
from pydantic import BaseModel, ConfigDict, Field, field_validator


class PinExisting(BaseModel):
    """Pin a version the form already has."""

    model_config = ConfigDict(extra="forbid")

    form_key: str
    version_id: str


class PinInline(BaseModel):
    """Pin a definition; it is ingested as a version of the form (or found, when the content exists)."""

    model_config = ConfigDict(extra="forbid")

    form_key: str
    format: str | None = Field(
        default=None, description="formio, surveyjs, jsonschema or native; detected when omitted."
    )
    definition: dict[str, Any] | str = Field(
        description="The definition as a JSON object, or as JSON/YAML text."
    )


class ReleaseCreate(BaseModel):
    """A release manifest: its name, where it comes from, and the form versions it ships."""

    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1, max_length=200, description="The release name, e.g. 2024.3.")
    parents: list[str] | None = Field(
        default=None,
        description="Parent release ids. Omitted: the system's latest release. []: a new root.",
        max_length=32,
    )
    forms: list[PinExisting | PinInline] = Field(
        min_length=1, max_length=1000, description="One entry per form: an existing version or a definition."
    )

    @field_validator("version")
    @classmethod
    def _printable(cls, version: str) -> str:
        """A release name is shown and matched as typed: it needs visible text and no control characters."""
        if not version.strip():
            raise ValueError("a release name needs a visible character")
        controls = sorted({f"U+{ord(c):04X}" for c in version if unicodedata.category(c) == "Cc"})
        if controls:
            raise ValueError(f"a release name holds no control characters (found {', '.join(controls)})")
        return version


class PinRead(BaseModel):
    form_key: str
    version_id: str
    number: int
    content_hash: str


class FormChangeRead(BaseModel):
    form_key: str
    from_version_id: str
    to_version_id: str
    summary: str


class ReleaseDiffRead(BaseModel):
    parent_id: str
    parent_version: str
    summary: str
    forms_added: list[str]
    forms_removed: list[str]
    forms_changed: list[FormChangeRead]
    forms_unchanged_count: int


class ReleaseRead(BaseModel):
    id: str
    system_key: str
    version: str
    number: int = Field(description="Position of the release in its system, in created order.")
    created_at: datetime
    parents: list[str]
    pins: list[PinRead]
    diffs: list[ReleaseDiffRead]


class ReleaseCreated(ReleaseRead):
    created: bool = Field(description="False when the system already had this release with these pins.")


class ReleaseSummary(BaseModel):
    id: str
    system_key: str
    version: str
    number: int
    created_at: datetime
    parents: list[str]
    pin_count: int


class SystemRead(BaseModel):
    key: str
    release_count: int
    latest_release_id: str | None
    created_at: datetime


RELEASE_EXAMPLES: dict[str, Example] = {
    "inline": {
        "summary": "A release pinning a form by its definition (ingested, or found when it exists)",
        "value": {
            "version": "2024.3",
            "forms": [
                {
                    "form_key": "contact",
                    "definition": {
                        "display": "form",
                        "title": "Contact details",
                        "components": [
                            {"type": "textfield", "key": "name", "label": "Full name", "input": True},
                            {"type": "email", "key": "email", "label": "E-mail", "input": True},
                        ],
                    },
                }
            ],
        },
    },
    "pinned": {
        "summary": "A release pinning an existing version, derived from an earlier release",
        "value": {
            "version": "2024.4",
            "parents": ["6f1c2a9e-4b7d-4c1e-9a55-0d3e8b2f7c41"],
            "forms": [{"form_key": "contact", "version_id": "0b8e5d7a-2c4f-4e61-8f3a-9d1b6c5e4a72"}],
        },
    },
}

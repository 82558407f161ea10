"""Request and query shapes of the render endpoints."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, JsonValue


class RenderFormat(StrEnum):
    HTML = "html"
    JSON = "json"
    PDF = "pdf"


class DiffFormat(StrEnum):
    HTML = "html"
    PDF = "pdf"


class RenderPrefill(BaseModel):
    """Values to show in the rendered inputs, by field key (nested objects and lists for groups/repeats)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    data: dict[str, JsonValue] = Field(default_factory=dict)


MEDIA_TYPES: dict[str, str] = {
    RenderFormat.HTML: "text/html; charset=utf-8",
    RenderFormat.JSON: "application/json",
    RenderFormat.PDF: "application/pdf",
}

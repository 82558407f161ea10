"""Request and response bodies of the similar-layout queries."""

from __future__ import annotations

from typing import Any, Literal

from fastapi.openapi.models import Example
from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_K = 100

Scope = Literal["all", "lineage", "exclude-lineage"]
GroupBy = Literal["form"]


class LayoutFilters(BaseModel):
    """Payload filters applied inside the vector query (the tenant filter always is)."""

    model_config = ConfigDict(extra="forbid")

    form_keys: list[str] | None = Field(
        default=None, max_length=100, description="Only versions of these forms."
    )
    system: str | None = Field(default=None, description="Only versions pinned by a release of this system.")
    release: str | None = Field(default=None, description="Only versions pinned by this release (its id).")


class LayoutSearch(BaseModel):
    """Find layouts like a text or an example definition; exactly one of the two."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, max_length=10_000)
    definition: dict[str, Any] | str | None = Field(default=None, description="An example definition.")
    format: str | None = Field(default=None, description="Format of the definition; detected when omitted.")
    k: int = Field(default=10, ge=1, le=MAX_K)
    filters: LayoutFilters = Field(default_factory=LayoutFilters)
    group_by: GroupBy | None = Field(default=None, description="form: the best version of each form.")


class LayoutRecommend(BaseModel):
    """Find layouts like the positive examples and unlike the negative ones."""

    model_config = ConfigDict(extra="forbid")

    positive: list[str] = Field(min_length=1, max_length=32)
    negative: list[str] = Field(default_factory=list, max_length=32)
    k: int = Field(default=10, ge=1, le=MAX_K)
    filters: LayoutFilters = Field(default_factory=LayoutFilters)

    @model_validator(mode="after")
    def _one_side_each(self) -> LayoutRecommend:
        """A version on both sides asks for layouts like and unlike it at once."""
        both = sorted(set(self.positive) & set(self.negative))
        if both:
            raise ValueError(f"a version is a positive or a negative example, not both: {', '.join(both)}")
        return self


class SimilarHit(BaseModel):
    """One similar layout with its lineage context."""

    version_id: str
    form_key: str
    number: int
    score: float
    is_latest: bool = Field(
        description="True when no version derives from this one (as the layout index has it: it follows "
        "each write through the outbox, like the hits themselves)."
    )
    pin_count: int = Field(description="How many releases pin this version (as the layout index has it).")


class SimilarResults(BaseModel):
    items: list[SimilarHit]


class ParentSuggestion(SimilarHit):
    """One layout the version was likely made from: its likeliest version, and the others with it."""

    same_layout: list[str] = Field(
        description=(
            "Other earlier versions (any form) with exactly this layout (same content apart from the form "
            "key), likeliest first: content cannot tell them from this one."
        )
    )


class ParentSuggestions(BaseModel):
    items: list[ParentSuggestion] = Field(description="One per distinct layout, likeliest first.")


SEARCH_EXAMPLES: dict[str, Example] = {
    "text": {
        "summary": "Layouts like a description, the best version of each form",
        "value": {"text": "applicant name, e-mail address and a submit button", "k": 5, "group_by": "form"},
    },
    "definition": {
        "summary": "Layouts like an example definition, among the forms a system's releases pin",
        "value": {
            "definition": {
                "components": [
                    {"type": "textfield", "key": "name", "label": "Full name", "input": True},
                    {"type": "email", "key": "email", "label": "E-mail", "input": True},
                ]
            },
            "format": "formio",
            "k": 10,
            "filters": {"system": "benefits-portal"},
        },
    },
}

RECOMMEND_EXAMPLES: dict[str, Example] = {
    "positive-and-negative": {
        "summary": "Layouts like one version and unlike another, only among two forms",
        "value": {
            "positive": ["0b8e5d7a-2c4f-4e61-8f3a-9d1b6c5e4a72"],
            "negative": ["6f1c2a9e-4b7d-4c1e-9a55-0d3e8b2f7c41"],
            "k": 10,
            "filters": {"form_keys": ["contact", "feedback"]},
        },
    },
}

"""Request and response bodies of the FormVersionProcessor."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi.openapi.models import Example
from pydantic import BaseModel, ConfigDict, Field, JsonValue


class FormVersionCreate(BaseModel):
    """A new version of a form: its definition, and where it comes from."""

    # A misspelt field (`parent` for `parents`) must be refused, not ingested as if it were absent;
    # NaN and Infinity are not JSON, though Python's parser reads them.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    format: str | None = Field(
        default=None, description="formio, surveyjs, jsonschema or native; detected when omitted."
    )
    definition: dict[str, Any] | str = Field(
        description="The definition as a JSON object, or as JSON/YAML text."
    )
    parents: list[str] | None = Field(
        default=None,
        description="Parent version ids. Omitted: the form's latest version. []: a new root.",
        max_length=32,
    )
    expected_latest: str | None = Field(
        default=None,
        description="The id of the version you expect to be the form's latest: 409, and nothing written, "
        "if another version is the latest by the time this one would be written (optimistic concurrency).",
        max_length=100,
    )
    label: str | None = Field(default=None, max_length=200)
    metadata: dict[str, JsonValue] | None = Field(
        default=None, description="Kept with the version; not hashed."
    )


class ParentDiffRead(BaseModel):
    parent_id: str
    summary: str
    changes: list[dict[str, Any]] | None = None


class SimilarLayout(BaseModel):
    version_id: str
    form_key: str
    number: int
    score: float


class FormVersionCreated(BaseModel):
    id: str
    form_key: str
    number: int
    content_hash: str
    created: bool = Field(description="False when this content already was a version of the form.")
    unchanged: bool = Field(
        default=False,
        description="True when the content equals the parent version it names (an edit that changed "
        "nothing PageForge keeps): this is that version, nothing was written.",
    )
    parents: list[str]
    diffs: list[ParentDiffRead]
    similar: list[SimilarLayout] | None = Field(
        description="The most similar layouts of other forms; [] when there are none, null when they were "
        "not looked up: the layout still waits for the index, the index could not be asked, or the content "
        "already was a version (GET /api/v1/form-versions/{id}/similar asks at any time)."
    )
    index_pending: bool = Field(description="True while the layout waits in the outbox for the index.")
    warnings: list[str] = Field(
        default_factory=list,
        description="What was taken as it is but may not be what was meant (a field key that several fields "
        "use), the same for every source format.",
    )


class FormVersionSummary(BaseModel):
    id: str
    form_key: str
    number: int
    content_hash: str
    created_at: datetime
    label: str | None
    title: str
    source_format: str
    parents: list[str]


class FormVersionRead(FormVersionSummary):
    metadata: dict[str, Any]
    diffs: list[ParentDiffRead]
    definition: dict[str, Any]


class FormRead(BaseModel):
    key: str
    title: str
    version_count: int
    latest_version_id: str | None
    created_at: datetime


CONTACT_FORMIO: dict[str, Any] = {
    "display": "form",
    "title": "Contact details",
    "components": [
        {
            "type": "textfield",
            "key": "name",
            "label": "Full name",
            "input": True,
            "validate": {"required": True},
        },
        {"type": "email", "key": "email", "label": "E-mail", "input": True},
        {"type": "button", "key": "submit", "label": "Submit", "action": "submit"},
    ],
}

FORM_VERSION_EXAMPLES: dict[str, Example] = {
    "formio": {
        "summary": "A Form.io definition, derived from the form's latest version",
        "value": {"definition": CONTACT_FORMIO},
    },
    "surveyjs-root": {
        "summary": "A SurveyJS definition as a new root, with a label and metadata",
        "value": {
            "format": "surveyjs",
            "parents": [],
            "label": "first draft",
            "metadata": {"ticket": "FORMS-12", "author": "kari"},
            "definition": {
                "title": "Feedback",
                "pages": [
                    {
                        "name": "p1",
                        "elements": [
                            {"type": "rating", "name": "satisfaction", "title": "How satisfied are you?"},
                            {"type": "comment", "name": "comments", "title": "Anything else?"},
                        ],
                    }
                ],
            },
        },
    },
    "jsonschema-text": {
        "summary": "A JSON Schema sent as text (JSON or YAML)",
        "value": {
            "format": "jsonschema",
            "definition": "type: object\ntitle: Address\nrequired: [street]\nproperties:\n"
            "  street: {type: string, title: Street}\n  postcode: {type: string, title: Postcode}\n",
        },
    },
}


# Versions one batch may carry (each is written in a transaction of its own).
BATCH_MAX_ITEMS = 100


class BatchVersionCreate(FormVersionCreate):
    """One version of a batch: a version post with the form it is for."""

    form_key: str = Field(min_length=1, max_length=200)


class FormVersionBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[BatchVersionCreate] = Field(min_length=1, max_length=BATCH_MAX_ITEMS)


class BatchItemProblem(BaseModel):
    title: str
    detail: str


class BatchItemResult(BaseModel):
    index: int
    form_key: str
    status: int = Field(description="What a single post of this item would have answered: 201, 200 or 4xx.")
    version: FormVersionCreated | None = None
    problem: BatchItemProblem | None = None


class FormVersionBatchResult(BaseModel):
    items: list[BatchItemResult]

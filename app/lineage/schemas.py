"""Response bodies of the lineage endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Direction = Literal["up", "down", "both"]


class LineageNodeRead(BaseModel):
    id: str
    form_key: str
    number: int
    content_hash: str
    created_at: datetime
    label: str | None
    distance: int = Field(description="DERIVED_FROM steps from the version asked about.")
    relation: Literal["self", "ancestor", "descendant"]
    parent_count: int = Field(description="All its parents, in this lineage or not.")
    child_count: int = Field(description="All its children, in this lineage or not (past `depth`: folded).")
    release_count: int = Field(description="Releases that include it (see /used-by).")


class LineageEdgeRead(BaseModel):
    child_id: str
    parent_id: str
    summary: str = Field(description="The diff summary from the parent to the child.")


class LineageRead(BaseModel):
    version_id: str
    direction: Direction
    depth: int
    nodes: list[LineageNodeRead]
    edges: list[LineageEdgeRead]


class VersionDiffRead(BaseModel):
    """What changes turn `against_id` into `version_id`."""

    version_id: str
    against_id: str
    summary: str
    changes: list[dict[str, Any]]
    added: int
    removed: int
    changed: int
    moved: int
    renamed: int
    layout: int
    logic: int


class VersionRefRead(BaseModel):
    id: str
    form_key: str
    number: int


class MergeBaseRead(BaseModel):
    version_id: str
    other_id: str
    merge_bases: list[VersionRefRead] = Field(
        description="The lowest common ancestors; empty when the two share no ancestor."
    )


class FieldHistoryEntry(BaseModel):
    version_id: str
    number: int
    created_at: datetime
    parent_id: str | None = Field(
        description="The parent the change is from; null where a root introduced it."
    )
    action: str = Field(description="added, removed, changed, renamed or moved.")
    key: str = Field(description="The field's key in this version (its last key when removed).")
    old_key: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict, description="What changed: {name: {old, new}}.")
    old_path: list[str] | None = None
    new_path: list[str] | None = None


class ReleaseRefRead(BaseModel):
    id: str
    system_key: str
    version: str
    number: int


class UsedByRead(ReleaseRefRead):
    created_at: datetime
    pinned_version_id: str
    pinned_number: int


class ImpactRead(BaseModel):
    version_id: str
    form_key: str
    number: int
    content_hash: str
    created_at: datetime
    distance: int = Field(description="0 for the version itself, else DERIVED_FROM steps down to it.")
    releases: list[ReleaseRefRead]


class ParentSummaryRead(BaseModel):
    parent_id: str
    summary: str


class NewerVersionRead(BaseModel):
    id: str
    number: int
    created_at: datetime
    distance: int
    diffs: list[ParentSummaryRead]


class PinDriftRead(BaseModel):
    form_key: str
    version_id: str
    number: int
    newer: list[NewerVersionRead] = Field(description="Descendants of the pinned version, nearest first.")


class ReleaseDriftRead(BaseModel):
    """A page of a release's pins, by form key, with the newer versions on each pin's lineage."""

    release_id: str
    system_key: str
    version: str
    items: list[PinDriftRead]
    next_cursor: str | None = None

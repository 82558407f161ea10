"""Response bodies of the job endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class JobItemError(BaseModel):
    item: str = Field(description="The file in the archive ('' for the job as a whole).")
    reason: str


class JobProgress(BaseModel):
    done: int = Field(description="Files read so far (an ingest), or renders made (a render).")
    total: int = Field(description="Files to read (0 until the archive is unpacked), or renders to make.")


class JobRead(BaseModel):
    id: str
    kind: Literal["ingest", "render"]
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    progress: JobProgress
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested: bool = Field(description="Asked to stop; it stops at its next progress check.")
    attempts: int = Field(description="Runs started: more than one after a restart interrupted it.")
    result: dict[str, Any] | None = Field(
        description="Once finished. An ingest: files read, versions created and already present, lineage "
        "edges, files failed, and the forms it wrote (see /api/v1/forms/{key}). A render: the version, the "
        "media type and size of the file at links.result."
    )
    errors: list[JobItemError] = Field(description="Per file (or version) that failed (the first 1,000).")
    links: dict[str, str]


class JobList(BaseModel):
    items: list[JobRead]

"""Ingest jobs: a corpus uploaded as an archive (202 with the job's Location), ingested as `pageforge ingest`
ingests a folder, by the process that owns the layout index and its outbox relay, while it serves."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Query, Request, Response, status

from app.api import API_PREFIX
from app.auth import FormsWriter, ResourcesDep
from app.errors import Invalid, problem_responses
from app.formversions.bulk import BulkIngestor, IngestUnit, plan_ingest
from app.jobs.archive import ARCHIVE_TYPES, unpack
from app.jobs.router import job_read
from app.jobs.runner import Outcome, Progress
from app.jobs.schemas import JobRead
from app.resources import Resources
from app.settings import JobSettings
from graph.forms import FormVersionRepository, LayoutInventory
from graph.jobs import Job, JobRepository, JobState

router = APIRouter(tags=["jobs"])

# Where a corpus archive is uploaded: the one path that takes a body other than JSON.
INGEST_JOB_PATH = "/jobs/ingest"
SOURCE_FORMATS = ("formio", "surveyjs", "jsonschema", "native")


def unpack_corpus(data: bytes, into: Path, limits: JobSettings) -> tuple[Path, list[IngestUnit]]:
    """The archive unpacked and planned as `pageforge ingest` plans a folder; 422 naming the problem, with
    paths relative to the archive."""
    root = unpack(data, into, limits)
    try:
        return root, plan_ingest(root)
    except Invalid as exc:
        raise Invalid(exc.detail.replace(f"{root}/", "").replace(str(root), "the archive")) from exc


@router.post(
    INGEST_JOB_PATH,
    response_model=JobRead,
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(401, 403, 413, 415, 422, 429, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "A corpus as `pageforge ingest` reads it (a folder of definitions, or one with "
            "manifest.jsonl and its prev_file chains), as .tar.gz, .tar or .zip.",
            "content": {media: {"schema": {"type": "string", "format": "binary"}} for media in ARCHIVE_TYPES},
        }
    },
)
async def create_ingest_job(
    request: Request,
    response: Response,
    tenant: FormsWriter,
    resources: ResourcesDep,
    source_format: Annotated[
        str | None, Query(description=f"One of {', '.join(SOURCE_FORMATS)} (default: detect per file).")
    ] = None,
) -> JobRead:
    """Ingest an uploaded corpus in the background, as `pageforge ingest` would, while the server runs: the
    archive is checked now (422 naming the problem), then queued; follow the job at its Location."""
    if source_format is not None and source_format not in SOURCE_FORMATS:
        raise Invalid(f"source_format must be one of {', '.join(SOURCE_FORMATS)}, not {source_format!r}")
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in ARCHIVE_TYPES:
        raise Invalid(f"send the archive as one of {', '.join(sorted(ARCHIVE_TYPES))}")
    data = await request.body()
    if not data:
        raise Invalid("the request has no archive")

    def check() -> None:
        with tempfile.TemporaryDirectory(prefix="pageforge-upload-") as folder:
            unpack_corpus(data, Path(folder), resources.settings.jobs)

    await anyio.to_thread.run_sync(check)
    jobs = JobRepository(resources.graph, API_PREFIX)
    job = await jobs.create(tenant.id, "ingest", {"source_format": source_format}, data)
    read = job_read(job, API_PREFIX)
    response.headers["location"] = read.links["self"]
    return read


class IngestJobs:
    """Runs `ingest` jobs (see JobHandler)."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    def ready(self) -> None:
        self.resources.require_index()

    async def run(self, job: Job, data: bytes, progress: Progress) -> Outcome:
        resources = self.resources
        assert resources.relay is not None, "ingest jobs run where the outbox relay runs"
        with tempfile.TemporaryDirectory(prefix="pageforge-job-") as folder:
            try:
                root, units = await anyio.to_thread.run_sync(
                    unpack_corpus, data, Path(folder), resources.settings.jobs
                )
            except Invalid as exc:
                return Outcome("failed", errors=[{"item": "", "reason": exc.detail}])
            progress.total = sum(len(unit.files) for unit in units)

            def advanced(done: int, total: int) -> None:
                progress.done, progress.total = done, total

            ingestor = BulkIngestor(
                versions=FormVersionRepository(resources.graph),
                inventory=LayoutInventory(resources.graph),
                relay=resources.relay,
                index=resources.require_index(),
                batch_size=resources.settings.embedder.batch_size,
            )
            report = await ingestor.ingest(
                tenant=job.tenant,
                units=units,
                source_format=job.params.get("source_format"),
                on_progress=advanced,
                optimize=False,  # the serving index optimises itself in the background as writes arrive
            )
            errors = [
                {"item": str(failure.path.relative_to(root)), "reason": failure.reason}
                for failure in report.failures
            ]
        failed = {failure.path for failure in report.failures}
        state: JobState = "failed" if failed and not report.created + report.present else "succeeded"
        result = {
            "files": report.files,
            "created": report.created,
            "present": report.present,
            "edges": report.edges,
            "failed": len(report.failures),
            "forms": sorted({unit.form_key for unit in units if not failed.issuperset(unit.files)}),
        }
        return Outcome(state, result=result, errors=errors)

"""Jobs over REST: a corpus archive uploaded for ingest (202 with the job's Location), its state and
progress, the tenant's jobs, cancel."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Query, Request, Response, status

from app.auth import FormsReader, FormsWriter, ResourcesDep
from app.errors import Invalid, NotFound, problem_responses
from app.jobs.archive import ARCHIVE_TYPES
from app.jobs.runner import unpack_corpus
from app.jobs.schemas import JobItemError, JobList, JobProgress, JobRead
from graph.jobs import Job, JobRepository

router = APIRouter(tags=["jobs"])

# Where a corpus archive is uploaded: the one path that takes a body other than JSON.
INGEST_JOB_PATH = "/jobs/ingest"
SOURCE_FORMATS = ("formio", "surveyjs", "jsonschema", "native")


def _prefix(request: Request) -> str:
    return request.url.path.split("/jobs", 1)[0]


def job_read(job: Job, prefix: str) -> JobRead:
    return JobRead(
        id=job.id,
        kind="ingest",
        state=job.state,
        progress=JobProgress(done=job.done, total=job.total),
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        cancel_requested=job.cancel_requested,
        attempts=job.attempts,
        result=job.result,
        errors=[JobItemError(**error) for error in job.errors],
        links={"self": f"{prefix}/jobs/{job.id}", "cancel": f"{prefix}/jobs/{job.id}/cancel"},
    )


def _repository(request: Request, resources: ResourcesDep) -> JobRepository:
    return JobRepository(resources.graph, _prefix(request))


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
    jobs = _repository(request, resources)
    job = await jobs.create(tenant.id, "ingest", {"source_format": source_format}, data)
    read = job_read(job, _prefix(request))
    response.headers["location"] = read.links["self"]
    return read


@router.get("/jobs", response_model=JobList, responses=problem_responses(401, 403, 422, 429, 503))
async def list_jobs(
    request: Request,
    tenant: FormsReader,
    resources: ResourcesDep,
    limit: Annotated[int, Query(ge=1, le=200, description="The newest this many.")] = 50,
) -> JobList:
    """The tenant's jobs, newest first."""
    jobs = await _repository(request, resources).of_tenant(tenant.id, limit)
    return JobList(items=[job_read(job, _prefix(request)) for job in jobs])


@router.get("/jobs/{job_id}", response_model=JobRead, responses=problem_responses(401, 403, 404, 429, 503))
async def get_job(job_id: str, request: Request, tenant: FormsReader, resources: ResourcesDep) -> JobRead:
    """A job's state, progress, result and errors per file."""
    job = await _repository(request, resources).get(tenant.id, job_id)
    if job is None:
        raise NotFound(f"no job {job_id!r}")
    return job_read(job, _prefix(request))


@router.post(
    "/jobs/{job_id}/cancel", response_model=JobRead, responses=problem_responses(401, 403, 404, 429, 503)
)
async def cancel_job(job_id: str, request: Request, tenant: FormsWriter, resources: ResourcesDep) -> JobRead:
    """Cancel a waiting job at once, or ask a running one to stop (versions it already wrote stay). A
    finished job is answered as it is."""
    job = await _repository(request, resources).cancel(tenant.id, job_id)
    if job is None:
        raise NotFound(f"no job {job_id!r}")
    return job_read(job, _prefix(request))

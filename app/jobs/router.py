"""Jobs over REST: a job's state, progress, result and errors, the file it made, the tenant's jobs, cancel.
(Each kind is started where its service lives: an ingest in app.formversions.jobs, a PDF in app.renderer.)"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.api import API_PREFIX
from app.auth import FormsReader, FormsWriter, ResourcesDep
from app.errors import Conflict, NotFound, problem_responses
from app.jobs.schemas import JobItemError, JobList, JobProgress, JobRead
from graph.jobs import Job, JobRepository

router = APIRouter(tags=["jobs"])


def job_read(job: Job, prefix: str) -> JobRead:
    return JobRead(
        id=job.id,
        kind="render" if job.kind == "render" else "ingest",
        state=job.state,
        progress=JobProgress(done=job.done, total=job.total),
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        cancel_requested=job.cancel_requested,
        attempts=job.attempts,
        result=job.result,
        errors=[JobItemError(**error) for error in job.errors],
        links={
            "self": f"{prefix}/jobs/{job.id}",
            "cancel": f"{prefix}/jobs/{job.id}/cancel",
            **({"result": f"{prefix}/jobs/{job.id}/result"} if job.kind == "render" else {}),
        },
    )


def _repository(resources: ResourcesDep) -> JobRepository:
    return JobRepository(resources.graph, API_PREFIX)


@router.get("/jobs", response_model=JobList, responses=problem_responses(401, 403, 422, 429, 503))
async def list_jobs(
    request: Request,
    tenant: FormsReader,
    resources: ResourcesDep,
    limit: Annotated[int, Query(ge=1, le=200, description="The newest this many.")] = 50,
) -> JobList:
    """The tenant's jobs, newest first."""
    jobs = await _repository(resources).of_tenant(tenant.id, limit)
    return JobList(items=[job_read(job, API_PREFIX) for job in jobs])


@router.get("/jobs/{job_id}", response_model=JobRead, responses=problem_responses(401, 403, 404, 429, 503))
async def get_job(job_id: str, request: Request, tenant: FormsReader, resources: ResourcesDep) -> JobRead:
    """A job's state, progress, result and errors per file."""
    job = await _repository(resources).get(tenant.id, job_id)
    if job is None:
        raise NotFound(f"no job {job_id!r}")
    return job_read(job, API_PREFIX)


@router.post(
    "/jobs/{job_id}/cancel", response_model=JobRead, responses=problem_responses(401, 403, 404, 429, 503)
)
async def cancel_job(job_id: str, request: Request, tenant: FormsWriter, resources: ResourcesDep) -> JobRead:
    """Cancel a waiting job at once, or ask a running one to stop (versions it already wrote stay). A
    finished job is answered as it is."""
    job = await _repository(resources).cancel(tenant.id, job_id)
    if job is None:
        raise NotFound(f"no job {job_id!r}")
    return job_read(job, API_PREFIX)


@router.get(
    "/jobs/{job_id}/result",
    response_class=Response,
    responses={
        200: {"description": "The file the job made.", "content": {"application/pdf": {}}},
        **problem_responses(401, 403, 404, 409, 429, 503),
    },
)
async def job_result(job_id: str, tenant: FormsReader, resources: ResourcesDep) -> Response:
    """The file a render job made; 409 while it is not (yet) there."""
    found = await _repository(resources).output(tenant.id, job_id)
    if found is None:
        raise NotFound(f"no job {job_id!r}")
    state, output = found
    if output is None:
        raise Conflict(
            f"job {job_id!r} is {state} and has no file" + (" yet" if state in ("queued", "running") else "")
        )
    return Response(output.data, media_type=output.media_type, headers={"X-Content-Type-Options": "nosniff"})

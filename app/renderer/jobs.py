"""Render jobs: a PDF of a form too big to render within a request, rendered in the renderer's process
with the job's longer time budget (PAGEFORGE_RENDER__PDF_JOB_TIMEOUT_S); the file kept with the job."""

from __future__ import annotations

import json

from starlette.datastructures import State

from app.errors import PageForgeError
from app.jobs.runner import Outcome, Progress
from app.renderer.router import process_render_state
from app.renderer.schemas import RenderFormat
from app.resources import Resources
from graph.jobs import Job, JobOutput


class RenderJobs:
    """Runs `render` jobs (see JobHandler)."""

    def __init__(self, resources: Resources, app_state: State) -> None:
        self.resources = resources
        self.app_state = app_state

    def ready(self) -> None:
        self.resources.require_embedder()  # the widget matcher of custom components

    async def run(self, job: Job, data: bytes, progress: Progress) -> Outcome:
        state = process_render_state(self.app_state, self.resources)
        limits = state.limits.model_copy(update={"pdf_timeout_s": state.limits.pdf_job_timeout_s})
        renderer = state.renderer(self.resources.graph, pdf_job_fields=None, limits=limits)
        version_id = job.params["version_id"]
        progress.total = 1
        try:
            rendered, _ = await renderer.render_version(
                tenant=job.tenant,
                version_id=version_id,
                format=RenderFormat.PDF,
                data=json.loads(data) if data else None,
            )
        except PageForgeError as exc:
            return Outcome("failed", errors=[{"item": version_id, "reason": exc.detail}])
        progress.done = 1
        return Outcome(
            "succeeded",
            result={"version_id": version_id, "media_type": rendered.media_type, "bytes": len(rendered.body)},
            output=JobOutput(rendered.body, rendered.media_type),
        )

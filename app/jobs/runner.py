"""Runs the deployment's jobs in the process that owns the outbox relay: takes waiting jobs (and those whose
runner died) up to `workers` at once and `per_tenant` per tenant, records progress and renews their lease
while they run, stops one asked to stop, and records each end with its event."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread

from app.errors import Invalid
from app.formversions.bulk import BulkIngestor, BulkIngestReport, IngestUnit, plan_ingest
from app.jobs.archive import unpack
from app.resources import Resources
from app.settings import JobSettings
from graph.forms import FormVersionRepository, LayoutInventory
from graph.jobs import Job, JobRepository, JobState

logger = logging.getLogger(__name__)

# Errors per item kept on a job; beyond, only their count.
MAX_ITEM_ERRORS = 1000


@dataclass
class Progress:
    done: int = 0
    total: int = 0


def unpack_corpus(data: bytes, into: Path, limits: JobSettings) -> tuple[Path, list[IngestUnit]]:
    """The archive unpacked and planned as `pageforge ingest` plans a folder; 422 naming the problem, with
    paths relative to the archive."""
    root = unpack(data, into, limits)
    try:
        return root, plan_ingest(root)
    except Invalid as exc:
        raise Invalid(exc.detail.replace(f"{root}/", "").replace(str(root), "the archive")) from exc


class JobRunner:
    def __init__(self, resources: Resources, jobs: JobRepository) -> None:
        self.resources = resources
        self.jobs = jobs
        self.settings = resources.settings.jobs
        self._running: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Take jobs forever; on failure (Neo4j down) log it and try again with backoff."""
        backoff = self.settings.poll_s
        try:
            while True:
                try:
                    await self.resources.require_graph()
                    self.resources.require_index()  # jobs wait while the index is away
                    while len(self._running) < self.settings.workers:
                        claimed = await self.jobs.claim(self.settings.per_tenant, self.settings.lease_s)
                        if claimed is None:
                            break
                        task = asyncio.create_task(self._run(*claimed))
                        self._running.add(task)
                        task.add_done_callback(self._running.discard)
                except Exception as exc:
                    logger.warning("job runner: %s; retrying in %.0fs", exc, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 30.0)
                    continue
                backoff = self.settings.poll_s
                await asyncio.sleep(self.settings.poll_s)
        finally:
            # Shutting down: running jobs stay leased; after the lease the next runner takes them again.
            for task in list(self._running):
                task.cancel()
            for task in list(self._running):
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _run(self, job: Job, data: bytes) -> None:
        logger.info("job %s (%s) of tenant %s: attempt %d", job.id, job.kind, job.tenant, job.attempts)
        progress = Progress()
        work = asyncio.create_task(self._work(job, data, progress))
        try:
            while not work.done():
                await asyncio.wait([work], timeout=self.settings.poll_s)
                if work.done():
                    break
                with contextlib.suppress(Exception):  # Neo4j away for a moment: the lease has slack
                    if await self.jobs.progress(job.id, progress.done, progress.total, self.settings.lease_s):
                        work.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await work
                        await self.jobs.finish(job, "cancelled", done=progress.done, total=progress.total)
                        return
            state, result, errors = work.result()
        except asyncio.CancelledError:
            work.cancel()
            raise
        except Exception as exc:
            logger.exception("job %s failed", job.id)
            state, result, errors = "failed", None, [{"item": "", "reason": str(exc) or type(exc).__name__}]
        await self.jobs.finish(
            job, state, done=progress.done, total=progress.total, result=result, errors=errors
        )
        logger.info("job %s %s", job.id, state)

    async def _work(
        self, job: Job, data: bytes, progress: Progress
    ) -> tuple[JobState, dict[str, Any] | None, list[dict[str, str]]]:
        if job.kind != "ingest":
            return "failed", None, [{"item": "", "reason": f"unknown job kind {job.kind!r}"}]
        with tempfile.TemporaryDirectory(prefix="pageforge-job-") as folder:
            try:
                root, units = await anyio.to_thread.run_sync(unpack_corpus, data, Path(folder), self.settings)
            except Invalid as exc:
                return "failed", None, [{"item": "", "reason": exc.detail}]
            progress.total = sum(len(unit.files) for unit in units)
            report = await self._ingest(job, units, progress)
            errors = [
                {"item": str(failure.path.relative_to(root)), "reason": failure.reason}
                for failure in report.failures[:MAX_ITEM_ERRORS]
            ]
        failed = {failure.path for failure in report.failures}
        written = report.created + report.present
        state: JobState = "failed" if report.failures and not written else "succeeded"
        result = {
            "files": report.files,
            "created": report.created,
            "present": report.present,
            "edges": report.edges,
            "failed": len(report.failures),
            "forms": sorted({unit.form_key for unit in units if not failed.issuperset(unit.files)}),
        }
        return state, result, errors

    async def _ingest(self, job: Job, units: list[IngestUnit], progress: Progress) -> BulkIngestReport:
        resources = self.resources
        assert resources.relay is not None, "jobs run where the outbox relay runs"

        def advanced(done: int, total: int) -> None:
            progress.done, progress.total = done, total

        ingestor = BulkIngestor(
            versions=FormVersionRepository(resources.graph),
            inventory=LayoutInventory(resources.graph),
            relay=resources.relay,
            index=resources.require_index(),
            batch_size=resources.settings.embedder.batch_size,
        )
        return await ingestor.ingest(
            tenant=job.tenant,
            units=units,
            source_format=job.params.get("source_format"),
            on_progress=advanced,
            optimize=False,
        )

"""Runs jobs in the processes whose services do them: takes waiting jobs of the kinds it has a handler for
(and those whose runner died) up to `workers` at once and `per_tenant` per tenant, records progress and
renews their lease while they run, stops one asked to stop, and records each end with its event."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.resources import Resources
from graph.jobs import Job, JobOutput, JobRepository, JobState

logger = logging.getLogger(__name__)

# Errors per item kept on a job; beyond, only their count.
MAX_ITEM_ERRORS = 1000
# How often finished jobs past their retention are looked for.
PRUNE_EVERY_S = 60.0


@dataclass
class Progress:
    done: int = 0
    total: int = 0


@dataclass
class Outcome:
    state: JobState
    result: dict[str, Any] | None = None
    errors: list[dict[str, str]] = field(default_factory=list)
    output: JobOutput | None = None


class JobHandler(Protocol):
    """Does the jobs of one kind."""

    def ready(self) -> None:
        """Raises when what the jobs need is unavailable (they wait meanwhile)."""

    async def run(self, job: Job, data: bytes, progress: Progress) -> Outcome: ...


class JobRunner:
    def __init__(self, resources: Resources, jobs: JobRepository, handlers: Mapping[str, JobHandler]) -> None:
        self.resources = resources
        self.jobs = jobs
        self.handlers = handlers
        self.settings = resources.settings.jobs
        self._running: set[asyncio.Task[None]] = set()
        self._pruned_at = -PRUNE_EVERY_S

    async def run(self) -> None:
        """Take jobs forever; on failure (Neo4j down) log it and try again with backoff."""
        backoff = self.settings.poll_s
        try:
            while True:
                try:
                    await self.resources.require_graph()
                    await self._prune()
                    await self._take()
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

    async def _prune(self) -> None:
        """Finished jobs past their retention go, about once a minute."""
        now = time.monotonic()
        if now - self._pruned_at < PRUNE_EVERY_S:
            return
        self._pruned_at = now
        if pruned := await self.jobs.prune(self.settings.retention_s):
            logger.info("deleted %d jobs finished more than %.0f s ago", pruned, self.settings.retention_s)

    async def _take(self) -> None:
        kinds = []
        for kind, handler in self.handlers.items():
            try:
                handler.ready()
            except Exception as exc:
                logger.debug("%s jobs wait: %s", kind, exc)
                continue
            kinds.append(kind)
        while kinds and len(self._running) < self.settings.workers:
            claimed = await self.jobs.claim(kinds, self.settings.per_tenant, self.settings.lease_s)
            if claimed is None:
                return
            task = asyncio.create_task(self._run(*claimed))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, job: Job, data: bytes) -> None:
        logger.info("job %s (%s) of tenant %s: attempt %d", job.id, job.kind, job.tenant, job.attempts)
        progress = Progress(job.done, job.total)
        work = asyncio.create_task(self.handlers[job.kind].run(job, data, progress))
        try:
            while not work.done():
                await asyncio.wait([work], timeout=self.settings.poll_s)
                if work.done():
                    break
                try:
                    stop = await self.jobs.progress(
                        job.id, progress.done, progress.total, self.settings.lease_s
                    )
                except Exception:  # Neo4j away for a moment: the lease has slack
                    stop = False
                if stop:
                    work.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await work
                    await self.jobs.finish(job, "cancelled", done=progress.done, total=progress.total)
                    return
            outcome = work.result()
        except asyncio.CancelledError:
            work.cancel()
            raise
        except Exception as exc:
            logger.exception("job %s failed", job.id)
            outcome = Outcome("failed", errors=[{"item": "", "reason": str(exc) or type(exc).__name__}])
        await self.jobs.finish(
            job,
            outcome.state,
            done=progress.done,
            total=progress.total,
            result=outcome.result,
            errors=outcome.errors[:MAX_ITEM_ERRORS],
            output=outcome.output,
        )
        logger.info("job %s %s", job.id, outcome.state)

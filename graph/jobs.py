"""Jobs: work that outlives a request, kept in the graph (state, progress, result, errors per item) with its
input, so it survives a restart; its end announced by an event in the same transaction."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from neo4j import AsyncManagedTransaction

from graph import queries
from graph.database import Graph, from_epoch_millis
from graph.events import EventDraft, record_events

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


@dataclass(frozen=True)
class Job:
    id: str
    tenant: str
    kind: str
    state: JobState
    params: dict[str, Any]
    done: int
    total: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    result: dict[str, Any] | None
    errors: list[dict[str, str]]
    cancel_requested: bool
    attempts: int


@dataclass(frozen=True)
class JobOutput:
    """A file a job made (a PDF render)."""

    data: bytes
    media_type: str


def _job(row: dict[str, Any]) -> Job:
    return Job(
        id=row["id"],
        tenant=row["tenant"],
        kind=row["kind"],
        state=row["state"],
        params=json.loads(row["params"]),
        done=row["done"],
        total=row["total"],
        created_at=datetime.fromtimestamp(row["created_ms"] / 1000, tz=UTC),
        started_at=from_epoch_millis(row.get("started_ms")),
        finished_at=from_epoch_millis(row.get("finished_ms")),
        result=json.loads(row["result"]) if row.get("result") else None,
        errors=json.loads(row["errors"]) if row.get("errors") else [],
        cancel_requested=bool(row.get("cancel_requested")),
        attempts=row.get("attempts") or 0,
    )


def finished_event(job: Job, state: str, api_prefix: str) -> EventDraft:
    """job.completed when it succeeded, job.failed when it failed or was cancelled."""
    return EventDraft(
        type="job.completed" if state == "succeeded" else "job.failed",
        subject=f"job:{job.id}",
        payload={"job_id": job.id, "kind": job.kind, "state": state, "path": f"{api_prefix}/jobs/{job.id}"},
    )


class JobRepository:
    """Creates, reads and cancels a tenant's jobs; the runner's side takes, advances and finishes them."""

    def __init__(self, graph: Graph, api_prefix: str) -> None:
        self._graph = graph
        self._prefix = api_prefix

    async def create(self, tenant: str, kind: str, params: dict[str, Any], data: bytes) -> Job:
        result = await self._graph.run(
            queries.CREATE_JOB,
            id=str(uuid.uuid4()),
            tenant=tenant,
            kind=kind,
            params=json.dumps(params, sort_keys=True),
            data=data,
        )
        return _job(result.records[0]["job"])

    async def get(self, tenant: str, job_id: str) -> Job | None:
        result = await self._graph.fetch(queries.GET_JOB, tenant=tenant, id=job_id)
        return _job(result.records[0]["job"]) if result.records else None

    async def of_tenant(self, tenant: str, limit: int) -> list[Job]:
        result = await self._graph.fetch(queries.LIST_JOBS, tenant=tenant, limit=limit)
        return [_job(record["job"]) for record in result.records]

    async def cancel(self, tenant: str, job_id: str) -> Job | None:
        """Cancel a waiting job (announced as job.failed), or ask its runner to stop a running one."""

        async def work(tx: AsyncManagedTransaction) -> Job | None:
            row = await (await tx.run(queries.CANCEL_JOB, tenant=tenant, id=job_id)).single()
            if row is None:
                return None
            job = _job(row["job"])
            if row["before"] == "queued":
                await record_events(tx, tenant, [finished_event(job, "cancelled", self._prefix)])
            return job

        return await self._graph.write(work)

    async def claim(self, kinds: list[str], per_tenant: int, lease_s: float) -> tuple[Job, bytes] | None:
        """The next job of these kinds to run and its input, leased to the caller; None when none may run.
        Two runners never take the same job: the second finds it locked, then taken."""

        async def work(tx: AsyncManagedTransaction) -> tuple[Job, bytes] | None:
            candidate = await (await tx.run(queries.NEXT_JOB, kinds=kinds, per_tenant=per_tenant)).single()
            if candidate is None:
                return None
            locked = await (await tx.run(queries.LOCK_JOB, id=candidate["id"])).single()
            if locked is None or not locked["claimable"]:
                return None
            record = await (
                await tx.run(queries.CLAIM_JOB, id=candidate["id"], lease_ms=int(lease_s * 1000))
            ).single()
            if record is None:
                return None
            return _job(record["job"]), bytes(record["data"])

        return await self._graph.write(work)

    async def progress(self, job_id: str, done: int, total: int, lease_s: float) -> bool:
        """Record progress and renew the lease; True when the job was asked to stop (or is no longer ours)."""
        result = await self._graph.run(
            queries.JOB_PROGRESS, id=job_id, done=done, total=total, lease_ms=int(lease_s * 1000)
        )
        return not result.records or bool(result.records[0]["cancel_requested"])

    async def finish(
        self,
        job: Job,
        state: JobState,
        *,
        done: int,
        total: int,
        result: dict[str, Any] | None = None,
        errors: list[dict[str, str]] | None = None,
        output: JobOutput | None = None,
    ) -> None:
        """The job's end, its input dropped, what it made kept, and its event, in one transaction."""

        async def work(tx: AsyncManagedTransaction) -> None:
            await tx.run(
                queries.FINISH_JOB,
                id=job.id,
                state=state,
                done=done,
                total=total,
                result=json.dumps(result, sort_keys=True) if result is not None else None,
                errors=json.dumps(errors or []),
                outputs=[] if output is None else [{"data": output.data, "media_type": output.media_type}],
            )
            await record_events(tx, job.tenant, [finished_event(job, state, self._prefix)])

        await self._graph.write(work)

    async def output(self, tenant: str, job_id: str) -> tuple[str, JobOutput | None] | None:
        """The job's state and what it made (None if nothing yet, or nothing of that kind); None if no job."""
        result = await self._graph.fetch(queries.JOB_OUTPUT, tenant=tenant, id=job_id)
        if not result.records:
            return None
        record = result.records[0]
        made = None if record["data"] is None else JobOutput(bytes(record["data"]), record["media_type"])
        return record["state"], made

    async def prune(self, retention_s: float, limit: int = 1000) -> int:
        """Delete finished jobs older than `retention_s`, with the files they made; how many went."""
        result = await self._graph.run(queries.PRUNE_JOBS, retention_ms=int(retention_s * 1000), limit=limit)
        pruned: int = result.records[0]["pruned"]
        return pruned

"""The job queue in Neo4j: taken in order within each tenant's share, leased, cancelled while waiting (with
its event) or asked to stop while running, taken up again when its runner's lease runs out."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from graph.database import Graph
from graph.events import EventLog
from graph.jobs import JobOutput, JobRepository
from graph.tenants import Tenant, TenantRepository

pytestmark = pytest.mark.anyio


async def new_tenant(graph: Graph) -> Tenant:
    return await TenantRepository(graph).create(f"jobs-{uuid.uuid4().hex[:8]}")


async def claim_of(jobs: JobRepository, tenant: Tenant, per_tenant: int, lease_s: float = 30) -> str | None:
    """The id of the job taken, when it is the tenant's (other tests' jobs may wait in the same graph)."""
    while (claimed := await jobs.claim(["ingest"], per_tenant, lease_s)) is not None:
        job, _ = claimed
        if job.tenant == tenant.id:
            return job.id
        await jobs.finish(job, "failed", done=0, total=0)  # another test's leftover
    return None


async def test_jobs_are_taken_oldest_first_within_the_tenants_share(graph: Graph) -> None:
    tenant = await new_tenant(graph)
    jobs = JobRepository(graph, "/api/v1")
    first = await jobs.create(tenant.id, "ingest", {}, b"one")
    second = await jobs.create(tenant.id, "ingest", {}, b"two")

    claimed = await jobs.claim(["ingest"], per_tenant=1, lease_s=30)
    assert claimed is not None
    job, data = claimed
    while job.tenant != tenant.id:  # leftovers of other tests first: they are older
        await jobs.finish(job, "failed", done=0, total=0)
        claimed = await jobs.claim(["ingest"], per_tenant=1, lease_s=30)
        assert claimed is not None
        job, data = claimed
    assert (job.id, data, job.state, job.attempts) == (first.id, b"one", "running", 1)
    assert await claim_of(jobs, tenant, per_tenant=1) is None  # one running: the second waits
    assert await claim_of(jobs, tenant, per_tenant=2) == second.id


async def test_a_waiting_job_is_cancelled_at_once_with_its_event(graph: Graph) -> None:
    tenant = await new_tenant(graph)
    jobs = JobRepository(graph, "/api/v1")
    job = await jobs.create(tenant.id, "ingest", {}, b"archive")
    cancelled = await jobs.cancel(tenant.id, job.id)
    assert cancelled is not None
    assert cancelled.state == "cancelled"
    assert cancelled.finished_at is not None
    assert await jobs.cancel("another-tenant", job.id) is None
    events = await EventLog(graph).after(tenant.id, 0)
    assert [(e.type, e.payload) for e in events] == [
        (
            "job.failed",
            {"job_id": job.id, "kind": "ingest", "state": "cancelled", "path": f"/api/v1/jobs/{job.id}"},
        )
    ]
    assert await claim_of(jobs, tenant, per_tenant=5) is None


async def test_a_running_job_is_asked_to_stop_and_a_dead_runners_job_is_taken_again(graph: Graph) -> None:
    tenant = await new_tenant(graph)
    jobs = JobRepository(graph, "/api/v1")
    job = await jobs.create(tenant.id, "ingest", {}, b"archive")
    assert await claim_of(jobs, tenant, per_tenant=1, lease_s=0.5) == job.id
    assert await jobs.progress(job.id, 3, 10, lease_s=0.5) is False
    await asyncio.sleep(1.0)  # the runner died: no progress renews the lease
    assert await claim_of(jobs, tenant, per_tenant=1) == job.id
    again = await jobs.get(tenant.id, job.id)
    assert again is not None
    assert (again.attempts, again.done, again.total) == (2, 3, 10)

    asked = await jobs.cancel(tenant.id, job.id)
    assert asked is not None
    assert (asked.state, asked.cancel_requested) == ("running", True)
    assert await jobs.progress(job.id, 4, 10, lease_s=30) is True
    await jobs.finish(asked, "cancelled", done=4, total=10)
    finished = await jobs.get(tenant.id, job.id)
    assert finished is not None
    assert finished.state == "cancelled"
    assert await jobs.get("another-tenant", job.id) is None
    assert [e.type for e in await EventLog(graph).after(tenant.id, 0)] == ["job.failed"]


async def test_two_runners_taking_at_once_never_take_the_same_job(graph: Graph) -> None:
    tenant = await new_tenant(graph)
    jobs = JobRepository(graph, "/api/v1")
    while await jobs.claim(["render"], per_tenant=100, lease_s=30) is not None:
        pass  # other tests' leftovers of this kind
    taken: list[str] = []
    for _ in range(5):
        job = await jobs.create(tenant.id, "render", {}, b"")
        claims = await asyncio.gather(*(jobs.claim(["render"], per_tenant=100, lease_s=30) for _ in range(4)))
        won = [claimed[0].id for claimed in claims if claimed is not None]
        assert won == [job.id]
        taken.extend(won)
    assert len(set(taken)) == 5


async def test_finished_jobs_go_after_their_retention_with_the_files_they_made(graph: Graph) -> None:
    tenant = await new_tenant(graph)
    jobs = JobRepository(graph, "/api/v1")
    waiting = await jobs.create(tenant.id, "render", {}, b"")
    done = await jobs.create(tenant.id, "render", {}, b"")
    await jobs.finish(done, "succeeded", done=1, total=1, output=JobOutput(b"%PDF-1.7", "application/pdf"))
    assert await jobs.output(tenant.id, done.id) == ("succeeded", JobOutput(b"%PDF-1.7", "application/pdf"))
    assert await jobs.prune(retention_s=3600) == 0  # finished a moment ago: kept
    await asyncio.sleep(0.05)
    assert await jobs.prune(retention_s=0.01) >= 1
    assert await jobs.get(tenant.id, done.id) is None
    assert await jobs.output(tenant.id, done.id) is None
    orphans = await graph.fetch("MATCH (o:JobOutput {job: $id}) RETURN count(o) AS n", id=done.id)
    assert orphans.records[0]["n"] == 0
    assert await jobs.get(tenant.id, waiting.id) is not None  # not finished: never pruned

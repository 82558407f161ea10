"""`kill -9` of the real API server, five times, while 8 clients ingest 2,000 versions: every acknowledged
version is there exactly once with its lineage, nothing unsent appears, and the index catches up."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import os
import random
import signal
import subprocess
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.formversions.schemas import FormVersionCreate, FormVersionCreated
from app.formversions.service import FormVersionProcessor
from app.resources import open_graph
from app.settings import Settings
from app.versions import normalise_document
from graph.forms import FormVersionRepository, LayoutInventory, VersionFingerprint
from graph.server import free_port
from graph.tenants import TenantRepository
from ingest import content_hash
from tests.e2e.conftest import TenantKey, create_tenant
from tests.e2e.servers import PAGEFORGE, ApiServer, server_env
from vectors.edge import EdgeLayoutIndex

pytestmark = pytest.mark.slow

# Real forms of each format, the smallest of each corpus in turn (a small form is a cheap post).
FORM_SOURCES = ("nav-formio/test-forms", "bcgov-fla-surveyjs/current", "va-jsonschema/current")
CLIENTS = 8
FORMS_PER_CLIENT = 5
# At the 9-13 posts/s two shared cores sustain (plus six server starts of 6-15 s each): 5-6 minutes.
VERSIONS = 2000
KILLS = 5
# Kills come after a random number of acknowledgements (a multiple of this, so every life ingests some),
# then a random delay: the kill lands anywhere in the requests then in flight.
KILL_SPACING = 40
MAX_KILL_DELAY_S = 0.5
RETRY_PAUSE_S = 0.2
CLIENT_TIMEOUT_S = 120.0
INGEST_TIMEOUT_S = 1800.0  # a loaded machine runs 2-3x slower
DRAIN_TIMEOUT_S = 120.0
CLI_TIMEOUT_S = 300.0
GRAPH_LIMIT = 10_000


@dataclass(frozen=True)
class Step:
    """One version a client posts: its form, its place in the form's chain, the document and its hash."""

    form_key: str
    number: int
    definition: dict[str, Any]
    content_hash: str


@dataclass(frozen=True)
class Acknowledged:
    """An answered post, as the answer described the version."""

    step: Step
    id: str
    parents: list[str]
    content_hash: str
    created: bool
    # The answer said the layout was already in the index (not left to the outbox).
    indexed: bool
    # The server life that answered (1 = the first server).
    life: int
    # An earlier send of this post was cut off by a kill, so this answer is to a retry.
    interrupted: bool


@dataclass
class Ingest:
    """What the client threads acknowledged, shared with the thread that kills and restarts the server."""

    changed: threading.Condition = field(default_factory=threading.Condition)
    acknowledged: list[Acknowledged] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    life: int = 1
    stopped: threading.Event = field(default_factory=threading.Event)
    # Per client: how often it found the server gone, and whether it posted all its steps.
    cut_off: list[int] = field(default_factory=lambda: [0] * CLIENTS)
    done: list[bool] = field(default_factory=lambda: [False] * CLIENTS)

    def record(self, step: Step, answer: dict[str, Any], interrupted: bool) -> None:
        with self.changed:
            self.acknowledged.append(
                Acknowledged(
                    step=step,
                    id=answer["id"],
                    parents=answer["parents"],
                    content_hash=answer["content_hash"],
                    created=answer["created"],
                    indexed=not answer["index_pending"],
                    life=self.life,
                    interrupted=interrupted,
                )
            )
            self.changed.notify_all()

    def fail(self, message: str) -> None:
        with self.changed:
            self.errors.append(message)
            self.changed.notify_all()

    def server_gone(self, client: int) -> None:
        with self.changed:
            self.cut_off[client] += 1
            self.changed.notify_all()

    def finished(self, client: int) -> None:
        with self.changed:
            self.done[client] = True
            self.changed.notify_all()

    def next_life(self, cut_off_before: list[int]) -> None:
        """Once every client found the killed server gone, so that each answer it sent is recorded."""
        with self.changed:
            settled = self.changed.wait_for(
                lambda: (
                    bool(self.errors)
                    or all(
                        done or now > before
                        for done, now, before in zip(self.done, self.cut_off, cut_off_before, strict=True)
                    )
                ),
                INGEST_TIMEOUT_S,
            )
            assert settled, f"clients still busy after the kill: {self.cut_off} (before {cut_off_before})"
            self.life += 1

    def cut_off_counts(self) -> list[int]:
        with self.changed:
            return list(self.cut_off)

    def snapshot(self) -> list[Acknowledged]:
        with self.changed:
            return list(self.acknowledged)

    def wait_for(self, count: int, server: ApiServer) -> None:
        with self.changed:
            reached = self.changed.wait_for(
                lambda: len(self.acknowledged) >= count or bool(self.errors), INGEST_TIMEOUT_S
            )
            assert not self.errors, self.errors
        assert reached, f"only {len(self.acknowledged)} of {count} acknowledged:\n{server.log_tail()}"


def source_forms(corpora: Path, count: int) -> list[tuple[str, dict[str, Any]]]:
    """`count` real forms keyed by their file names, the smallest of each corpus folder in turn."""
    folders = [
        sorted((corpora / folder).glob("*.json"), key=lambda p: (p.stat().st_size, p.name))
        for folder in FORM_SOURCES
    ]
    picked = [path for group in zip(*folders, strict=False) for path in group][:count]
    assert len(picked) == count
    return [(path.stem, json.loads(path.read_text())) for path in picked]


def with_step_field(document: dict[str, Any], step: int) -> dict[str, Any]:
    """The form with one field more, named after the step: each step renames the field the step before
    added, so each version differs from its parent by one field and from every other version."""
    changed = copy.deepcopy(document)
    key, label = f"faultStep{step}", f"Fault step {step}"
    if "components" in changed:  # Form.io: into the first panel of a wizard
        first = changed["components"][0] if changed["components"] else {}
        inner = first.get("components")
        (inner if isinstance(inner, list) else changed["components"]).append(
            {"type": "textfield", "key": key, "label": label, "input": True}
        )
    elif "pages" in changed:  # SurveyJS
        changed["pages"][0].setdefault("elements", []).append({"type": "text", "name": key, "title": label})
    else:  # JSON Schema
        changed.setdefault("properties", {})[key] = {"type": "string", "title": label}
    return changed


def client_plans(corpora: Path) -> list[list[Step]]:
    """Each client's posts: chains of versions of its own forms, taking turns between its forms."""
    forms = source_forms(corpora, CLIENTS * FORMS_PER_CLIENT)
    per_form, left = divmod(VERSIONS, len(forms))
    assert left == 0
    chains = []
    for form_key, document in forms:
        chain = []
        for number in range(1, per_form + 1):
            definition = with_step_field(document, number)
            digest = content_hash(normalise_document(definition, None, form_key))
            chain.append(Step(form_key, number, definition, digest))
        assert len({step.content_hash for step in chain}) == per_form, f"{form_key}: versions repeat"
        chains.append(chain)
    return [
        [step for turn in zip(*chains[client::CLIENTS], strict=True) for step in turn]
        for client in range(CLIENTS)
    ]


def post_steps(url: str, tenant: TenantKey, steps: list[Step], ingest: Ingest, me: int) -> None:
    """One client: posts its steps in order, each until answered; a post cut off by a kill is sent again."""
    with httpx.Client(base_url=url, headers=tenant.headers, timeout=CLIENT_TIMEOUT_S) as client:
        for step in steps:
            interrupted = False
            while True:
                if ingest.stopped.is_set():
                    return
                try:
                    response = client.post(
                        f"/api/v1/forms/{step.form_key}/versions", json={"definition": step.definition}
                    )
                    break
                except httpx.ConnectError:  # the server is down, or not up yet
                    ingest.server_gone(me)
                    time.sleep(RETRY_PAUSE_S)
                except httpx.TransportError:  # the kill cut the answer off: it may or may not have landed
                    interrupted = True
                    ingest.server_gone(me)
                    time.sleep(RETRY_PAUSE_S)
            if response.status_code not in (200, 201):
                ingest.fail(f"{step.form_key} #{step.number}: {response.status_code} {response.text}")
                return
            ingest.record(step, response.json(), interrupted)


def client_thread(
    url: str, tenant: TenantKey, steps: list[Step], ingest: Ingest, me: int
) -> threading.Thread:
    def run() -> None:
        try:
            post_steps(url, tenant, steps, ingest, me)
        except Exception as exc:  # an assertion, not a thread's traceback on stderr
            ingest.fail(f"client failed: {exc!r}")
        finally:
            ingest.finished(me)

    return threading.Thread(target=run, daemon=True)


async def tenant_fingerprints(settings: Settings, tenant_name: str) -> list[VersionFingerprint]:
    """Every version of the tenant, with whether its layout and its lineage context wait in the outbox."""
    graph = open_graph(settings)
    try:
        tenant = (await TenantRepository(graph).named(tenant_name)).id
        versions = await LayoutInventory(graph).fingerprints(tenant, after="", limit=GRAPH_LIMIT)
        assert len(versions) < GRAPH_LIMIT
        return versions
    finally:
        await graph.close()


async def open_entries(settings: Settings, tenant_name: str) -> tuple[set[str], set[str]]:
    """The tenant's versions whose layout, and whose lineage context, the outbox still holds."""
    versions = await tenant_fingerprints(settings, tenant_name)
    return {v.id for v in versions if v.pending}, {v.id for v in versions if v.context_pending}


def indexed_ids(settings: Settings, tenant_name: str, ids: list[str]) -> set[str]:
    """Which of these versions have a point in the layout index (no server may hold it meanwhile)."""

    async def tenant_id() -> str:
        graph = open_graph(settings)
        try:
            return (await TenantRepository(graph).named(tenant_name)).id
        finally:
            await graph.close()

    tenant = asyncio.run(tenant_id())
    index = EdgeLayoutIndex(settings.vectors.path / settings.vectors.collection, dimension=384)
    index.ensure()
    try:
        return {point.id for point in index.get(tenant, ids)}
    finally:
        index.close()


async def post_without_relay(
    settings: Settings, tenant_name: str, definition: dict[str, Any]
) -> FormVersionCreated:
    """A post to form `crash-window` that stops at the graph: what a crash before the index upsert leaves."""
    graph = open_graph(settings)
    try:
        tenant = (await TenantRepository(graph).named(tenant_name)).id
        processor = FormVersionProcessor(versions=FormVersionRepository(graph), relay=None, index=None)
        return await processor.ingest(
            tenant=tenant, form_key="crash-window", body=FormVersionCreate(definition=definition)
        )
    finally:
        await graph.close()


async def commit_without_indexing(settings: Settings, tenant_name: str, definition: dict[str, Any]) -> str:
    """What a crash between graph commit and index upsert leaves: a version with an open outbox entry."""
    created = await post_without_relay(settings, tenant_name, definition)
    assert created.created
    assert created.index_pending
    return created.id


def wait_until_drained(settings: Settings, tenant_name: str) -> None:
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while (left := sum(map(len, asyncio.run(open_entries(settings, tenant_name))))) > 0:
        assert time.monotonic() < deadline, f"{left} outbox entries still open after {DRAIN_TIMEOUT_S}s"
        time.sleep(0.5)


def pageforge_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PAGEFORGE), *args], env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False
    )


def outcome(run: subprocess.CompletedProcess[str]) -> str:
    """What a failed CLI run said: its output and the end of its log."""
    return f"exit {run.returncode}\n{run.stdout}\n{run.stderr[-3000:]}"


def versions_of(client: httpx.Client, form_key: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/forms/{form_key}/versions", params={"limit": 200})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


@dataclass(frozen=True)
class AfterKill:
    """What one kill left: acknowledged so far, versions nobody was told about, layouts in the outbox."""

    acknowledged: int
    unanswered: int
    open_layouts: int


def check_after_kill(
    settings: Settings, tenant_name: str, acknowledged: list[Acknowledged], known: set[str]
) -> AfterKill:
    """Nothing acknowledged is lost; each acknowledged layout is in the index or waits in the outbox, and
    every answer that said "indexed" holds. `known`: versions the test wrote itself."""
    versions = asyncio.run(tenant_fingerprints(settings, tenant_name))
    in_graph = {v.id for v in versions}
    open_layouts = {v.id for v in versions if v.pending}
    acked = {ack.id for ack in acknowledged}
    assert acked <= in_graph, f"acknowledged, then lost: {acked - in_graph}"
    # Each client has at most one post unanswered, and a post lands at most once.
    unanswered = in_graph - acked - known
    assert len(unanswered) <= CLIENTS, unanswered
    said_indexed = {ack.id for ack in acknowledged if ack.indexed}
    indexed = indexed_ids(settings, tenant_name, sorted(acked))
    assert said_indexed <= indexed, f"said indexed, not in the index: {said_indexed - indexed}"
    assert not open_layouts & said_indexed
    unindexed = acked - indexed - open_layouts
    assert not unindexed, f"acknowledged, neither indexed nor in the outbox: {unindexed}"
    return AfterKill(len(acknowledged), len(unanswered), len(open_layouts))


def check_chains(client: httpx.Client, plans: list[list[Step]], acknowledged: list[Acknowledged]) -> None:
    """Each form holds exactly its acknowledged versions, once each, with the content sent and the parents
    acknowledged, as one chain in the order posted (the default parent is the form's latest)."""
    by_form: dict[str, list[Acknowledged]] = defaultdict(list)
    for ack in sorted(acknowledged, key=lambda ack: ack.step.number):
        by_form[ack.step.form_key].append(ack)
    steps_by_form: dict[str, list[Step]] = defaultdict(list)
    for step in itertools.chain.from_iterable(plans):
        steps_by_form[step.form_key].append(step)
    assert by_form.keys() == steps_by_form.keys()
    for form_key, acks in by_form.items():
        steps = steps_by_form[form_key]
        assert [ack.step for ack in acks] == steps, f"{form_key}: a step acknowledged twice or never"
        versions = versions_of(client, form_key)
        assert [v["id"] for v in versions] == [ack.id for ack in acks], f"{form_key}: lost, doubled or unsent"
        assert [v["content_hash"] for v in versions] == [step.content_hash for step in steps]
        assert [ack.content_hash for ack in acks] == [step.content_hash for step in steps]
        assert [v["number"] for v in versions] == list(range(1, len(steps) + 1))
        assert versions[0]["parents"] == []
        for parent, child in itertools.pairwise(versions):
            assert child["parents"] == [parent["id"]], f"{form_key}: lineage broken at {child}"
        for ack, version in zip(acks, versions, strict=True):
            assert version["parents"] == ack.parents, (form_key, ack, version)


def kill_plan(rng: random.Random) -> list[tuple[int, float]]:
    """After how many acknowledgements each kill comes, and after what delay then."""
    points = sorted(rng.sample(range(KILL_SPACING, VERSIONS - KILL_SPACING + 1, KILL_SPACING), KILLS))
    return [(point, round(rng.uniform(0, MAX_KILL_DELAY_S), 3)) for point in points]


def test_kill_9_five_times_mid_ingest_loses_nothing_acknowledged_and_the_index_catches_up(
    settings: Settings, corpora: Path, tmp_path: Path
) -> None:
    seed = int(os.environ.get("CRASH_SEED") or random.randrange(2**32))
    kills = kill_plan(random.Random(seed))
    print(f"seed {seed} (rerun with CRASH_SEED={seed}): kills after (acknowledgements, delay s) {kills}")
    started = time.monotonic()
    tenant = create_tenant(settings)
    env = server_env(settings)
    plans = client_plans(corpora)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    ingest = Ingest()
    threads = [client_thread(url, tenant, steps, ingest, me) for me, steps in enumerate(plans)]
    servers: list[ApiServer] = []
    after_kills: list[AfterKill] = []
    known: set[str] = set()
    try:
        for life, (kill_at, delay) in enumerate(kills, start=1):
            # Restarted on the same port, Neo4j and index directory: clients just retry their address.
            server = ApiServer(env, tmp_path / f"server-{life}.log", port=port)
            servers.append(server)
            server.wait_healthy()
            if life == 1:
                for thread in threads:
                    thread.start()
            ingest.wait_for(kill_at, server)
            time.sleep(delay)
            cut_off = ingest.cut_off_counts()
            server.kill()
            assert server.process.returncode == -signal.SIGKILL
            ingest.next_life(cut_off)
            after_kills.append(check_after_kill(settings, tenant.name, ingest.snapshot(), known))
            if life == 1:
                crash_window = plans[0][0].definition
                known.add(asyncio.run(commit_without_indexing(settings, tenant.name, crash_window)))

        last = ApiServer(env, tmp_path / f"server-{KILLS + 1}.log", port=port)
        servers.append(last)
        last.wait_healthy()
        for thread in threads:
            thread.join(timeout=INGEST_TIMEOUT_S)
            assert not thread.is_alive(), f"a client hung:\n{last.log_tail()}"
        assert not ingest.errors, ingest.errors
        acknowledged = ingest.snapshot()
        assert len(acknowledged) == VERSIONS
        ingest_s = time.monotonic() - started
        wait_until_drained(settings, tenant.name)
        with httpx.Client(base_url=last.url, headers=tenant.headers, timeout=30) as client:
            check_chains(client, plans, acknowledged)
            for version_id in known:
                assert client.get(f"/api/v1/form-versions/{version_id}").status_code == 200
        committed = len(acknowledged) + len(known)

        busy = pageforge_cli(env, "reconcile", "--tenant", tenant.name, "--dry-run")
        assert busy.returncode == 1
        assert "in use by another process" in busy.stderr, busy.stderr
        assert "stop `pageforge serve` first" in busy.stderr
        # uvicorn shuts down cleanly, then re-raises SIGTERM, so the exit status names the signal.
        assert last.terminate() in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in last.log_tail()
    finally:
        ingest.stopped.set()
        for server in servers:
            server.close()

    all_ids = sorted({ack.id for ack in acknowledged} | known)
    assert indexed_ids(settings, tenant.name, all_ids) == set(all_ids)
    # A dry run: the relay, not reconcile, must have brought the index level with the graph.
    level = pageforge_cli(env, "reconcile", "--tenant", tenant.name, "--dry-run")
    assert level.returncode == 0, outcome(level)
    assert f"{committed} versions in the graph, {committed} points in the index" in level.stdout, level.stdout
    assert "before: missing 0, orphaned 0, stale 0, stale context 0" in level.stdout, level.stdout

    rate = len(acknowledged) / ingest_s
    print(
        f"{len(acknowledged)} acknowledged in {ingest_s:.0f}s ({rate:.1f}/s, restarts included): "
        "lost 0, duplicates 0, unsent 0"
    )
    previous = 0
    for kill, ((kill_at, delay), after) in enumerate(zip(kills, after_kills, strict=True), start=1):
        retried = [ack for ack in acknowledged if ack.interrupted and ack.life == kill + 1]
        landed = sum(not ack.created for ack in retried)
        print(
            f"kill {kill} at {kill_at}+{delay}s: {after.acknowledged - previous} acknowledged in that life "
            f"({sum(a.indexed for a in acknowledged if a.life == kill)} said indexed); after it "
            f"{after.unanswered} unanswered in the graph, {after.open_layouts} layouts in the outbox; "
            f"{len(retried)} cut off and sent again, {landed} of them had landed "
            f"({sum(a.indexed for a in retried if not a.created)} of those said indexed)"
        )
        previous = after.acknowledged
        # The kill came mid-request; what landed unanswered was found again on the retry, not written twice.
        assert retried, f"kill {kill} cut no post off"
        assert landed == after.unanswered, f"kill {kill}"


def test_a_post_sent_again_after_a_kill_reports_the_layout_it_left_in_the_outbox(
    settings: Settings, corpora: Path
) -> None:
    """The answer to a retry of a post whose version landed before the kill: that version, not yet indexed."""
    tenant = create_tenant(settings)
    definition = source_forms(corpora, 1)[0][1]
    landed = asyncio.run(commit_without_indexing(settings, tenant.name, definition))
    again = asyncio.run(post_without_relay(settings, tenant.name, definition))
    assert (again.id, again.created) == (landed, False)
    assert again.index_pending


def test_reconcile_indexes_what_a_crash_left_in_the_outbox_and_reindex_rebuilds(
    settings: Settings, corpora: Path
) -> None:
    """Versions committed, never indexed (no server came back to drain them): reconcile finds them missing,
    indexes them and closes their outbox entries; reindex rebuilds the points."""
    tenant = create_tenant(settings)
    env = server_env(settings)
    ids = {
        asyncio.run(commit_without_indexing(settings, tenant.name, document))
        for _, document in source_forms(corpora, 2)
    }

    reconciled = pageforge_cli(env, "reconcile", "--tenant", tenant.name)
    assert reconciled.returncode == 0, outcome(reconciled)
    assert "2 versions in the graph, 0 points in the index" in reconciled.stdout, reconciled.stdout
    assert "before: missing 2, orphaned 0, stale 0, stale context 0" in reconciled.stdout, reconciled.stdout
    assert "after: missing 0, orphaned 0, stale 0, stale context 0" in reconciled.stdout, reconciled.stdout
    assert indexed_ids(settings, tenant.name, sorted(ids)) == ids
    assert asyncio.run(open_entries(settings, tenant.name)) == (set(), set())

    rebuilt = pageforge_cli(env, "reindex", "--tenant", tenant.name)
    assert rebuilt.returncode == 0, outcome(rebuilt)
    assert "reindexed 2 layouts" in rebuilt.stdout
    assert indexed_ids(settings, tenant.name, sorted(ids)) == ids

"""Bulk ingest on the real stack: Neo4j of the test run, Qdrant Edge in a tmp dir, the real model."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.formversions.bulk import BulkIngestReport, owned_bulk_ingestor, plan_ingest, prepare_unit
from app.resources import open_graph
from app.settings import Settings
from app.versions import normalise_document
from graph.forms import FormVersionRepository, TenantGraphCounts
from graph.server import LocalNeo4jServer
from graph.tenants import Tenant, TenantRepository
from ingest import content_hash
from tests.conftest import settings_for
from tests.corpora import FOLDERS, manifest
from vectors.edge import EdgeLayoutIndex
from vectors.embedder import VectorMemo

pytestmark = pytest.mark.slow

# Chains whose content returns to an earlier version: that version is reused (versions are
# content-addressed per form), so the versions in between are not ancestors of the chain's last.
REVERTING_CHAINS = {"skjemagruppetest", "40-10007"}


@dataclass(frozen=True)
class Chain:
    folder: str
    form_key: str
    hashes: list[str]


@dataclass
class CorpusIngest:
    """What ingesting the corpora twice did, read back from the graph and the index."""

    chains: list[Chain]
    latest: list[tuple[str, str]]
    first: BulkIngestReport
    second: BulkIngestReport
    counts_first: TenantGraphCounts
    counts_second: TenantGraphCounts
    points_first: int
    points_second: int
    manifest_rows: int
    ancestry: dict[str, list[str]] = field(default_factory=dict)
    version_counts: dict[str, int] = field(default_factory=dict)
    present_latest: set[tuple[str, str]] = field(default_factory=set)
    # Every version's layout text; over a sample, the largest gap between indexed and fresh vectors.
    layout_texts: list[str] = field(default_factory=list)
    worst_vector_gap: float = 0.0


def file_hash(path: Path, form_key: str) -> str:
    return content_hash(normalise_document(path.read_bytes(), None, form_key))


def manifest_chains(corpora: Path, folder: str) -> tuple[list[Chain], list[tuple[str, str]], int]:
    """The revision chains (hashed), and (form key, hash) of each latest file, from the manifest."""
    rows = manifest(folder)
    by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row.get("form_key"):
            by_key[row["form_key"]].append(row)
    heads: dict[str, str] = {}
    chains = []
    for key, chain_rows in by_key.items():
        chain_rows.sort(key=lambda r: r["seq"])
        heads.setdefault(chain_rows[-1]["repo_path"], key)
        hashes = [file_hash(corpora / folder / r["file"], key) for r in chain_rows]
        chains.append(Chain(folder, key, hashes))
    latest = []
    for row in rows:
        if not row.get("form_key"):
            key = heads.get(row["repo_path"]) or Path(row["file"]).stem
            latest.append((key, file_hash(corpora / folder / row["file"], key)))
    return chains, latest, len(rows)


def distinct_in_order(hashes: list[str]) -> list[str]:
    return [h for i, h in enumerate(hashes) if i == 0 or h != hashes[i - 1]]


def lineage_path(hashes: list[str]) -> list[str]:
    """The ancestry of the chain's last version, oldest first, when equal content is one version."""
    first_seen = {h: hashes.index(h) for h in hashes}
    position = first_seen[hashes[-1]]
    path = [hashes[position]]
    while position > 0:
        position = first_seen[hashes[position - 1]]
        path.append(hashes[position])
    return path[::-1]


def create_tenant(settings: Settings) -> Tenant:
    async def work() -> Tenant:
        graph = open_graph(settings)
        try:
            return await TenantRepository(graph).create(f"bulk-{uuid.uuid4().hex[:8]}")
        finally:
            await graph.close()

    return asyncio.run(work())


@pytest.fixture(scope="module")
def corpus_ingest(
    neo4j_server: LocalNeo4jServer, corpora: Path, tmp_path_factory: pytest.TempPathFactory
) -> CorpusIngest:
    """The three corpora ingested into a fresh tenant, then ingested again."""
    settings = settings_for(neo4j_server.bolt_uri, tmp_path_factory.mktemp("bulk"))
    tenant = create_tenant(settings)
    chains: list[Chain] = []
    latest: list[tuple[str, str]] = []
    manifest_rows = 0
    for folder in FOLDERS:
        folder_chains, folder_latest, rows = manifest_chains(corpora, folder)
        chains += folder_chains
        latest += folder_latest
        manifest_rows += rows
    units = [unit for folder in FOLDERS for unit in plan_ingest(corpora / folder)]

    async def work() -> CorpusIngest:
        async with owned_bulk_ingestor(settings) as ingestor:
            versions, index = ingestor.versions, ingestor.index
            first = await ingestor.ingest(tenant=tenant.id, units=units)
            counts_first, points_first = await versions.counts(tenant.id), index.count(tenant.id)
            second = await ingestor.ingest(tenant=tenant.id, units=units)
            result = CorpusIngest(
                chains=chains,
                latest=latest,
                first=first,
                second=second,
                counts_first=counts_first,
                counts_second=await versions.counts(tenant.id),
                points_first=points_first,
                points_second=index.count(tenant.id),
                manifest_rows=manifest_rows,
            )
            last = await versions.find_by_contents(tenant.id, [(c.form_key, c.hashes[-1]) for c in chains])
            for chain in chains:
                ancestors = await versions.ancestry(tenant.id, last[(chain.form_key, chain.hashes[-1])].id)
                assert [a.depth for a in ancestors] == list(range(len(ancestors))), "lineage is not a path"
                result.ancestry[chain.form_key] = [a.content_hash for a in reversed(ancestors)]
                form = await versions.get_form(tenant.id, chain.form_key)
                assert form is not None
                result.version_counts[chain.form_key] = form.version_count
            result.present_latest = set(await versions.find_by_contents(tenant.id, latest))
            ids = [f.id for f in await ingestor.inventory.fingerprints(tenant.id, after="", limit=5000)]
            layouts = await ingestor.inventory.layouts(ids)
            result.layout_texts = [layout.layout_text for layout in layouts]
            sample = layouts[::7]
            points = {p.id: p for p in index.get(tenant.id, [s.id for s in sample], with_vectors=True)}
            fresh = ingestor.relay.embedder.encode([layout.layout_text for layout in sample])
            result.worst_vector_gap = max(
                float(np.abs(np.asarray(points[layout.id].vector) - vector).max())
                for layout, vector in zip(sample, fresh, strict=True)
            )
            return result

    return asyncio.run(work())


def test_every_file_of_the_corpora_is_ingested_without_failure(corpus_ingest: CorpusIngest) -> None:
    report = corpus_ingest.first
    assert report.failures == []
    assert report.files == corpus_ingest.manifest_rows
    assert report.created + report.present == report.files
    assert report.created == corpus_ingest.counts_first.versions


def test_every_revision_chain_becomes_its_lineage(corpus_ingest: CorpusIngest) -> None:
    assert len(corpus_ingest.chains) == 61 + 71 + 175
    for chain in corpus_ingest.chains:
        assert corpus_ingest.ancestry[chain.form_key] == lineage_path(chain.hashes), chain.form_key
        if chain.form_key not in REVERTING_CHAINS:
            assert corpus_ingest.ancestry[chain.form_key] == distinct_in_order(chain.hashes), chain.form_key
    reverting = {
        c.form_key for c in corpus_ingest.chains if len(set(c.hashes)) < len(distinct_in_order(c.hashes))
    }
    assert reverting == REVERTING_CHAINS


def test_latest_files_are_the_versions_their_chains_end_with(corpus_ingest: CorpusIngest) -> None:
    latest_by_key = dict(corpus_ingest.latest)
    for chain in corpus_ingest.chains:
        expected = len(set(chain.hashes))
        if chain.form_key in latest_by_key and latest_by_key[chain.form_key] not in chain.hashes:
            expected += 1
        assert corpus_ingest.version_counts[chain.form_key] == expected, chain.form_key
    assert corpus_ingest.present_latest == set(corpus_ingest.latest)


def test_index_holds_every_version_and_the_outbox_is_empty(corpus_ingest: CorpusIngest) -> None:
    counts = corpus_ingest.counts_first
    assert corpus_ingest.points_first == counts.versions
    assert counts.pending == 0
    assert counts.edges == counts.versions - counts.forms == corpus_ingest.first.edges


def test_each_distinct_layout_text_is_encoded_once_and_every_point_holds_its_own_vector(
    corpus_ingest: CorpusIngest,
) -> None:
    assert len(corpus_ingest.layout_texts) == corpus_ingest.first.created
    assert corpus_ingest.first.encoded == len(set(corpus_ingest.layout_texts)) < corpus_ingest.first.created
    assert corpus_ingest.worst_vector_gap < 1e-4


def test_ingesting_again_adds_nothing(corpus_ingest: CorpusIngest) -> None:
    second = corpus_ingest.second
    assert (second.created, second.edges, second.indexed, second.encoded) == (0, 0, 0, 0)
    assert second.present == corpus_ingest.manifest_rows
    assert corpus_ingest.counts_second == corpus_ingest.counts_first
    assert corpus_ingest.points_second == corpus_ingest.points_first


# --- The command line ----------------------------------------------------------------------------


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PAGEFORGE_NEO4J__URI": settings.neo4j.bolt_uri,
        "PAGEFORGE_VECTORS__PATH": str(settings.vectors.path),
        "PAGEFORGE_LOG_LEVEL": "WARNING",
    }
    cli = Path(sys.executable).with_name("pageforge")
    return subprocess.run([str(cli), *args], env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture
def forms_folder(corpora: Path, tmp_path: Path) -> Path:
    """Three NAV test forms, copied into a tmp folder of definitions."""
    folder = tmp_path / "forms"
    folder.mkdir()
    for name in ("accordion", "activities", "attachments"):
        (folder / f"{name}.json").write_bytes(
            (corpora / "nav-formio" / "test-forms" / f"{name}.json").read_bytes()
        )
    return folder


def test_cli_ingests_a_folder_reports_bad_files_and_derives_changed_ones(
    settings: Settings, forms_folder: Path
) -> None:
    tenant = create_tenant(settings)
    (forms_folder / "broken.json").write_text('{"display": "form", "components": [')

    first = run_cli(settings, "ingest", str(forms_folder), "--tenant", tenant.name, "--batch-size", "2")
    assert first.returncode == 1, first.stderr
    assert f"failed: {forms_folder / 'broken.json'}:" in first.stderr
    assert "4 files read, 3 versions created, 0 already present, 0 lineage edges, 1 failed" in first.stdout

    (forms_folder / "broken.json").unlink()
    accordion = json.loads((forms_folder / "accordion.json").read_text())
    accordion["title"] = "Accordion, second edition"
    (forms_folder / "accordion.json").write_text(json.dumps(accordion))
    second = run_cli(settings, "ingest", str(forms_folder), "--tenant", tenant.name)
    assert second.returncode == 0, second.stderr
    assert "3 files read, 1 versions created, 2 already present, 1 lineage edges, 0 failed" in second.stdout

    async def accordion_lineage() -> list[int]:
        graph = open_graph(settings)
        try:
            versions = FormVersionRepository(graph)
            form = await versions.get_form(tenant.id, "accordion")
            assert form is not None
            assert form.latest_id is not None
            return [a.number for a in await versions.ancestry(tenant.id, form.latest_id)]
        finally:
            await graph.close()

    assert asyncio.run(accordion_lineage()) == [2, 1]


def test_cli_refuses_an_unknown_tenant(settings: Settings, forms_folder: Path) -> None:
    result = run_cli(settings, "ingest", str(forms_folder), "--tenant", "nobody-" + uuid.uuid4().hex[:6])
    assert result.returncode == 1
    assert "no tenant named" in result.stderr
    assert "pageforge tenant create" in result.stderr


def test_cli_fails_clearly_while_another_process_owns_the_index(
    settings: Settings, forms_folder: Path
) -> None:
    tenant = create_tenant(settings)
    held = EdgeLayoutIndex(settings.vectors.path / settings.vectors.collection, dimension=384)
    held.ensure()
    try:
        result = run_cli(settings, "ingest", str(forms_folder), "--tenant", tenant.name)
    finally:
        held.close()
    assert result.returncode == 1
    assert "in use by another process" in result.stderr
    assert "stop `pageforge serve`" in result.stderr


def test_an_ingest_takes_the_vectors_a_memo_knows_and_encodes_only_the_rest(
    settings: Settings, forms_folder: Path
) -> None:
    tenant = create_tenant(settings)
    units = plan_ingest(forms_folder)
    texts = {
        unit.form_key: prepared.version.layout_text
        for unit in units
        for prepared in prepare_unit(unit, None)
        if prepared.version is not None
    }
    # A vector the model would never give the accordion's text: the point can only hold it from the memo.
    kept = np.random.default_rng(7).standard_normal((1, 384)).astype(np.float32)
    kept /= np.linalg.norm(kept)
    memo = VectorMemo.knowing([texts["accordion"]], kept)

    async def work() -> tuple[BulkIngestReport, dict[str, Any]]:
        async with owned_bulk_ingestor(settings) as ingestor:
            report = await ingestor.ingest(tenant=tenant.id, units=units, memo=memo)
            ids = [f.id for f in await ingestor.inventory.fingerprints(tenant.id, after="", limit=10)]
            points = ingestor.index.get(tenant.id, ids, with_vectors=True)
            return report, {point.payload["form_key"]: point.vector for point in points}

    report, vectors = asyncio.run(work())

    assert (report.created, report.encoded) == (3, 2)
    assert np.allclose(vectors["accordion"], kept[0], atol=1e-6)
    assert not np.allclose(vectors["activities"], kept[0], atol=1e-2)

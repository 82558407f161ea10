"""Bulk ingest: a folder of definitions, or a corpus with revision chains, as versions with lineage.

Files are grouped into units: one form's files in lineage order, each deriving from the one before.
Units are prepared (import, hash, layout text, diff from the previous file) off the event loop,
optionally in worker processes, a group or two ahead of the group being written. The layouts a
prepared group will create are encoded at once, ahead of their writes, into the embedder's memo
(a byte-identical layout text is encoded once); after a write commits, the relay upserts them from
the memo and closes their outbox entries. Writes go level by level across a group's units, in batches
of one statement each; a long revision chain fills its batches with consecutive versions of itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread

from app.errors import Invalid
from app.indexing import OutboxRelay
from app.resources import owned_index
from app.settings import Settings
from app.versions import check_form_key, diff_from, new_version, normalise_document, structural_diff
from graph.forms import (
    FormVersionRepository,
    LayoutInventory,
    NewVersion,
    ParentDiff,
    PendingLayout,
    VersionRef,
)
from ingest import DefinitionError, FormDefinition, content_hash
from vectors.embedder import VectorMemo
from vectors.index import LayoutIndex

T = TypeVar("T")

MANIFEST = "manifest.jsonl"
# Written layouts handed to the encoder at most this many batches at a time.
INDEX_CHUNK_BATCHES = 4
# Groups prepared (and their new layouts encoded) ahead of the group being written.
PREPARE_AHEAD = 2
DEFINITION_SUFFIXES = (".json", ".yaml", ".yml")


@dataclass(frozen=True, slots=True)
class IngestUnit:
    """One form's files in lineage order; the first derives from the form's latest or starts a root."""

    form_key: str
    files: tuple[Path, ...]
    first_from_latest: bool


@dataclass(frozen=True, slots=True)
class PreparedFile:
    """A file turned into the version it would become, or the reason it cannot be one."""

    path: Path
    error: str | None = None
    version: NewVersion | None = None
    # Index in the unit of the file this one derives from (the nearest earlier file that imported).
    parent_index: int | None = None
    # The diff from that file; None when the parent is the form's latest version, diffed at write time.
    diff: tuple[str, list[dict[str, Any]]] | None = None
    # Kept only when the parent is the form's latest version, to diff against it at write time.
    definition: FormDefinition | None = None


@dataclass(frozen=True, slots=True)
class FileFailure:
    path: Path
    reason: str


@dataclass
class BulkIngestReport:
    """What a bulk ingest did."""

    files: int = 0
    created: int = 0
    present: int = 0
    edges: int = 0
    indexed: int = 0
    seconds: float = 0.0
    # Time spent embedding and upserting layouts, overlapping the reading and writing of later files.
    index_seconds: float = 0.0
    # Layout texts the model encoded: a text byte-identical to one encoded before reuses its vector.
    encoded: int = 0
    failures: list[FileFailure] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.files} files read, {self.created} versions created, {self.present} already present, "
            f"{self.edges} lineage edges, {len(self.failures)} failed, {self.seconds:.1f} s"
        )


ProgressCallback = Callable[[int, int], None]


def _definition_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in DEFINITION_SUFFIXES)


def plan_folder(folder: Path) -> list[IngestUnit]:
    """Each definition file in the folder is one form, keyed by its file stem, derived from its latest."""
    return [IngestUnit(path.stem, (path,), first_from_latest=True) for path in _definition_files(folder)]


def read_manifest(manifest: Path) -> list[dict[str, Any]]:
    """The rows of a corpus manifest (one JSON object per line, each naming its `file`); 422 if malformed."""
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise Invalid(f"{manifest}:{number}: not JSON: {exc.msg}") from exc
        if not isinstance(row, dict) or not isinstance(row.get("file"), str):
            raise Invalid(f"{manifest}:{number}: a manifest row needs a 'file'")
        rows.append(row)
    return rows


def plan_corpus(folder: Path) -> list[IngestUnit]:
    """Revision chains of the manifest as units; a latest file joins the chain it is the head of.

    A row with `form_key`/`seq`/`prev_file` is a revision: it derives from `prev_file`. A row
    without is a latest file: it continues the chain whose last revision has its `repo_path`, or,
    when no chain does, is a form of its own keyed by its file stem.
    """
    manifest = folder / MANIFEST
    chains: dict[str, list[dict[str, Any]]] = {}
    latest: list[dict[str, Any]] = []
    for row in read_manifest(manifest):
        if row.get("form_key"):
            chains.setdefault(str(row["form_key"]), []).append(row)
        else:
            latest.append(row)
    heads: dict[str, str] = {}
    ordered: dict[str, list[Path]] = {}
    for key, rows in chains.items():
        rows.sort(key=lambda r: int(r["seq"]))
        previous: str | None = None
        for row in rows:
            if row.get("prev_file") != previous:
                raise Invalid(
                    f"{manifest}: {row['file']} derives from {row.get('prev_file')!r}, "
                    f"expected {previous!r}: only linear chains in seq order are supported"
                )
            previous = row["file"]
        ordered[key] = [folder / r["file"] for r in rows]
        heads.setdefault(str(rows[-1].get("repo_path")), key)
    units: list[IngestUnit] = []
    for row in latest:
        head = heads.pop(str(row.get("repo_path")), "")
        if head:
            ordered[head].append(folder / row["file"])
        else:
            units.append(IngestUnit(Path(row["file"]).stem, (folder / row["file"],), first_from_latest=True))
    units.extend(IngestUnit(key, tuple(files), first_from_latest=False) for key, files in ordered.items())
    return units


def plan_ingest(path: Path) -> list[IngestUnit]:
    """The units to ingest from a corpus folder (with a manifest) or a plain folder of definitions."""
    if not path.is_dir():
        raise Invalid(f"{path} is not a folder")
    return plan_corpus(path) if (path / MANIFEST).is_file() else plan_folder(path)


def _read_definition(path: Path, source_format: str | None, form_key: str) -> FormDefinition:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DefinitionError(f"cannot read: {exc.strerror}") from exc
    return normalise_document(raw, source_format, form_key)


def prepare_unit(unit: IngestUnit, source_format: str | None) -> list[PreparedFile]:
    """Import, hash and diff a unit's files (pure CPU work, safe in a worker process)."""
    try:
        check_form_key(unit.form_key)
    except Invalid as exc:
        return [PreparedFile(path, error=exc.detail) for path in unit.files]
    prepared: list[PreparedFile] = []
    previous: FormDefinition | None = None
    previous_index: int | None = None
    for index, path in enumerate(unit.files):
        try:
            definition = _read_definition(path, source_format, unit.form_key)
            version = new_version(
                definition, form_key=unit.form_key, digest=content_hash(definition), parents=[]
            )
            diff = structural_diff(previous, definition) if previous is not None else None
        except (DefinitionError, ValueError, RecursionError) as exc:
            prepared.append(PreparedFile(path, error=str(exc) or type(exc).__name__))
            continue
        from_latest = previous_index is None and unit.first_from_latest
        prepared.append(
            PreparedFile(
                path,
                version=version,
                parent_index=previous_index,
                diff=diff,
                definition=definition if from_latest else None,
            )
        )
        previous, previous_index = definition, index
    return prepared


def group_units(units: Sequence[IngestUnit], files_per_group: int) -> list[list[IngestUnit]]:
    """Longest units first, in groups of about `files_per_group` files with distinct form keys."""
    waiting = sorted(units, key=lambda u: (-len(u.files), u.form_key))
    groups: list[list[IngestUnit]] = []
    while waiting:
        group: list[IngestUnit] = []
        keys: set[str] = set()
        size = 0
        deferred: list[IngestUnit] = []
        for unit in waiting:
            if unit.form_key in keys or (group and size + len(unit.files) > files_per_group):
                deferred.append(unit)
                continue
            group.append(unit)
            keys.add(unit.form_key)
            size += len(unit.files)
        groups.append(group)
        waiting = deferred
    return groups


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass
class _UnitState:
    unit: IngestUnit
    prepared: list[PreparedFile]
    version_ids: dict[int, str] = field(default_factory=dict)


class BulkIngestor:
    """Ingests many files as versions: batched UNWIND writes, batched encoding and upserts."""

    def __init__(
        self,
        *,
        versions: FormVersionRepository,
        inventory: LayoutInventory,
        relay: OutboxRelay,
        index: LayoutIndex,
        batch_size: int = 64,
        workers: int = 0,
    ) -> None:
        self.versions = versions
        self.inventory = inventory
        self.relay = relay
        self.index = index
        self.batch_size = batch_size
        self.workers = workers
        self._to_index: list[PendingLayout] = []
        self._indexing: asyncio.Task[None] | None = None
        # Encoding ahead of the group being written (it follows the groups before it).
        self._encoded: asyncio.Task[None] | None = None

    async def ingest(
        self,
        *,
        tenant: str,
        units: Sequence[IngestUnit],
        source_format: str | None = None,
        on_progress: ProgressCallback | None = None,
        optimize: bool = True,
        memo: VectorMemo | None = None,
    ) -> BulkIngestReport:
        """Ingest the units for the tenant; failures of single files are reported, not raised. `optimize`
        builds the index after, before returning (a serving index optimises itself in the background).
        A `memo` holds vectors known already (an earlier ingest's): its texts are not encoded again."""
        started = time.perf_counter()
        report = BulkIngestReport()
        total = sum(len(unit.files) for unit in units)
        groups = group_units(units, max(4 * self.batch_size, 256))
        if len(groups) > 1:
            # The smallest group (short units, wide levels) first: its layouts reach the encoder soonest.
            groups.insert(0, groups.pop())
        executor: Executor | None = None
        if self.workers > 0:
            executor = ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"))
        # Per group: its preparation, and the encoding of the layouts it will create (into the memo,
        # ahead of the writes). Each runs after the group before, up to PREPARE_AHEAD groups ahead.
        ahead: deque[tuple[asyncio.Future[list[list[PreparedFile]]], asyncio.Task[None]]] = deque()
        pending = iter(groups)
        last_prepared: asyncio.Future[list[list[PreparedFile]]] | None = None
        last_encoding: asyncio.Task[None] | None = None
        with self.relay.embedder.remembering(memo) as remembered:
            try:
                for group in groups:
                    while len(ahead) < PREPARE_AHEAD and (upcoming := next(pending, None)) is not None:
                        last_prepared = self._prepare(upcoming, source_format, executor, after=last_prepared)
                        last_encoding = self._encode_ahead(tenant, last_prepared, after=last_encoding)
                        ahead.append((last_prepared, last_encoding))
                    prepared, self._encoded = ahead.popleft()
                    files = await prepared
                    states = [
                        _UnitState(unit, unit_files) for unit, unit_files in zip(group, files, strict=True)
                    ]
                    await self._write_group(tenant, states, report, total, on_progress)
                await self._index_written(report, everything=True)
            finally:
                if executor is not None:
                    executor.shutdown(cancel_futures=True)
                for task in [self._indexing, self._encoded, *(encoding for _, encoding in ahead)]:
                    if task is not None and not task.done():
                        task.cancel()
                self._indexing = self._encoded = None
            report.indexed += await self.relay.drain()
        report.encoded = remembered.encoded
        if optimize:
            await anyio.to_thread.run_sync(self.index.optimize)
        report.seconds = time.perf_counter() - started
        return report

    def _prepare(
        self,
        group: list[IngestUnit],
        source_format: str | None,
        executor: Executor | None,
        *,
        after: asyncio.Future[Any] | None,
    ) -> asyncio.Future[list[list[PreparedFile]]]:
        """The group's prepared files, worked out once the group before is prepared."""

        async def work() -> list[list[PreparedFile]]:
            if after is not None:
                await asyncio.wait([after])
            if executor is None:
                return await anyio.to_thread.run_sync(lambda: [prepare_unit(u, source_format) for u in group])
            loop = asyncio.get_running_loop()
            futures = [loop.run_in_executor(executor, prepare_unit, unit, source_format) for unit in group]
            return list(await asyncio.gather(*futures))

        return asyncio.ensure_future(work())

    def _encode_ahead(
        self,
        tenant: str,
        prepared: asyncio.Future[list[list[PreparedFile]]],
        *,
        after: asyncio.Task[None] | None,
    ) -> asyncio.Task[None]:
        """Encode the layouts the group will create, after the group before: the memo keeps them."""

        async def work() -> None:
            versions = [file.version for files in await prepared for file in files if file.version]
            pairs = [(version.form_key, version.content_hash) for version in versions]
            existing = await self.versions.find_by_contents(tenant, pairs)
            texts = [v.layout_text for v, pair in zip(versions, pairs, strict=True) if pair not in existing]
            if after is not None:
                await after
            for chunk in _chunks(list(dict.fromkeys(texts)), INDEX_CHUNK_BATCHES * self.batch_size):
                await self.relay.embedder.encode_async(chunk, batch_size=self.batch_size)

        return asyncio.create_task(work())

    async def _write_group(
        self,
        tenant: str,
        states: list[_UnitState],
        report: BulkIngestReport,
        total: int,
        on_progress: ProgressCallback | None,
    ) -> None:
        # Level by level across the group's units, so a file's parent is written before it: in an
        # earlier batch, or earlier in the same one (one statement writes a chain in order).
        depth = max(len(state.prepared) for state in states)
        ready: list[tuple[_UnitState, int]] = []
        for level in range(depth):
            for state in states:
                if level >= len(state.prepared):
                    continue
                prepared = state.prepared[level]
                if prepared.error is not None:
                    report.failures.append(FileFailure(prepared.path, prepared.error))
                    report.files += 1
                else:
                    ready.append((state, level))
        for batch in _chunks(ready, self.batch_size):
            await self._write_batch(tenant, batch, report)
            report.files += len(batch)
            if on_progress is not None:
                on_progress(report.files, total)

    async def _write_batch(
        self, tenant: str, batch: Sequence[tuple[_UnitState, int]], report: BulkIngestReport
    ) -> None:
        def version_of(item: tuple[_UnitState, int]) -> NewVersion:
            version = item[0].prepared[item[1]].version
            assert version is not None
            return version

        pairs = [(version_of(item).form_key, version_of(item).content_hash) for item in batch]
        existing = await self.versions.find_by_contents(tenant, pairs)
        missing = [item for item, pair in zip(batch, pairs, strict=True) if pair not in existing]
        for (state, index), pair in zip(batch, pairs, strict=True):
            if pair in existing:
                state.version_ids[index] = existing[pair].id
                report.present += 1
        from_latest = [
            state.unit.form_key
            for state, index in missing
            if state.unit.first_from_latest and state.prepared[index].parent_index is None
        ]
        latest = await self.versions.latest_many(tenant, from_latest)
        news: list[NewVersion] = []
        for state, index in missing:
            prepared = state.prepared[index]
            parents = await self._parents(state, prepared, latest.get(state.unit.form_key))
            news.append(dataclasses.replace(version_of((state, index)), parents=parents))
        if not news:
            return
        results = await self.versions.create_many(tenant, news)
        for (state, index), new, (stored, created) in zip(missing, news, results, strict=True):
            state.version_ids[index] = stored.id
            if not created:
                report.present += 1
                continue
            report.created += 1
            report.edges += len(new.parents)
            self._to_index.append(
                PendingLayout(
                    id=stored.id,
                    tenant=tenant,
                    form_key=stored.form_key,
                    number=stored.number,
                    content_hash=stored.content_hash,
                    layout_text=new.layout_text,
                )
            )
        await self._index_written(report, everything=False)

    async def _parents(
        self, state: _UnitState, prepared: PreparedFile, latest: VersionRef | None
    ) -> list[ParentDiff]:
        if prepared.parent_index is not None:
            assert prepared.diff is not None
            summary, changes = prepared.diff
            parent_id = state.version_ids.get(prepared.parent_index)
            if parent_id is None:
                # Written earlier in the same batch: named by the id it is sent with.
                parent = state.prepared[prepared.parent_index].version
                assert parent is not None
                parent_id = parent.id
            return [ParentDiff(parent_id, summary, changes)]
        if not state.unit.first_from_latest or latest is None:
            return []
        definition = prepared.definition
        assert definition is not None
        return [await anyio.to_thread.run_sync(diff_from, latest, definition)]

    async def _index_written(self, report: BulkIngestReport, *, everything: bool) -> None:
        """Hand written layouts to the relay; one chunk embeds while writing goes on.

        An idle encoder gets what is waiting (a batch or more); while it is busy, up to
        INDEX_CHUNK_BATCHES batches gather, which the model sorts by length so it pads less.
        """
        most = INDEX_CHUNK_BATCHES * self.batch_size
        while self._to_index:
            waiting = len(self._to_index)
            idle = self._indexing is None or self._indexing.done()
            if not (everything or waiting >= most or (idle and waiting >= self.batch_size)):
                break
            entries, self._to_index = self._to_index[:most], self._to_index[most:]
            await self._indexed()
            self._indexing = asyncio.create_task(self._index(entries, report, self._encoded))
        if everything:
            await self._indexed()

    async def _indexed(self) -> None:
        """Wait for the batch in flight (its failure surfaces here)."""
        if self._indexing is not None:
            task, self._indexing = self._indexing, None
            await task

    async def _index(
        self, entries: list[PendingLayout], report: BulkIngestReport, encoded: asyncio.Task[None] | None
    ) -> None:
        started = time.perf_counter()
        if encoded is not None:
            # Encoded ahead up to the group being written: the relay finds these vectors in the memo.
            await encoded
        await self.relay.index_layouts(entries)
        report.indexed += len(entries)
        report.index_seconds += time.perf_counter() - started


@asynccontextmanager
async def owned_bulk_ingestor(settings: Settings, *, workers: int = 0) -> AsyncIterator[BulkIngestor]:
    """A BulkIngestor on the resources the server opens; fails clearly if another process owns the index."""
    async with owned_index(settings, owner="the bulk ingest") as owned:
        yield BulkIngestor(
            versions=FormVersionRepository(owned.graph),
            inventory=LayoutInventory(owned.graph),
            relay=owned.relay,
            index=owned.index,
            batch_size=settings.embedder.batch_size,
            workers=workers,
        )

"""SysVersionProcessor: validate a release manifest, prepare its inline forms, diff it, commit it at once."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import anyio.to_thread

from app.errors import Conflict, Invalid, NotFound
from app.indexing import OutboxRelay, index_now
from app.sysversions.schemas import (
    FormChangeRead,
    PinExisting,
    PinInline,
    PinRead,
    ReleaseCreate,
    ReleaseCreated,
    ReleaseDiffRead,
    ReleaseRead,
    ReleaseSummary,
    SystemRead,
)
from app.versions import VersionWriter, check_form_key, check_key, normalise_document, resolve_parents
from graph.forms import FormVersionRepository, NewVersion, PendingLayout
from graph.releases import (
    NewRelease,
    PinnedContentRaced,
    PinnedVersionMissing,
    ReleaseParent,
    ReleaseRepository,
    StoredRelease,
    StoredSystem,
)
from ingest import DefinitionError, FormDefinition, content_hash, diff_definitions
from ingest.native import import_native


def check_system_key(system_key: str) -> None:
    check_key("system", system_key)


# Attempts at a release whose inline forms other writers keep changing meanwhile (their content became a
# version, or another version became the latest): as many as a single post gets.
CREATE_ATTEMPTS = 25


@dataclass(frozen=True, slots=True)
class PinPlan:
    """The validated pins of a manifest: versions that exist now, and inline forms still to add."""

    existing: dict[str, str]  # form_key -> version_id
    inline: dict[str, FormDefinition]  # form_key -> canonical definition whose content is no version yet

    def known(self) -> dict[str, str | None]:
        """Every pin by form key; None where the pinned content is not a version yet."""
        return {**self.existing, **dict.fromkeys(self.inline)}


def release_diff(
    parent: StoredRelease, pins: dict[str, str], summaries: dict[tuple[str, str], str]
) -> ReleaseDiffRead:
    """What changed from the parent release to `pins`; `summaries` holds each (new, old) form diff."""
    before = {pin.form_key: pin.version_id for pin in parent.pins}
    added = sorted(pins.keys() - before.keys())
    removed = sorted(before.keys() - pins.keys())
    kept = sorted(pins.keys() & before.keys())
    changed = [
        FormChangeRead(
            form_key=key,
            from_version_id=before[key],
            to_version_id=pins[key],
            summary=summaries[(pins[key], before[key])],
        )
        for key in kept
        if pins[key] != before[key]
    ]
    unchanged = len(kept) - len(changed)
    counts = [(len(added), "added"), (len(removed), "removed"), (len(changed), "changed")]
    summary = ", ".join(f"{n} {word}" for n, word in counts if n) or "no changes"
    return ReleaseDiffRead(
        parent_id=parent.id,
        parent_version=parent.version,
        summary=f"forms: {summary}; {unchanged} unchanged",
        forms_added=added,
        forms_removed=removed,
        forms_changed=changed,
        forms_unchanged_count=unchanged,
    )


def release_read(release: StoredRelease) -> ReleaseRead:
    return ReleaseRead(
        id=release.id,
        system_key=release.system_key,
        version=release.version,
        number=release.number,
        created_at=release.created_at,
        parents=[p.id for p in release.parents],
        pins=[
            PinRead(
                form_key=pin.form_key,
                version_id=pin.version_id,
                number=pin.number,
                content_hash=pin.content_hash,
            )
            for pin in release.pins
        ],
        diffs=[
            ReleaseDiffRead(parent_id=p.id, parent_version=p.version, summary=p.summary, **p.diff)
            for p in release.parents
        ],
    )


def system_read(system: StoredSystem) -> SystemRead:
    return SystemRead(
        key=system.key,
        release_count=system.release_count,
        latest_release_id=system.latest_id,
        created_at=system.created_at,
    )


def form_diff_summary(old: dict[str, Any], new: dict[str, Any]) -> str:
    """The one-line structural diff between two native definitions (CPU work: run it in a thread)."""
    return diff_definitions(import_native(old), import_native(new)).summary


def pins_as_stored(
    release: StoredRelease, pins: Mapping[str, str | None], fresh: Mapping[str, NewVersion]
) -> dict[str, str | None]:
    """The pins; a version not written yet (by form key) is named as the release's pin of its content."""
    stored = {pin.form_key: pin for pin in release.pins}
    return {
        key: stored[key].version_id
        if key in fresh and key in stored and stored[key].content_hash == fresh[key].content_hash
        else version_id
        for key, version_id in pins.items()
    }


class SysVersionProcessor:
    """Turns release manifests into immutable releases that pin form versions, with lineage and diffs."""

    def __init__(
        self,
        *,
        releases: ReleaseRepository,
        versions: FormVersionRepository,
        relay: OutboxRelay | None,
        max_fields: int | None = None,
    ) -> None:
        self.max_fields = max_fields
        self.releases = releases
        self.versions = versions
        self.writer = VersionWriter(versions)
        self.relay = relay

    async def create(self, *, tenant: str, system_key: str, body: ReleaseCreate) -> ReleaseCreated:
        """Store the manifest as a release of the system (or find the identical one).

        The release and the versions its inline forms add are written in one transaction: a manifest
        refused (a release of this name exists with other pins) writes none of them.
        """
        check_system_key(system_key)
        for _ in range(CREATE_ATTEMPTS - 1):
            try:
                return await self._create(tenant, system_key, body)
            except PinnedContentRaced:
                continue  # planned again, the raced content is an existing version now
        try:
            return await self._create(tenant, system_key, body)
        except PinnedContentRaced as exc:
            raise Conflict(
                f"forms of release {body.version!r} kept getting new versions while it was written ({exc}); "
                "retry"
            ) from exc

    async def _create(self, tenant: str, system_key: str, body: ReleaseCreate) -> ReleaseCreated:
        plan = await self._plan_pins(tenant, body.forms)
        existing = await self.releases.find_by_version(tenant, system_key, body.version)
        if existing is not None:
            return self._existing(existing, plan.known(), body.parents)
        parents = await self._resolve_parents(tenant, system_key, body.parents)

        prepared = {
            form_key: await self.writer.prepare(
                tenant=tenant, form_key=form_key, definition=definition, digest=content_hash(definition)
            )
            for form_key, definition in sorted(plan.inline.items())
        }
        fresh = {form_key: version.new for form_key, version in prepared.items()}
        guards = {
            key: version.if_latest for key, version in prepared.items() if version.if_latest is not None
        }
        pins = dict(sorted({**plan.existing, **{key: new.id for key, new in fresh.items()}}.items()))

        diffs = await self._diffs(tenant, parents, pins, fresh)
        new = NewRelease(
            id=str(uuid.uuid4()),
            system_key=system_key,
            version=body.version,
            pins=pins,
            parents=[
                ReleaseParent(
                    id=d.parent_id,
                    version=d.parent_version,
                    summary=d.summary,
                    diff=d.model_dump(mode="json", exclude={"parent_id", "parent_version", "summary"}),
                )
                for d in diffs
            ],
        )
        try:
            stored, created = await self.releases.create(
                tenant, new, versions=list(fresh.values()), if_latest=guards
            )
        except PinnedVersionMissing as exc:
            raise Invalid(str(exc)) from exc
        if not created:
            return self._existing(stored, pins_as_stored(stored, pins, fresh), body.parents)
        layouts = {new.id: new.layout_text for new in fresh.values()}
        await index_now(
            self.relay,
            [
                PendingLayout(
                    id=pin.version_id,
                    tenant=tenant,
                    form_key=pin.form_key,
                    number=pin.number,
                    content_hash=pin.content_hash,
                    layout_text=layouts[pin.version_id],
                )
                for pin in stored.pins
                if pin.version_id in layouts
            ],
            context_changed=[pin.version_id for pin in stored.pins if pin.version_id not in layouts],
        )
        return ReleaseCreated(**release_read(stored).model_dump(), created=True)

    async def _plan_pins(self, tenant: str, forms: list[PinExisting | PinInline]) -> PinPlan:
        """Validate every pin before anything is written; inline definitions are normalised here."""
        keys = [form.form_key for form in forms]
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        if repeated:
            raise Invalid(
                f"a release pins one version per form; pinned more than once: {', '.join(repeated)}"
            )
        for key in keys:
            check_form_key(key)

        wanted = [form for form in forms if isinstance(form, PinExisting)]
        found = await self.releases.pin_candidates(tenant, list({f.version_id for f in wanted}))
        problems = [
            f"form version {form.version_id} not found (pinned for {form.form_key!r})"
            if form.version_id not in found
            else f"form version {form.version_id} is a version of {found[form.version_id].form_key!r}, "
            f"not of {form.form_key!r}"
            for form in wanted
            if form.version_id not in found or found[form.version_id].form_key != form.form_key
        ]
        if problems:
            raise Invalid("; ".join(problems))

        inline: dict[str, FormDefinition] = {}
        existing = {form.form_key: form.version_id for form in wanted}
        for form in forms:
            if not isinstance(form, PinInline):
                continue
            try:
                definition = await anyio.to_thread.run_sync(
                    partial(normalise_document, max_fields=self.max_fields),
                    form.definition,
                    form.format,
                    form.form_key,
                )
            except DefinitionError as exc:
                raise Invalid(f"definition of form {form.form_key!r}: {exc}") from exc
            version = await self.versions.find_by_content(tenant, form.form_key, content_hash(definition))
            if version is None:
                inline[form.form_key] = definition
            else:
                existing[form.form_key] = version.id
        return PinPlan(existing=existing, inline=inline)

    def _existing(
        self, release: StoredRelease, pins: Mapping[str, str | None], asked_parents: list[str] | None
    ) -> ReleaseCreated:
        stored = {pin.form_key: pin.version_id for pin in release.pins}
        if stored != pins:
            differing = sorted(key for key in stored.keys() | pins.keys() if stored.get(key) != pins.get(key))
            raise Conflict(
                f"release {release.version!r} of system {release.system_key!r} already exists ({release.id}) "
                f"with other pins for: {', '.join(differing)}; releases are immutable, so post a new version"
            )
        if asked_parents is not None and set(asked_parents) != {p.id for p in release.parents}:
            raise Conflict(
                f"release {release.version!r} of system {release.system_key!r} already exists ({release.id}) "
                f"with parents {sorted(p.id for p in release.parents)}; its lineage cannot change"
            )
        return ReleaseCreated(**release_read(release).model_dump(), created=False)

    async def _resolve_parents(
        self, tenant: str, system_key: str, asked: list[str] | None
    ) -> list[StoredRelease]:
        return await resolve_parents(
            asked,
            latest=lambda: self.releases.latest(tenant, system_key),
            find=lambda ids: self.releases.releases(tenant, ids),
            owner_of=lambda release: release.system_key,
            owner=system_key,
            kind="release",
            owner_kind="system",
        )

    async def _diffs(
        self,
        tenant: str,
        parents: list[StoredRelease],
        pins: dict[str, str],
        fresh: Mapping[str, NewVersion],
    ) -> list[ReleaseDiffRead]:
        """The release diff from each parent; per-form summaries from lineage edges, else diffed now.

        `fresh` holds the versions (by form key) the release adds: not written yet, their own parent
        diffs are the lineage edges they will have.
        """
        pairs = sorted(
            {
                (pins[pin.form_key], pin.version_id)
                for parent in parents
                for pin in parent.pins
                if pin.form_key in pins and pins[pin.form_key] != pin.version_id
            }
        )
        adding = {new.id: new for new in fresh.values()}
        stored_pairs = [pair for pair in pairs if pair[0] not in adding]
        summaries = await self.releases.lineage_summaries(tenant, stored_pairs) if stored_pairs else {}
        edges = {(new.id, parent.id): parent.summary for new in fresh.values() for parent in new.parents}
        summaries.update({pair: edges[pair] for pair in pairs if pair in edges})
        unlinked = [pair for pair in pairs if pair not in summaries]
        if unlinked:
            stored_ids = {vid for pair in unlinked for vid in pair if vid not in adding}
            refs = await self.versions.refs(tenant, sorted(stored_ids))
            definitions = {vid: ref.definition for vid, ref in refs.items()} | {
                vid: new.definition for vid, new in adding.items()
            }
            computed = await anyio.to_thread.run_sync(
                lambda: {
                    (new, old): form_diff_summary(definitions[old], definitions[new]) for new, old in unlinked
                }
            )
            summaries.update(computed)
        return [release_diff(parent, pins, summaries) for parent in parents]

    async def get_release(self, *, tenant: str, release_id: str) -> ReleaseRead:
        """One release with its pins and its diff against each parent; 404 unless the tenant's."""
        release = await self.releases.get(tenant, release_id)
        if release is None:
            raise NotFound(f"release {release_id} not found")
        return release_read(release)

    async def get_system(self, *, tenant: str, system_key: str) -> SystemRead:
        system = await self.releases.get_system(tenant, system_key)
        if system is None:
            raise NotFound(f"system {system_key!r} not found")
        return system_read(system)

    async def list_systems(self, *, tenant: str, after: str, limit: int) -> list[SystemRead]:
        return [system_read(s) for s in await self.releases.list_systems(tenant, after=after, limit=limit)]

    async def list_releases(
        self, *, tenant: str, system_key: str, after: int, limit: int
    ) -> list[ReleaseSummary]:
        await self.get_system(tenant=tenant, system_key=system_key)
        releases = await self.releases.list_releases(tenant, system_key, after=after, limit=limit)
        return [
            ReleaseSummary(
                id=r.id,
                system_key=r.system_key,
                version=r.version,
                number=r.number,
                created_at=r.created_at,
                parents=r.parents,
                pin_count=r.pin_count,
            )
            for r in releases
        ]

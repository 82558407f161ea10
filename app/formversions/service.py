"""FormVersionProcessor: validate, normalise, hash, attach lineage, diff, commit, index, find similar."""

from __future__ import annotations

import logging

import anyio.to_thread

from app.errors import Conflict, NotFound
from app.formversions.schemas import (
    FormRead,
    FormVersionCreate,
    FormVersionCreated,
    FormVersionRead,
    FormVersionSummary,
    ParentDiffRead,
    SimilarLayout,
)
from app.indexing import OutboxRelay, index_now
from app.versions import VersionWriter, check_form_key, normalise_document
from graph.errors import LatestMoved
from graph.forms import FormVersionRepository, NewVersion, PendingLayout, StoredForm, StoredVersion
from ingest import FormDefinition, content_hash
from vectors.index import SCORE_DECIMALS, LayoutFilter, LayoutIndex

logger = logging.getLogger("pageforge.formversions")

SIMILAR_K = 5
# How often a write derived from the form's latest is prepared again when other versions keep arriving.
WRITE_ATTEMPTS = 25


def normalise(body: FormVersionCreate, form_key: str, max_fields: int | None) -> tuple[FormDefinition, str]:
    """The canonical definition of the posted document and its content hash (CPU work: call it in a
    worker thread)."""
    definition = normalise_document(body.definition, body.format, form_key, max_fields=max_fields)
    return definition, content_hash(definition)


def definition_warnings(definition: FormDefinition) -> list[str]:
    """What a client should know about a definition PageForge took as it is."""
    return [
        f"field key {key!r} is used by {count} fields: prefill data and a field's history treat them as one"
        for key, count in definition.shared_field_keys().items()
    ]


def version_summary(version: StoredVersion) -> FormVersionSummary:
    return FormVersionSummary(
        id=version.id,
        form_key=version.form_key,
        number=version.number,
        content_hash=version.content_hash,
        created_at=version.created_at,
        label=version.label,
        title=version.title,
        source_format=version.source_format,
        parents=[p.id for p in version.parents],
    )


def diffs_read(version: StoredVersion) -> list[ParentDiffRead]:
    return [ParentDiffRead(parent_id=p.id, summary=p.summary, changes=p.changes) for p in version.parents]


def form_read(form: StoredForm) -> FormRead:
    return FormRead(
        key=form.key,
        title=form.title,
        version_count=form.version_count,
        latest_version_id=form.latest_id,
        created_at=form.created_at,
    )


class FormVersionProcessor:
    """Turns posted definitions into immutable, content-addressed versions with lineage."""

    def __init__(
        self,
        *,
        versions: FormVersionRepository,
        relay: OutboxRelay | None,
        index: LayoutIndex | None,
        max_fields: int | None = None,
    ) -> None:
        self.max_fields = max_fields
        self.versions = versions
        self.writer = VersionWriter(versions)
        self.relay = relay
        self.index = index

    async def ingest(self, *, tenant: str, form_key: str, body: FormVersionCreate) -> FormVersionCreated:
        """Store the posted definition as a version of the form (or find the identical one)."""
        check_form_key(form_key)
        definition, digest = await anyio.to_thread.run_sync(normalise, body, form_key, self.max_fields)

        warnings = definition_warnings(definition)
        existing = await self.versions.find_by_content(tenant, form_key, digest)
        if existing is not None:
            return self._existing(existing, body.parents, warnings)

        new, stored, created = await self._write(tenant, form_key, definition, digest, body)
        if not created:
            return self._existing(stored, body.parents, warnings)

        indexed = await self._index(stored, new.layout_text)
        similar = await self._similar(tenant, stored) if indexed else None
        return FormVersionCreated(
            id=stored.id,
            form_key=stored.form_key,
            number=stored.number,
            content_hash=stored.content_hash,
            created=True,
            parents=[p.id for p in stored.parents],
            diffs=[ParentDiffRead(parent_id=d.id, summary=d.summary, changes=d.changes) for d in new.parents],
            similar=similar,
            index_pending=not indexed,
            warnings=warnings,
        )

    async def _write(
        self, tenant: str, form_key: str, definition: FormDefinition, digest: str, body: FormVersionCreate
    ) -> tuple[NewVersion, StoredVersion, bool]:
        """Prepare and write the version. One derived from the form's latest is written only while that is
        still the latest; when a concurrent writer got there first, it is prepared again from the new latest
        (so concurrent posts form a chain, never a silent fork). With `expected_latest`, 409 instead."""
        for _ in range(WRITE_ATTEMPTS):
            try:
                prepared = await self.writer.prepare(
                    tenant=tenant,
                    form_key=form_key,
                    definition=definition,
                    digest=digest,
                    parents=body.parents,
                    expected_latest=body.expected_latest,
                    label=body.label,
                    metadata=body.metadata,
                )
                stored, created = await self.versions.create(
                    tenant, prepared.new, if_latest=prepared.if_latest
                )
            except LatestMoved as moved:
                if body.expected_latest is not None:
                    raise Conflict(
                        f"the latest version of form {form_key!r} is {moved.latest_id}, not "
                        f"{body.expected_latest}: nothing was written"
                    ) from moved
                continue
            return prepared.new, stored, created
        raise Conflict(
            f"form {form_key!r} received {WRITE_ATTEMPTS} other versions while this one was being written; "
            "nothing was written, try again"
        )

    def _existing(
        self, existing: StoredVersion, asked_parents: list[str] | None, warnings: list[str]
    ) -> FormVersionCreated:
        unchanged = asked_parents is not None and set(asked_parents) == {existing.id}
        if (
            asked_parents is not None
            and not unchanged
            and set(asked_parents) != {p.id for p in existing.parents}
        ):
            raise Conflict(
                f"this content already is version {existing.number} ({existing.id}) of form "
                f"{existing.form_key!r} with parents {sorted(p.id for p in existing.parents)}; "
                "versions are immutable, so its lineage cannot change"
            )
        return FormVersionCreated(
            id=existing.id,
            form_key=existing.form_key,
            number=existing.number,
            content_hash=existing.content_hash,
            created=False,
            unchanged=unchanged,
            parents=[p.id for p in existing.parents],
            diffs=diffs_read(existing),
            similar=None,
            index_pending=existing.index_pending,
            warnings=warnings,
        )

    async def _index(self, version: StoredVersion, text: str) -> bool:
        entry = PendingLayout(
            id=version.id,
            tenant=version.tenant,
            form_key=version.form_key,
            number=version.number,
            content_hash=version.content_hash,
            layout_text=text,
        )
        return await index_now(self.relay, [entry], context_changed=[parent.id for parent in version.parents])

    async def _similar(self, tenant: str, version: StoredVersion) -> list[SimilarLayout] | None:
        """The most similar layouts of other forms; None when the index cannot be asked (logged)."""
        index = self.index
        if index is None:
            return None
        try:
            points = await anyio.to_thread.run_sync(
                lambda: index.get(tenant, [version.id], with_vectors=True)
            )
            if not points or points[0].vector is None:
                logger.warning("similar layouts of %s: the index has no vector for it", version.id)
                return None
            vector = points[0].vector
            hits = await anyio.to_thread.run_sync(
                lambda: index.search(
                    tenant,
                    vector,
                    k=SIMILAR_K,
                    filter=LayoutFilter(must_not={"form_key": [version.form_key]}),
                )
            )
        except Exception as exc:
            logger.warning("similar layouts of %s unavailable: %s", version.id, exc)
            return None
        return [
            SimilarLayout(
                version_id=hit.payload["version_id"],
                form_key=hit.payload["form_key"],
                number=hit.payload["number"],
                score=round(hit.score, SCORE_DECIMALS),
            )
            for hit in hits
        ]

    async def get_version(self, *, tenant: str, version_id: str) -> FormVersionRead:
        """One version with its canonical definition; 404 unless it belongs to the tenant."""
        version = await self.versions.get(tenant, version_id)
        if version is None:
            raise NotFound(f"form version {version_id} not found")
        assert version.definition is not None
        return FormVersionRead(
            **version_summary(version).model_dump(),
            metadata=version.metadata,
            diffs=diffs_read(version),
            definition=version.definition,
        )

    async def get_form(self, *, tenant: str, form_key: str) -> FormRead:
        form = await self.versions.get_form(tenant, form_key)
        if form is None:
            raise NotFound(f"form {form_key!r} not found")
        return form_read(form)

    async def list_forms(
        self, *, tenant: str, after: str, limit: int, containing: str | None = None
    ) -> list[FormRead]:
        forms = await self.versions.list_forms(tenant, after=after, limit=limit, containing=containing)
        return [form_read(f) for f in forms]

    async def list_versions(
        self, *, tenant: str, form_key: str, after: int, limit: int
    ) -> list[FormVersionSummary]:
        await self.get_form(tenant=tenant, form_key=form_key)
        versions = await self.versions.list_versions(tenant, form_key, after=after, limit=limit)
        return [version_summary(v) for v in versions]

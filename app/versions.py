"""The form-version write path the services share: a document made canonical, its parents resolved, the
diff from each, the version to write. FormVersionProcessor writes posted versions with it, SysVersionProcessor
the versions a release's inline forms add, bulk ingest whole corpora."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio.to_thread

from app.errors import Invalid
from graph.errors import LatestMoved
from graph.forms import FormVersionRepository, LatestGuard, NewVersion, ParentDiff, VersionRef
from ingest import (
    FormDefinition,
    diff_definitions,
    export_native,
    import_definition,
    layout_text,
    parse_document,
)
from ingest.native import import_native
from ingest.prints import layout_prints

KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")

T = TypeVar("T")


def check_key(kind: str, key: str) -> None:
    """422 unless `key` is a valid form or system key (`kind` names which, for the message)."""
    if not KEY.match(key):
        raise Invalid(
            f"{kind} key {key!r} is invalid: 1-200 characters, letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )


def check_form_key(form_key: str) -> None:
    check_key("form", form_key)


def normalise_document(
    document: Any, source_format: str | None, form_key: str, *, max_fields: int | None = None
) -> FormDefinition:
    """The canonical definition of a document (or JSON/YAML text) as a version of the form (CPU work);
    Invalid when it has more than `max_fields` fields."""
    if isinstance(document, str | bytes):
        document = parse_document(document)
    definition = import_definition(document, format=source_format, key=form_key)
    fields = len(definition.fields())
    if max_fields is not None and fields > max_fields:
        raise Invalid(
            f"the definition of form {form_key!r} has {fields} fields; PageForge takes forms of up to "
            f"{max_fields} (PAGEFORGE_API__MAX_FIELDS)"
        )
    return definition.model_copy(update={"key": form_key})


def structural_diff(old: FormDefinition, new: FormDefinition) -> tuple[str, list[dict[str, Any]]]:
    """The diff summary and the JSON-ready changes from `old` to `new`."""
    result = diff_definitions(old, new)
    changes: list[dict[str, Any]] = result.model_dump(mode="json")["changes"]
    return result.summary, changes


def diff_from(parent: VersionRef, definition: FormDefinition) -> ParentDiff:
    """The lineage edge from a stored parent to a canonical definition, with its structural diff."""
    summary, changes = structural_diff(import_native(parent.definition), definition)
    return ParentDiff(id=parent.id, summary=summary, changes=changes)


def new_version(
    definition: FormDefinition,
    *,
    form_key: str,
    digest: str,
    parents: list[ParentDiff],
    label: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> NewVersion:
    """The version to write for a canonical definition, with a fresh id (CPU work)."""
    native = export_native(definition)
    prints = layout_prints(definition, native)
    return NewVersion(
        id=str(uuid.uuid4()),
        form_key=form_key,
        content_hash=digest,
        definition=native,
        source_format=definition.source_format.value,
        title=definition.title,
        layout_text=layout_text(definition),
        field_count=len(definition.fields()),
        parents=parents,
        label=label,
        metadata=metadata or {},
        layout_nodes=sorted(prints.nodes),
        layout_keys=sorted(prints.field_keys),
        layout_hash=prints.layout,
    )


async def resolve_parents(
    asked: list[str] | None,
    *,
    latest: Callable[[], Awaitable[T | None]],
    find: Callable[[list[str]], Awaitable[Mapping[str, T]]],
    owner_of: Callable[[T], str],
    owner: str,
    kind: str,
    owner_kind: str,
) -> list[T]:
    """The parents a write names (deduplicated, in order), or the latest of the lineage when it names none.

    For form versions (`kind` "version" of an `owner_kind` "form") and releases (of a system) alike: 422
    for a parent that does not exist in the tenant or belongs to another owner."""
    if asked is None:
        found_latest = await latest()
        return [found_latest] if found_latest is not None else []
    unique = list(dict.fromkeys(asked))
    found = await find(unique)
    missing = [parent_id for parent_id in unique if parent_id not in found]
    if missing:
        raise Invalid(f"parent {kind} not found: {', '.join(missing)}")
    owners = {parent_id: owner_of(found[parent_id]) for parent_id in unique}
    foreign = [(parent_id, other) for parent_id, other in owners.items() if other != owner]
    if foreign:
        raise Invalid(
            f"parents must be {kind}s of the same {owner_kind}: "
            + ", ".join(f"{parent_id} is a {kind} of {other!r}" for parent_id, other in foreign)
        )
    return [found[parent_id] for parent_id in unique]


@dataclass(frozen=True)
class PreparedVersion:
    """A version ready to write, and the condition to write it on: derived from the form's latest (or
    told which version must be the latest), it must be written only while that still holds."""

    new: NewVersion
    if_latest: LatestGuard | None


class VersionWriter:
    """Works out the new version of a form to write: its parents resolved and the diff from each."""

    def __init__(self, versions: FormVersionRepository) -> None:
        self.versions = versions

    async def prepare(
        self,
        *,
        tenant: str,
        form_key: str,
        definition: FormDefinition,
        digest: str,
        parents: list[str] | None = None,
        expected_latest: str | None = None,
        label: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> PreparedVersion:
        """The new version for a canonical definition; without `parents`, it derives from the latest.

        Its guard: the latest it derived from, or `expected_latest` when given (the caller's own
        optimistic-concurrency condition; LatestMoved at once if it already fails)."""
        needs_latest = parents is None or expected_latest is not None
        current = await self.versions.latest(tenant, form_key) if needs_latest else None
        if expected_latest is not None and (current is None or current.id != expected_latest):
            raise LatestMoved(form_key, current.id if current is not None else None)

        async def latest() -> VersionRef | None:
            return current

        resolved = await resolve_parents(
            parents,
            latest=latest,
            find=lambda ids: self.versions.refs(tenant, ids),
            owner_of=lambda ref: ref.form_key,
            owner=form_key,
            kind="version",
            owner_kind="form",
        )

        def build() -> NewVersion:
            diffs = [diff_from(parent, definition) for parent in resolved]
            return new_version(
                definition, form_key=form_key, digest=digest, parents=diffs, label=label, metadata=metadata
            )

        new = await anyio.to_thread.run_sync(build)
        guard = LatestGuard(current.id if current is not None else None) if needs_latest else None
        return PreparedVersion(new, guard)

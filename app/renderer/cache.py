"""The in-process render cache: a bounded LRU by (tenant, content, options); one render per key at once."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from graph.renders import RenderSource

V = TypeVar("V")

# Bounds: whichever is reached first evicts the least recently used renders.
MAX_ENTRIES = 512
MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class RenderKey:
    """What a render depends on. The tenant is part of it, so no tenant can learn another's renders."""

    tenant: str
    content_hash: str
    format: str
    data_hash: str | None = None
    against_hash: str | None = None


@dataclass(frozen=True, slots=True)
class Rendered:
    """A finished render: the bytes sent and their media type."""

    body: bytes
    media_type: str


def data_hash(data: dict[str, Any] | None) -> str | None:
    """A stable hash of prefill data (key order does not matter); None when there is none."""
    if data is None:
        return None
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


class RenderCache:
    """Least-recently-used renders within entry and byte bounds; concurrent misses of one key render once."""

    def __init__(self, *, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[RenderKey, Rendered] = OrderedDict()
        self._bytes = 0
        self._in_flight: dict[RenderKey, asyncio.Future[Rendered]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """Bytes held by the cached renders."""
        return self._bytes

    def get(self, key: RenderKey) -> Rendered | None:
        """The cached render, marked most recently used; None on a miss."""
        rendered = self._entries.get(key)
        if rendered is not None:
            self._entries.move_to_end(key)
        return rendered

    def put(self, key: RenderKey, rendered: Rendered) -> None:
        """Keep a render, evicting the least recently used ones beyond the bounds."""
        if len(rendered.body) > self.max_bytes:
            return
        previous = self._entries.pop(key, None)
        if previous is not None:
            self._bytes -= len(previous.body)
        self._entries[key] = rendered
        self._bytes += len(rendered.body)
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= len(evicted.body)

    async def get_or_render(
        self, key: RenderKey, render: Callable[[], Awaitable[Rendered]]
    ) -> tuple[Rendered, bool]:
        """The render for `key` and whether it came from the cache; callers waiting on one render share it."""
        while True:
            cached = self.get(key)
            if cached is not None:
                self.hits += 1
                return cached, True
            pending = self._in_flight.get(key)
            if pending is None:
                break
            try:
                rendered = await asyncio.shield(pending)
            except asyncio.CancelledError:
                if pending.cancelled():
                    continue  # the request rendering it went away, not this one: try again
                raise
            self.hits += 1
            return rendered, True
        self.misses += 1
        future: asyncio.Future[Rendered] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            rendered = await render()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here, so a render nobody else awaited logs no warning
            raise
        finally:
            del self._in_flight[key]
        self.put(key, rendered)
        future.set_result(rendered)
        return rendered, False


class VersionMemo(Generic[V]):
    """(tenant, version id) -> what this process derived from that version; versions are immutable, so
    never stale. The least recently used go first once the weights of those kept exceed `max_weight`."""

    def __init__(self, max_weight: int, weight: Callable[[V], int]) -> None:
        self.max_weight = max_weight
        self._weight = weight
        self._kept: OrderedDict[tuple[str, str], V] = OrderedDict()
        self._total = 0

    def get(self, tenant: str, version_id: str) -> V | None:
        """What is kept for the tenant's version, marked most recently used; None if nothing is."""
        value = self._kept.get((tenant, version_id))
        if value is not None:
            self._kept.move_to_end((tenant, version_id))
        return value

    def put(self, tenant: str, version_id: str, value: V) -> None:
        """Keep a value for the version (one heavier than the bound is not kept), evicting beyond it."""
        weight = self._weight(value)
        if weight > self.max_weight:
            return
        previous = self._kept.pop((tenant, version_id), None)
        if previous is not None:
            self._total -= self._weight(previous)
        self._kept[(tenant, version_id)] = value
        self._total += weight
        while self._total > self.max_weight:
            _, evicted = self._kept.popitem(last=False)
            self._total -= self._weight(evicted)


class ContentHashes(VersionMemo[str]):
    """The content hashes of versions seen: a repeat render finds its cached page without a graph read."""

    def __init__(self, max_entries: int = 16 * MAX_ENTRIES) -> None:
        super().__init__(max_entries, lambda _: 1)


# The definitions kept for renders of new prefill data: up to this many fields in all (about 75 of the
# corpus's largest form, 267 fields).
MAX_SOURCE_FIELDS = 20_000


class RecentSources(VersionMemo[RenderSource]):
    """The render sources of recently rendered versions, bounded by their fields: a render of new prefill
    data (a cache miss) of a version read before skips the graph read of its definition (with it,
    bench_render's uncached render through the API went from 1.95x to 1.11x the in-process work)."""

    def __init__(self, max_fields: int = MAX_SOURCE_FIELDS) -> None:
        super().__init__(max_fields, lambda source: max(1, source.field_count))

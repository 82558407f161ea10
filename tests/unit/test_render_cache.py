"""The render cache: LRU bounds, tenant-scoped keys, one render for concurrent misses."""

from __future__ import annotations

import asyncio

import pytest

from app.renderer.cache import ContentHashes, RecentSources, RenderCache, Rendered, RenderKey, data_hash
from graph.renders import RenderSource


def key(content: str, tenant: str = "t1", fmt: str = "html") -> RenderKey:
    return RenderKey(tenant=tenant, content_hash=content, format=fmt)


def page(size: int) -> Rendered:
    return Rendered(b"x" * size, "text/html")


def test_least_recently_used_entry_goes_first_when_entries_overflow() -> None:
    cache = RenderCache(max_entries=2, max_bytes=1000)
    cache.put(key("a"), page(1))
    cache.put(key("b"), page(1))
    assert cache.get(key("a")) is not None  # a is now the most recently used
    cache.put(key("c"), page(1))
    assert (cache.get(key("a")), cache.get(key("b")), cache.get(key("c"))) == (page(1), None, page(1))


def test_byte_bound_evicts_and_oversized_renders_are_not_kept() -> None:
    cache = RenderCache(max_entries=10, max_bytes=100)
    cache.put(key("a"), page(60))
    cache.put(key("b"), page(60))
    assert cache.get(key("a")) is None
    assert cache.size_bytes == 60
    cache.put(key("huge"), page(101))
    assert cache.get(key("huge")) is None
    assert (len(cache), cache.size_bytes) == (1, 60)


def test_tenants_and_options_are_part_of_the_key() -> None:
    cache = RenderCache()
    cache.put(key("a", tenant="t1"), page(1))
    assert cache.get(key("a", tenant="t2")) is None
    assert cache.get(key("a", fmt="pdf")) is None
    assert data_hash({"a": 1, "b": [1, 2]}) == data_hash({"b": [1, 2], "a": 1})
    assert data_hash({"a": 1}) != data_hash({"a": 2})
    assert data_hash(None) is None


def test_concurrent_misses_of_one_key_render_once() -> None:
    cache = RenderCache()
    renders = 0

    async def render() -> Rendered:
        nonlocal renders
        renders += 1
        await asyncio.sleep(0.01)
        return page(3)

    async def main() -> list[tuple[Rendered, bool]]:
        return await asyncio.gather(*(cache.get_or_render(key("a"), render) for _ in range(8)))

    results = asyncio.run(main())
    assert renders == 1
    assert [cached for _, cached in results].count(False) == 1
    assert all(rendered == page(3) for rendered, _ in results)
    assert (cache.hits, cache.misses) == (7, 1)


def test_a_failed_render_is_not_cached_and_reaches_every_waiter() -> None:
    cache = RenderCache()

    async def render() -> Rendered:
        await asyncio.sleep(0.01)
        raise ValueError("bad definition")

    async def main() -> list[object]:
        return await asyncio.gather(
            *(cache.get_or_render(key("a"), render) for _ in range(3)), return_exceptions=True
        )

    results = asyncio.run(main())
    assert all(isinstance(result, ValueError) for result in results)
    assert len(cache) == 0


def test_waiters_render_again_when_the_rendering_request_is_cancelled() -> None:
    cache = RenderCache()

    async def main() -> Rendered:
        first_started = asyncio.Event()

        async def slow() -> Rendered:
            first_started.set()
            await asyncio.sleep(10)
            return page(1)

        async def fast() -> Rendered:
            return page(2)

        first = asyncio.create_task(cache.get_or_render(key("a"), slow))
        await first_started.wait()
        second = asyncio.create_task(cache.get_or_render(key("a"), fast))
        await asyncio.sleep(0)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        rendered, cached = await second
        assert cached is False
        return rendered

    assert asyncio.run(main()) == page(2)


def test_content_hashes_are_per_tenant_and_bounded() -> None:
    hashes = ContentHashes(max_entries=2)
    hashes.put("t1", "v1", "sha256:1")
    hashes.put("t1", "v2", "sha256:2")
    assert hashes.get("t2", "v1") is None
    assert hashes.get("t1", "v1") == "sha256:1"
    hashes.put("t1", "v3", "sha256:3")
    assert (hashes.get("t1", "v1"), hashes.get("t1", "v2")) == ("sha256:1", None)


def source(version_id: str, fields: int) -> RenderSource:
    return RenderSource(
        id=version_id, form_key="f", content_hash=f"sha256:{version_id}", field_count=fields, definition={}
    )


def test_recent_sources_are_per_tenant_and_bounded_by_their_fields() -> None:
    recent = RecentSources(max_fields=10)
    recent.put("t1", "v1", source("v1", 4))
    recent.put("t1", "v2", source("v2", 4))
    assert recent.get("t2", "v1") is None
    assert recent.get("t1", "v1") == source("v1", 4)  # now the most recently used
    recent.put("t1", "v3", source("v3", 4))
    assert (recent.get("t1", "v1"), recent.get("t1", "v2")) == (source("v1", 4), None)
    recent.put("t1", "big", source("big", 11))
    assert recent.get("t1", "big") is None, "one source over the bound is not kept"
    assert recent.get("t1", "v3") == source("v3", 4)

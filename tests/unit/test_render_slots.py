"""Render slots: a tenant over its share waits while another finds a free slot; waiting tenants take turns."""

from __future__ import annotations

import asyncio

import pytest

from app.renderer.slots import RenderQueueFull, RenderSlots

pytestmark = pytest.mark.anyio


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_tenant_at_its_share_waits_and_another_tenant_takes_the_free_slot() -> None:
    slots = RenderSlots(slots=2, per_tenant=1, max_waiting=4)
    await slots.acquire("a")
    second_a = asyncio.ensure_future(slots.acquire("a"))
    await settle()
    assert not second_a.done()  # a slot is free, but it is kept for someone else
    await asyncio.wait_for(slots.acquire("b"), timeout=1)
    assert (slots.running("a"), slots.running("b"), slots.waiting("a")) == (1, 1, 1)
    slots.release("a")
    await asyncio.wait_for(second_a, timeout=1)
    assert slots.running("a") == 1


async def test_freed_slots_go_to_waiting_tenants_in_turn() -> None:
    slots = RenderSlots(slots=1, per_tenant=1, max_waiting=4)
    await slots.acquire("a")
    order: list[str] = []

    async def render(tenant: str) -> None:
        await slots.acquire(tenant)
        order.append(tenant)
        slots.release(tenant)

    waiting = [asyncio.ensure_future(render(t)) for t in ("a", "a", "a", "b", "c")]
    await settle()
    slots.release("a")
    await asyncio.wait_for(asyncio.gather(*waiting), timeout=1)
    assert order == ["a", "b", "c", "a", "a"]


async def test_a_tenant_with_a_full_queue_is_refused_and_others_are_not() -> None:
    slots = RenderSlots(slots=1, per_tenant=1, max_waiting=1)
    await slots.acquire("a")
    queued = asyncio.ensure_future(slots.acquire("a"))
    await settle()
    with pytest.raises(RenderQueueFull):
        await slots.acquire("a")
    other = asyncio.ensure_future(slots.acquire("b"))
    await settle()
    assert slots.waiting("b") == 1
    slots.release("a")
    await asyncio.wait_for(queued, timeout=1)
    slots.release("a")
    await asyncio.wait_for(other, timeout=1)


async def test_a_cancelled_wait_leaves_the_queue_and_a_cancelled_grant_passes_the_slot_on() -> None:
    slots = RenderSlots(slots=1, per_tenant=1, max_waiting=4)
    await slots.acquire("a")
    gone = asyncio.ensure_future(slots.acquire("b"))
    await settle()
    gone.cancel()
    await asyncio.gather(gone, return_exceptions=True)
    assert slots.waiting("b") == 0

    granted_then_cancelled = asyncio.ensure_future(slots.acquire("c"))
    after = asyncio.ensure_future(slots.acquire("d"))
    await settle()
    slots.release("a")  # hands the slot to c, whose task is cancelled before it runs again
    granted_then_cancelled.cancel()
    await asyncio.gather(granted_then_cancelled, return_exceptions=True)
    await asyncio.wait_for(after, timeout=1)
    assert (slots.running("c"), slots.running("d")) == (0, 1)


async def test_the_share_never_exceeds_the_slots() -> None:
    slots = RenderSlots(slots=2, per_tenant=5, max_waiting=4)
    await slots.acquire("a")
    await slots.acquire("a")
    third = asyncio.ensure_future(slots.acquire("a"))
    await settle()
    assert not third.done()
    slots.release("a")
    await asyncio.wait_for(third, timeout=1)

"""Render slots shared fairly: each tenant holds at most a few at once, and waiting tenants take turns."""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque


class RenderQueueFull(Exception):
    """The tenant already has as many renders waiting as it may."""


class RenderSlots:
    """`slots` renders run at once in the process; a tenant runs at most `per_tenant` of them.

    A tenant over its share waits even when a slot is free, so that a slot stays free for another tenant:
    one tenant's long renders never delay another's by more than the renders already running. Freed slots
    go to the waiting tenants in turn (round robin), each tenant's own renders first come, first served.
    """

    def __init__(self, *, slots: int, per_tenant: int, max_waiting: int) -> None:
        self.slots = slots
        self.per_tenant = min(per_tenant, slots)
        self.max_waiting = max_waiting
        self._free = slots
        self._running: dict[str, int] = {}
        self._waiting: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()

    def running(self, tenant: str) -> int:
        return self._running.get(tenant, 0)

    def waiting(self, tenant: str) -> int:
        return len(self._waiting.get(tenant, ()))

    async def acquire(self, tenant: str) -> None:
        """Wait for one of the tenant's slots (release it after); RenderQueueFull when too many wait."""
        # Slots are handed out as soon as they free, so a free slot means no waiting tenant may take it.
        if self._free and self.running(tenant) < self.per_tenant and tenant not in self._waiting:
            self._grant(tenant)
            return
        queue = self._waiting.get(tenant)
        if queue is None:
            queue = self._waiting[tenant] = deque()
        if len(queue) >= self.max_waiting:
            if not queue:
                del self._waiting[tenant]
            raise RenderQueueFull(f"{len(queue)} renders of this tenant are already waiting")
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(turn)
        self._dispatch()
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release(tenant)  # granted as it was cancelled: pass the slot on
            else:
                self._forget(tenant, turn)
            raise

    def _grant(self, tenant: str) -> None:
        self._free -= 1
        self._running[tenant] = self.running(tenant) + 1

    def release(self, tenant: str) -> None:
        self._free += 1
        left = self.running(tenant) - 1
        if left:
            self._running[tenant] = left
        else:
            self._running.pop(tenant, None)
        self._dispatch()

    def _dispatch(self) -> None:
        """Give free slots to waiting tenants in turn, skipping those at their share."""
        while self._free:
            tenant = next((t for t in self._waiting if self.running(t) < self.per_tenant), None)
            if tenant is None:
                return
            queue = self._waiting.pop(tenant)
            turn = queue.popleft()
            if queue:
                self._waiting[tenant] = queue  # back of the line
            self._grant(tenant)
            turn.set_result(None)

    def _forget(self, tenant: str, turn: asyncio.Future[None]) -> None:
        queue = self._waiting.get(tenant)
        if queue is None:
            return
        try:
            queue.remove(turn)
        except ValueError:
            return
        if not queue:
            del self._waiting[tenant]

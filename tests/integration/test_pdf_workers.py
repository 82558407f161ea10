"""PDF worker processes: kept warm between renders, killed past the time budget or when the caller goes."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest

from app.renderer.pdf_workers import PdfWorkers, RenderTimedOut
from render.pdf import TooManyPages

pytestmark = pytest.mark.anyio

SMALL = "<!doctype html><html><head><title>t</title></head><body><p>Søknad</p></body></html>"
TEN_PAGES = (
    "<!doctype html><html><head><title>t</title></head><body>" + "<p>line</p>" * 500 + "</body></html>"
)
# Several hundred pages: seconds of layout, well past the budgets below.
LONG = (
    "<!doctype html><html><head><title>t</title></head><body>"
    + "<p>line</p><input>" * 20_000
    + "</body></html>"
)


@pytest.fixture
async def workers() -> AsyncIterator[PdfWorkers]:
    pool = PdfWorkers(2)
    yield pool
    pool.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_worker_is_kept_for_the_next_render_also_after_a_page_limit(workers: PdfWorkers) -> None:
    assert (await workers.render(SMALL, max_pages=5, timeout_s=120)).startswith(b"%PDF")
    (pid,) = workers.pids
    with pytest.raises(TooManyPages):
        await workers.render(TEN_PAGES, max_pages=2, timeout_s=120)
    assert (await workers.render(SMALL, max_pages=5, timeout_s=120)).startswith(b"%PDF")
    assert workers.pids == {pid}


async def test_a_render_past_its_budget_is_killed_and_the_next_one_gets_a_new_worker(
    workers: PdfWorkers,
) -> None:
    await workers.render(SMALL, max_pages=5, timeout_s=120)
    (pid,) = workers.pids
    with pytest.raises(RenderTimedOut, match="not finished within 1 s"):
        await workers.render(LONG, max_pages=10_000, timeout_s=1)
    assert not alive(pid)
    assert workers.pids == set()
    assert (await workers.render(SMALL, max_pages=5, timeout_s=120)).startswith(b"%PDF")


async def test_a_cancelled_render_kills_its_worker(workers: PdfWorkers) -> None:
    await workers.render(SMALL, max_pages=5, timeout_s=120)
    (pid,) = workers.pids
    render = asyncio.ensure_future(workers.render(LONG, max_pages=10_000, timeout_s=600))
    await asyncio.sleep(1)
    render.cancel()
    await asyncio.gather(render, return_exceptions=True)
    assert render.cancelled()
    assert not alive(pid)
    assert workers.pids == set()


async def test_close_kills_every_worker() -> None:
    pool = PdfWorkers(2)
    await asyncio.gather(*(pool.render(SMALL, max_pages=5, timeout_s=120) for _ in range(2)))
    pids = pool.pids
    assert len(pids) == 2
    pool.close()
    assert not any(alive(pid) for pid in pids)

"""PDF renders in worker processes: a render over its time budget, or whose client left, is killed."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

import anyio.to_thread

from render.pdf import TooManyPages, render_pdf

logger = logging.getLogger("pageforge.renders")

# Spawned, not forked: the API process has threads (the driver's, torch's) that a fork would copy mid-state.
_CONTEXT = multiprocessing.get_context("spawn")
# A worker imports WeasyPrint and Pango before it says it is ready (about a second here).
WORKER_START_TIMEOUT_S = 60.0


class RenderTimedOut(Exception):
    """The PDF was not finished within its time budget; the worker doing it was killed."""


class WorkerDied(Exception):
    """The worker process ended without an answer (killed from outside, or out of memory)."""


def _serve(connection: Connection) -> None:
    """A worker's life: one render at a time, answered ("pdf", bytes), ("pages", limit) or ("error", text)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent stops us
    connection.send(("ready", None))  # imports done: a render's time budget starts with the render
    while True:
        try:
            html, max_pages = connection.recv()
        except EOFError:
            return
        try:
            connection.send(("pdf", render_pdf(html, max_pages=max_pages)))
        except TooManyPages as exc:
            connection.send(("pages", exc.max_pages))
        except Exception as exc:  # reported to the parent, which logs it with the request
            connection.send(("error", f"{type(exc).__name__}: {exc}"))


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    connection: Connection

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.connection.close()


class PdfWorkers:
    """Up to `size` worker processes, started on demand and kept warm; each renders one PDF at a time.

    Callers bound their own concurrency (the render slots) to `size`; a busy pool starts another worker.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._closed = False

    async def render(self, html: str, *, max_pages: int, timeout_s: float) -> bytes:
        """The PDF of `html`; TooManyPages past `max_pages`, RenderTimedOut after `timeout_s`."""
        worker = self._idle.pop() if self._idle else await self._start()
        outcome = "cancelled"
        try:
            worker.connection.send((html, max_pages))
            with anyio.fail_after(timeout_s):
                answer = await _answer(worker.connection)
            outcome = "done"
        except TimeoutError:
            outcome = "over its time budget"
            raise RenderTimedOut(f"the PDF was not finished within {timeout_s:g} s") from None
        except WorkerDied:
            outcome = "ended"
            raise
        finally:
            if outcome == "done" and not self._closed and len(self._idle) < self.size:
                self._idle.append(worker)
            else:
                self._retire(worker, outcome)
        match answer:
            case ("pdf", bytes(pdf)):
                return pdf
            case ("pages", int(max_pages)):
                raise TooManyPages(max_pages)
            case _:
                raise RuntimeError(f"PDF worker failed: {answer[1]}")

    @property
    def pids(self) -> set[int]:
        """The worker processes alive now."""
        return {w.process.pid for w in self._all if w.process.pid is not None and w.process.is_alive()}

    def close(self) -> None:
        """Kill every worker, busy ones included (their callers get WorkerDied)."""
        self._closed = True
        idle = set(self._idle)
        self._idle.clear()
        for worker in list(self._all):
            self._retire(worker, "idle" if worker in idle else "shutting down")

    async def _start(self) -> _Worker:
        def spawn() -> _Worker:
            parent, child = _CONTEXT.Pipe()
            process = _CONTEXT.Process(target=_serve, args=(child,), name="pageforge-pdf", daemon=True)
            process.start()
            child.close()
            return _Worker(process, parent)

        worker = await anyio.to_thread.run_sync(spawn)
        self._all.add(worker)
        try:
            with anyio.fail_after(WORKER_START_TIMEOUT_S):
                await _answer(worker.connection)
        except BaseException:
            self._retire(worker, "not started")
            raise
        return worker

    def _retire(self, worker: _Worker, why: str) -> None:
        self._all.discard(worker)
        if why not in ("done", "idle"):
            logger.info("PDF worker %s killed: render %s", worker.process.pid, why)
        worker.kill()


async def _answer(connection: Connection) -> tuple[str, object]:
    """The worker's answer, waited for on the event loop and read (whole, unpickled) in a thread."""
    loop = asyncio.get_running_loop()
    readable = asyncio.Event()
    loop.add_reader(connection.fileno(), readable.set)
    try:
        await readable.wait()
    finally:
        loop.remove_reader(connection.fileno())
    try:
        answer: tuple[str, object] = await anyio.to_thread.run_sync(connection.recv)
    except (EOFError, OSError):
        raise WorkerDied("the PDF worker ended without an answer") from None
    return answer

"""How `pageforge serve` serves: its socket sends responses without delay, its startup heap is frozen."""

from __future__ import annotations

import asyncio
import gc
import socket

import uvicorn
from fastapi import FastAPI

from app.cli import ServingServer, _listen


def test_connections_accepted_by_serve_have_tcp_nodelay() -> None:
    # Without TCP_NODELAY a response written in two parts waited for the client's delayed ACK: about 40 ms
    # on every keep-alive request (measured by bench_similarity through `pageforge serve`).
    async def accepted_nodelay() -> int:
        options: list[int] = []
        connected = asyncio.Event()

        def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted: socket.socket = writer.get_extra_info("socket")
            options.append(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()
            connected.set()

        with _listen("127.0.0.1", 0) as listening:
            server = await asyncio.start_server(on_connection, sock=listening)
            port = listening.getsockname()[1]
            async with server:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                await asyncio.wait_for(connected.wait(), timeout=10)
                writer.close()
        return options[0]

    assert asyncio.run(accepted_nodelay()) != 0


def test_the_server_freezes_what_it_loaded_once_the_app_has_started() -> None:
    started: list[int] = []

    async def serve_until_started() -> None:
        server = ServingServer(uvicorn.Config(FastAPI(), log_config=None, access_log=False, lifespan="on"))
        with _listen("127.0.0.1", 0) as listening:
            serving = asyncio.create_task(server.serve(sockets=[listening]))
            async with asyncio.timeout(30):
                while not server.started:  # noqa: ASYNC110 (uvicorn offers no event for it)
                    await asyncio.sleep(0.01)
            started.append(gc.get_freeze_count())
            server.should_exit = True
            await serving

    assert gc.get_freeze_count() == 0
    try:
        asyncio.run(serve_until_started())
    finally:
        gc.unfreeze()
    assert started[0] > 0

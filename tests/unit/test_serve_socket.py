"""The socket `pageforge serve` listens on: connections accepted on it send responses without delay."""

from __future__ import annotations

import asyncio
import socket

from app.cli import _listen


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

"""Graph.fetch, the one-round-trip read, against the real Neo4j of the test run."""

from __future__ import annotations

import asyncio

import pytest
from neo4j.exceptions import ClientError

from graph.database import Graph
from graph.errors import GraphUnavailable
from graph.server import LocalNeo4jServer, free_port

pytestmark = pytest.mark.anyio


async def test_fetch_reads_with_parameters(graph: Graph) -> None:
    result = await graph.fetch("UNWIND $values AS value RETURN value * 2 AS doubled", values=[1, 2, 3])
    assert [record["doubled"] for record in result.records] == [2, 4, 6]


async def test_fetch_refuses_to_write(graph: Graph) -> None:
    with pytest.raises(ClientError):
        await graph.fetch("CREATE (:FetchProbe) RETURN 1 AS one")
    count = await graph.fetch("MATCH (p:FetchProbe) RETURN count(p) AS n")
    assert count.records[0]["n"] == 0


async def test_a_read_sent_while_neo4j_is_unreachable_is_answered_once_it_is_back(
    neo4j_server: LocalNeo4jServer,
) -> None:
    # A TCP relay to the real server, opened only after the first attempts were refused.
    port = free_port()
    target = neo4j_server.bolt_uri.rsplit(":", 1)
    host, target_port = target[0].removeprefix("bolt://"), int(target[1])

    async def relay(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(host, target_port)

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            writer.close()

        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))

    async def open_relay_later() -> asyncio.Server:
        await asyncio.sleep(0.5)
        return await asyncio.start_server(relay, "127.0.0.1", port)

    graph = Graph(uri=f"bolt://127.0.0.1:{port}", auth=None, connection_timeout_s=5.0)
    opening = asyncio.create_task(open_relay_later())
    try:
        result = await graph.fetch("RETURN 1 AS one")
        assert result.records[0]["one"] == 1
    finally:
        await graph.close()
        (await opening).close()


async def test_fetch_from_an_unreachable_neo4j_is_unavailable_not_a_hang() -> None:
    graph = Graph(uri=f"bolt://127.0.0.1:{free_port()}", auth=None, connection_timeout_s=0.5)
    try:
        with pytest.raises(GraphUnavailable):
            await graph.fetch("RETURN 1 AS one")
    finally:
        await graph.close()

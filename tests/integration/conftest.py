"""Fixtures shared by the integration tests: the graph of the test run, a Qdrant Edge index, the model."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from graph.database import Graph
from graph.server import LocalNeo4jServer
from tests.conftest import MODEL_CACHE, TEST_ENCODE_THREADS
from vectors.edge import EdgeLayoutIndex
from vectors.embedder import DEFAULT_BACKEND, Embedder


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    backend = os.environ.get("PAGEFORGE_EMBEDDER__BACKEND", DEFAULT_BACKEND)
    return Embedder(backend=backend, threads=TEST_ENCODE_THREADS, cache_dir=Path(MODEL_CACHE))


@pytest.fixture
async def graph(neo4j_server: LocalNeo4jServer) -> AsyncIterator[Graph]:
    graph = Graph(uri=neo4j_server.bolt_uri, auth=None)
    yield graph
    await graph.close()


@pytest.fixture
def index(tmp_path: Path) -> Iterator[EdgeLayoutIndex]:
    index = EdgeLayoutIndex(tmp_path / "vectors" / "layouts", dimension=384)
    index.ensure()
    yield index
    index.close()

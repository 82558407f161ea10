"""Shared fixtures: one real Neo4j server per test run, started on a free port in a throwaway dir."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from app.settings import ApiSettings, Neo4jSettings, Settings, VectorSettings
from graph.database import Graph
from graph.migrations import Migrator
from graph.server import LocalNeo4jServer, free_port
from tests.corpora import QDRANT_BINARY, corpus_root
from tests.keycloak import LocalKeycloak
from vectors.server import LocalQdrantServer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Two test workers encode at once on two cores: one thread each, so that they do not oversubscribe them.
# Every model of the run, and of the servers it starts, uses one thread and one export of the model for
# OpenVINO, wherever a server's working directory is.
TEST_ENCODE_THREADS = 1
MODEL_CACHE = (Path(__file__).resolve().parent.parent / "var" / "cache" / "models").as_posix()
os.environ["PAGEFORGE_EMBEDDER__THREADS"] = str(TEST_ENCODE_THREADS)
os.environ["PAGEFORGE_EMBEDDER__CACHE_DIR"] = MODEL_CACHE


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules marked slow first (the sort is stable): the workers start on the long ones."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture
def anyio_backend() -> str:
    """`pytest.mark.anyio` tests run on asyncio, as the app does."""
    return "asyncio"


def migrated(server: LocalNeo4jServer) -> LocalNeo4jServer:
    """The server with every graph migration applied, as `pageforge migrate` leaves a Neo4j server."""

    async def migrate() -> None:
        graph = Graph(uri=server.bolt_uri, auth=server.auth)
        try:
            await Migrator(graph).migrate()
        finally:
            await graph.close()

    asyncio.run(migrate())
    return server


def start_test_neo4j(data_dir: Path, password: str | None = None) -> LocalNeo4jServer:
    # C1-only JIT halves the JVM start; test runs are short, so peak speed matters less.
    server = LocalNeo4jServer(
        data_dir=data_dir,
        bolt_port=free_port(),
        heap="768m",
        page_cache="128m",
        jvm_options=("-XX:TieredStopAtLevel=1",),
        password=password,
    )
    server.start(timeout=240)
    return server


@pytest.fixture(scope="session")
def neo4j_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNeo4jServer]:
    """The Neo4j server of this test run, migrated; stopped when the run ends."""
    server = migrated(start_test_neo4j(tmp_path_factory.mktemp("neo4j")))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def neo4j_server_with_password(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNeo4jServer]:
    """A second Neo4j of this test run, authentication on: what a Neo4j server deployment looks like."""
    server = migrated(
        start_test_neo4j(tmp_path_factory.mktemp("neo4j-auth"), password=f"test-{uuid.uuid4().hex}")
    )
    yield server
    server.stop()


def neo4j_settings(server: LocalNeo4jServer) -> Neo4jSettings:
    """Settings that reach this server as a Neo4j server is reached: its URI, and its password if any."""
    password = SecretStr(server.password) if server.password else None
    return Neo4jSettings(uri=server.bolt_uri, password=password)


def settings_for(neo4j_uri: str, var_dir: Path, **overrides: object) -> Settings:
    """Settings for an app that uses the given Neo4j and keeps its vectors under var_dir."""
    return Settings(
        neo4j=Neo4jSettings(uri=neo4j_uri),
        vectors=VectorSettings(path=var_dir / "vectors"),
        api=ApiSettings(max_body_bytes=1_000_000),
        **overrides,  # type: ignore[arg-type]
    )


@pytest.fixture
def settings(neo4j_server: LocalNeo4jServer, tmp_path: Path) -> Settings:
    return settings_for(neo4j_server.bolt_uri, tmp_path)


@pytest.fixture(scope="session")
def corpora() -> Path:
    """The directory holding nav-formio/, va-jsonschema/ and bcgov-fla-surveyjs/."""
    return corpus_root()


@pytest.fixture(scope="session")
def qdrant_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalQdrantServer]:
    """A real Qdrant server of this test run, API key on; stopped when the run ends."""
    server = LocalQdrantServer(
        binary=QDRANT_BINARY,
        storage_dir=tmp_path_factory.mktemp("qdrant"),
        http_port=free_port(),
        grpc_port=free_port(),
        api_key=f"test-{uuid.uuid4().hex}",
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def keycloak() -> Iterator[LocalKeycloak]:
    """A real Keycloak of this test run on loopback, the realms of deploy/keycloak imported; stopped when
    the run ends."""
    server = LocalKeycloak()
    server.start()
    yield server
    server.stop()

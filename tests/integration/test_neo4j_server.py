"""The PageForge-managed local Neo4j server: a real Neo4j 5.26 JVM started, used, stopped and restarted."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from neo4j import Driver, GraphDatabase
from neo4j.exceptions import AuthError, ConstraintError, ServiceUnavailable

from graph.server import PASSWORD_FILE_NAME, LocalNeo4jServer, Neo4jServerError, free_port

PAGEFORGE = Path(sys.executable).with_name("pageforge")

ROOT = Path(__file__).resolve().parents[2]


# Seconds the module's server took to start: the yardstick for "returns at once".
START_SECONDS: list[float] = []


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNeo4jServer]:
    # C1-only JIT halves start-up; the detached restart below runs the default flags.
    server = LocalNeo4jServer(
        data_dir=tmp_path_factory.mktemp("managed-neo4j"),
        bolt_port=free_port(),
        page_cache="64m",
        jvm_options=["-XX:TieredStopAtLevel=1"],
    )
    began = time.monotonic()
    server.start(timeout=240)
    START_SECONDS.append(time.monotonic() - began)
    yield server
    server.stop()


@pytest.fixture
def driver(server: LocalNeo4jServer) -> Iterator[Driver]:
    with GraphDatabase.driver(server.bolt_uri, auth=None) as driver:
        yield driver


def test_nodes_written_over_bolt_are_read_back(driver: Driver) -> None:
    driver.execute_query("UNWIND range(1, 3) AS i CREATE (:Probe {n: i})")
    records, _, _ = driver.execute_query("MATCH (p:Probe) RETURN p.n AS n ORDER BY n")
    assert [r["n"] for r in records] == [1, 2, 3]


def test_uniqueness_constraint_rejects_a_duplicate(driver: Driver) -> None:
    driver.execute_query("CREATE CONSTRAINT probe_key IF NOT EXISTS FOR (p:Keyed) REQUIRE p.key IS UNIQUE")
    driver.execute_query("CREATE (:Keyed {key: 'a'})")
    with pytest.raises(ConstraintError):
        driver.execute_query("CREATE (:Keyed {key: 'a'})")
    records, _, _ = driver.execute_query("MATCH (k:Keyed {key: 'a'}) RETURN count(k) AS c")
    assert records[0]["c"] == 1


def test_status_reports_the_running_server(server: LocalNeo4jServer) -> None:
    status = server.status()
    assert status.running
    assert status.pid == int(server.pid_file.read_text())
    assert status.bolt_uri == f"bolt://127.0.0.1:{server.bolt_port}"
    assert status.data_dir == server.data_dir


def test_start_while_running_returns_at_once_with_the_same_process(server: LocalNeo4jServer) -> None:
    pid_before = server.status().pid
    began = time.monotonic()
    server.start()
    assert time.monotonic() - began < START_SECONDS[0] / 4
    assert server.status().pid == pid_before


def test_a_taken_port_fails_fast_with_a_clear_error(server: LocalNeo4jServer, tmp_path: Path) -> None:
    rival = LocalNeo4jServer(data_dir=tmp_path / "rival", bolt_port=server.bolt_port)
    with pytest.raises(Neo4jServerError, match="already in use"):
        rival.start(timeout=60)
    assert not rival.pid_file.exists()
    assert server.status().running


def test_a_start_that_times_out_stops_the_jvm_and_says_so(tmp_path: Path) -> None:
    slow = LocalNeo4jServer(data_dir=tmp_path / "slow", bolt_port=free_port())
    with pytest.raises(Neo4jServerError, match=r"did not answer on bolt://127\.0\.0\.1:\d+ in time"):
        slow.start(timeout=0.5)
    assert not slow.pid_file.exists()
    assert launchers_using(slow.data_dir) == []


def launchers_using(data_dir: Path) -> list[int]:
    """Pids of live processes whose command line names data_dir."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if str(data_dir).encode() in args:
            pids.append(int(cmdline.parent.name))
    return pids


def test_stop_then_a_detached_restart_finds_the_data_written_before(server: LocalNeo4jServer) -> None:
    with GraphDatabase.driver(server.bolt_uri, auth=None) as driver:
        driver.execute_query("MERGE (:Survivor {name: 'kept across restarts'})")

    server.stop()

    assert not server.status().running
    assert server.status().pid is None
    assert not server.pid_file.exists()
    with GraphDatabase.driver(server.bolt_uri, auth=None) as driver, pytest.raises(ServiceUnavailable):
        driver.verify_connectivity()

    # Started from a separate process that then exits, as the CLI does: the server must outlive it.
    starter = (
        "import sys; from pathlib import Path; from graph.server import LocalNeo4jServer; "
        "LocalNeo4jServer(data_dir=Path(sys.argv[1]), bolt_port=int(sys.argv[2]), page_cache='64m')"
        ".start(timeout=240)"
    )
    subprocess.run(
        [sys.executable, "-c", starter, str(server.data_dir), str(server.bolt_port)],
        cwd=ROOT,
        check=True,
        timeout=300,
    )

    assert server.status().running
    with GraphDatabase.driver(server.bolt_uri, auth=None) as driver:
        records, _, _ = driver.execute_query("MATCH (s:Survivor) RETURN s.name AS name")
    assert [r["name"] for r in records] == ["kept across restarts"]


def test_build_does_not_need_maven_once_the_classpath_is_fresh(server: LocalNeo4jServer) -> None:
    built = LocalNeo4jServer(data_dir=server.data_dir, bolt_port=server.bolt_port, mvn="no-such-mvn")
    assert built.is_built()
    built.build()


def test_build_without_maven_names_the_missing_tool(tmp_path: Path) -> None:
    project = tmp_path / "server"
    project.mkdir()
    (project / "pom.xml").write_text("<project/>")
    unbuilt = LocalNeo4jServer(
        data_dir=tmp_path / "data", bolt_port=free_port(), mvn="no-such-mvn", project_dir=project
    )
    with pytest.raises(Neo4jServerError, match=r"Maven \('no-such-mvn'\) is not on PATH"):
        unbuilt.build()


def test_with_a_password_only_that_password_logs_in_and_a_restart_can_change_it(tmp_path: Path) -> None:
    def server(password: str) -> LocalNeo4jServer:
        return LocalNeo4jServer(
            data_dir=tmp_path / "data",
            bolt_port=port,
            page_cache="64m",
            jvm_options=["-XX:TieredStopAtLevel=1"],
            password=password,
        )

    port = free_port()
    first = server("first-password")
    first.start(timeout=240)
    try:
        with GraphDatabase.driver(first.bolt_uri, auth=first.auth) as driver:
            driver.execute_query("CREATE (:Written {by: 'first'})")
        for wrong in [None, ("neo4j", "not-the-password")]:
            with GraphDatabase.driver(first.bolt_uri, auth=wrong) as driver, pytest.raises(AuthError):
                driver.verify_connectivity()
        assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700  # only its owner reads the store
        # The password is an environment variable of the JVM, never on its command line.
        pid = first.status().pid
        assert b"first-password" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    finally:
        first.stop()

    second = server("second-password")
    second.start(timeout=240)
    try:
        with GraphDatabase.driver(second.bolt_uri, auth=second.auth) as driver:
            records, _, _ = driver.execute_query("MATCH (w:Written) RETURN w.by AS by")
        assert [r["by"] for r in records] == ["first"]
        with pytest.raises(Neo4jServerError, match="refuses the configured credentials"):
            server("first-password").status()
    finally:
        second.stop()


def test_the_managed_neo4j_logs_in_with_a_generated_password_that_only_its_owner_reads(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "neo4j"
    env = {
        **os.environ,
        "PAGEFORGE_NEO4J__DATA_DIR": str(data_dir),
        "PAGEFORGE_NEO4J__BOLT_PORT": str(free_port()),
        "PAGEFORGE_NEO4J__PAGE_CACHE": "64m",
        "PAGEFORGE_NEO4J__HEAP": "256m",
    }
    env.pop("PAGEFORGE_NEO4J__URI", None)
    env.pop("PAGEFORGE_NEO4J__PASSWORD", None)

    def pageforge(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(PAGEFORGE), *args], env=env, capture_output=True, text=True, timeout=300, check=False
        )

    started = pageforge("neo4j", "start")
    assert started.returncode == 0, started.stderr[-3000:]
    try:
        password_file = data_dir / PASSWORD_FILE_NAME
        assert password_file.stat().st_mode & 0o777 == 0o600
        assert data_dir.stat().st_mode & 0o777 == 0o700
        password = password_file.read_text().strip()
        assert len(password) >= 32
        uri = f"bolt://127.0.0.1:{env['PAGEFORGE_NEO4J__BOLT_PORT']}"
        for wrong in [None, ("neo4j", "neo4j")]:
            with GraphDatabase.driver(uri, auth=wrong) as driver, pytest.raises(AuthError):
                driver.verify_connectivity()
        with GraphDatabase.driver(uri, auth=("neo4j", password)) as driver:
            driver.verify_connectivity()
        # The CLI's other commands, and a server, read the same password.
        created = pageforge("tenant", "create", "acme")
        assert created.returncode == 0, created.stderr[-3000:]
        assert created.stdout.strip().startswith("pf_")
        status = pageforge("neo4j", "status")
        assert status.returncode == 0
        assert re.search(r"running at bolt://127\.0\.0\.1:\d+ \(pid \d+\)", status.stdout), status.stdout
    finally:
        stopped = pageforge("neo4j", "stop")
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    assert password_file.read_text().strip() == password  # kept for the next start

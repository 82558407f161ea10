"""The PageForge-managed local Neo4j server: builds and runs the embedded-Neo4j launcher in graph/server."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from neo4j import GraphDatabase
from neo4j.exceptions import AuthError, DriverError, Neo4jError

from processes import DetachedProcess, ProcessSurvived, exclusive_lock, private_directory

SERVER_PROJECT_DIR = Path(__file__).resolve().parent / "server"
LAUNCHER_CLASS = "pageforge.neo4j.LocalNeo4jLauncher"
LAUNCHER_JAR = "pageforge-neo4j-launcher.jar"
READY_PREFIX = "PAGEFORGE_NEO4J_READY"
# The launcher reads the password from its environment: a command line is visible to every local user.
PASSWORD_ENV = "PAGEFORGE_NEO4J_PASSWORD"
ADMIN_USER = "neo4j"
LOOPBACK = "127.0.0.1"
PID_FILE_NAME = "pageforge-neo4j.pid"
PASSWORD_FILE_NAME = "pageforge-neo4j.password"
LOG_FILE_NAME = "pageforge-neo4j.log"
# The JVM options the Neo4j 5 server ships with that matter for an embedded DBMS of this size.
JVM_FLAGS = (
    "-XX:+UseG1GC",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djdk.nio.maxCachedBufferSize=1024",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dlog4j2.disable.jmx=true",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
)
_POLL_S = 0.2
_LOG_TAIL_LINES = 40
_TRAINING_TIMEOUT_S = 300.0

logger = logging.getLogger(__name__)


class Neo4jServerError(RuntimeError):
    """The local Neo4j server could not be built, started or stopped."""


@dataclass(frozen=True)
class ServerStatus:
    """What `LocalNeo4jServer.status()` found."""

    running: bool
    pid: int | None
    bolt_uri: str
    data_dir: Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


def generated_password(data_dir: Path) -> str:
    """The password generated for the Neo4j under `data_dir` on first use, kept beside its data where only
    its owner can read it (0600 in a 0700 directory); every later call, from any process, reads it back."""
    private_directory(data_dir)
    path = data_dir / PASSWORD_FILE_NAME
    if not path.exists():
        # Written whole under another name and linked into place: a process racing this one reads either
        # nothing (and writes its own, which loses the link) or the complete password.
        fd, draft = tempfile.mkstemp(dir=data_dir, prefix=".password-")
        try:
            with os.fdopen(fd, "w") as file:
                file.write(secrets.token_urlsafe(32))
            with contextlib.suppress(FileExistsError):
                os.link(draft, path)
        finally:
            os.unlink(draft)
    path.chmod(0o600)
    return path.read_text().strip()


class LocalNeo4jServer:
    """A Neo4j 5.26 Community DBMS in its own JVM, Bolt on 127.0.0.1, data under `data_dir`.

    With a `password`, authentication is on and the `neo4j` user's password is set to it at every start
    (as a Neo4j server's NEO4J_AUTH does); without one, authentication is off.
    """

    def __init__(
        self,
        *,
        data_dir: Path,
        bolt_port: int,
        heap: str = "512m",
        page_cache: str = "128m",
        java: str = "java",
        mvn: str = "mvn",
        log_file: Path | None = None,
        jvm_options: Sequence[str] = (),
        project_dir: Path = SERVER_PROJECT_DIR,
        password: str | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.bolt_port = bolt_port
        self.heap = heap
        self.page_cache = page_cache
        self.java = java
        self.mvn = mvn
        self.log_file = Path(log_file).resolve() if log_file else self.data_dir / LOG_FILE_NAME
        self.jvm_options = tuple(jvm_options)
        self.project_dir = project_dir
        self.pid_file = self.data_dir / PID_FILE_NAME
        self.password = password or None
        self._process = DetachedProcess(self.pid_file, markers=[LAUNCHER_CLASS, str(self.data_dir)])

    @property
    def auth(self) -> tuple[str, str] | None:
        """What a driver passes to log in (None: authentication is off)."""
        return (ADMIN_USER, self.password) if self.password else None

    @property
    def bolt_uri(self) -> str:
        """The Bolt URI clients connect to."""
        return f"bolt://{LOOPBACK}:{self.bolt_port}"

    @property
    def _target_dir(self) -> Path:
        return self.project_dir / "target"

    @property
    def _build_stamp(self) -> Path:
        return self._target_dir / "pageforge-build.stamp"

    @property
    def _class_archive(self) -> Path:
        return self._target_dir / "pageforge-neo4j-launcher.jsa"

    @property
    def classpath(self) -> str:
        """The launcher's classpath: its jar plus every runtime jar Maven copied."""
        return os.pathsep.join([str(self._target_dir / LAUNCHER_JAR), str(self._target_dir / "lib" / "*")])

    def jvm_command(self) -> list[str]:
        """The full command line that runs the launcher."""
        # The class-data archive written by build() saves a few seconds of class loading; a JVM
        # that cannot use it (missing, other JDK, changed jars) silently loads classes as usual.
        return self._launcher_command(
            self.data_dir, self.bolt_port, [f"-XX:SharedArchiveFile={self._class_archive}"]
        )

    def _launcher_command(self, data_dir: Path, bolt_port: int, extra_flags: Sequence[str]) -> list[str]:
        return [
            self.java,
            f"-Xms{self.heap}",
            f"-Xmx{self.heap}",
            *JVM_FLAGS,
            *extra_flags,
            *self.jvm_options,
            "-cp",
            self.classpath,
            LAUNCHER_CLASS,
            str(data_dir),
            str(bolt_port),
            self.page_cache,
        ]

    def is_built(self) -> bool:
        """Whether the built classpath exists and is newer than the pom and every source file."""
        stamp = self._build_stamp
        launcher = self._target_dir / LAUNCHER_JAR
        lib = self._target_dir / "lib"
        if not (stamp.is_file() and launcher.is_file() and lib.is_dir() and any(lib.glob("*.jar"))):
            return False
        sources = [
            self.project_dir / "pom.xml",
            *(p for p in (self.project_dir / "src").rglob("*") if p.is_file()),
        ]
        return stamp.stat().st_mtime >= max(p.stat().st_mtime for p in sources)

    def build(self) -> None:
        """Run Maven (fetching Neo4j from Maven Central once) unless the classpath is already fresh."""
        if self.is_built():
            return
        mvn = shutil.which(self.mvn)
        if mvn is None:
            raise Neo4jServerError(
                f"Maven ('{self.mvn}') is not on PATH; it is needed once to fetch Neo4j and build "
                f"the launcher in {self.project_dir}"
            )
        self._require_java()
        self._target_dir.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(self._target_dir / ".build.lock"):
            if self.is_built():  # another process built it while we waited
                return
            # Jars of an older pinned version would otherwise sit on the classpath beside the new ones.
            shutil.rmtree(self._target_dir / "lib", ignore_errors=True)
            result = subprocess.run(
                [mvn, "-q", "-B", "package"],
                cwd=self.project_dir,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                output = (result.stdout + result.stderr).strip().splitlines()
                raise Neo4jServerError(
                    f"Maven build of the Neo4j launcher failed (exit {result.returncode}) in "
                    f"{self.project_dir}:\n" + "\n".join(output[-_LOG_TAIL_LINES:])
                )
            self._train_class_archive()
            self._build_stamp.touch()

    def start(self, timeout: float = 120) -> None:
        """Start the server detached from this process; return once Bolt answers.

        `timeout` bounds the wait for Bolt; a first Maven build before it is not counted.
        """
        pid = self._process.running_pid()
        if pid is not None:
            if not self._bolt_answers():
                self._wait_for_bolt(pid, time.monotonic() + timeout, log_offset=None)
            return
        self._process.forget()
        self._require_java()
        self.build()
        deadline = time.monotonic() + timeout
        private_directory(self.data_dir)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        with self.log_file.open("ab") as log:
            log.write(f"--- starting: {' '.join(self.jvm_command())}\n".encode())
            log.flush()
            environment = {name: value for name, value in os.environ.items() if name != PASSWORD_ENV}
            if self.password:
                environment[PASSWORD_ENV] = self.password
            pid = self._process.spawn(self.jvm_command(), cwd=self.data_dir, env=environment, log=log)
        self._wait_for_bolt(pid, deadline, log_offset=log_offset)

    def stop(self, timeout: float = 60) -> None:
        """Stop the server cleanly (SIGTERM), killing it only if it is still alive after `timeout`."""
        try:
            self._process.stop(timeout)
        except ProcessSurvived as exc:
            raise Neo4jServerError(f"Neo4j: {exc}") from exc

    def status(self) -> ServerStatus:
        """Running means the launcher process is alive and Bolt answers."""
        pid = self._process.running_pid()
        running = pid is not None and self._bolt_answers()
        return ServerStatus(running=running, pid=pid, bolt_uri=self.bolt_uri, data_dir=self.data_dir)

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last lines of the server's log, for error messages."""
        if not self.log_file.exists():
            return "(no log written)"
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def _require_java(self) -> None:
        if shutil.which(self.java) is None:
            raise Neo4jServerError(f"Java ('{self.java}') is not on PATH; Neo4j 5.26 needs Java 17 or 21")

    def _train_class_archive(self) -> None:
        """Start and stop the launcher once with a throwaway store, dumping the classes it loaded."""
        archive = self._class_archive
        archive.unlink(missing_ok=True)
        partial = archive.with_name(archive.name + ".partial")
        partial.unlink(missing_ok=True)
        with tempfile.TemporaryDirectory(prefix="pageforge-neo4j-cds-") as scratch:
            log_path = Path(scratch) / "training.log"
            command = self._launcher_command(
                Path(scratch) / "data", free_port(), [f"-XX:ArchiveClassesAtExit={partial}"]
            )
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
                )
            deadline = time.monotonic() + _TRAINING_TIMEOUT_S
            while process.poll() is None and time.monotonic() < deadline:
                if READY_PREFIX.encode() in log_path.read_bytes():
                    break
                time.sleep(_POLL_S)
            process.terminate()
            try:
                process.wait(timeout=_TRAINING_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            trained = READY_PREFIX.encode() in log_path.read_bytes()
        if trained and partial.is_file():
            partial.replace(archive)
        else:
            partial.unlink(missing_ok=True)
            logger.warning("Neo4j class-data archive not written; the server starts without it")

    def _wait_for_bolt(self, pid: int, deadline: float, *, log_offset: int | None) -> None:
        ready = log_offset is None
        while time.monotonic() < deadline:
            if not self._process.alive(pid):
                self._process.forget()
                raise Neo4jServerError(
                    f"Neo4j (pid {pid}) exited during start-up; log {self.log_file}:\n{self.log_tail()}"
                )
            ready = ready or self._log_says_ready(log_offset or 0)
            if ready and self._bolt_answers():
                return
            time.sleep(_POLL_S)
        self.stop()
        raise Neo4jServerError(
            f"Neo4j did not answer on {self.bolt_uri} in time; stopped it. Log {self.log_file}:\n"
            f"{self.log_tail()}"
        )

    def _log_says_ready(self, offset: int) -> bool:
        with self.log_file.open("rb") as log:
            log.seek(offset)
            return READY_PREFIX.encode() in log.read()

    def _bolt_answers(self) -> bool:
        try:
            with GraphDatabase.driver(self.bolt_uri, auth=self.auth, connection_timeout=2.0) as driver:
                driver.verify_connectivity()
        except AuthError as exc:
            raise Neo4jServerError(
                f"Neo4j at {self.bolt_uri} refuses the configured credentials ({exc.message}); a server "
                "started with another password keeps it until it is stopped and started again"
            ) from exc
        except (DriverError, Neo4jError, OSError):
            return False
        return True

"""A Qdrant server process on 127.0.0.1, with an API key and its storage in a directory we own.

`pageforge qdrant start|stop|status` runs one for development the way the managed Neo4j runs, and the
tests run single nodes and a 3-node cluster with it. In production the Qdrant server is deployed on its
own and only its URL and API key are configured.
"""

from __future__ import annotations

import os
import shutil
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from processes import DetachedProcess, ProcessSurvived, private_directory

LOOPBACK = "127.0.0.1"
LOG_FILE_NAME = "qdrant.log"
PID_FILE_NAME = "qdrant.pid"
_POLL_S = 0.1


class QdrantServerError(RuntimeError):
    """The Qdrant server could not be started or stopped."""


@dataclass(frozen=True)
class QdrantStatus:
    """What `LocalQdrantServer.status()` found."""

    running: bool
    pid: int | None
    url: str
    storage_dir: Path


@dataclass(frozen=True)
class ClusterPeer:
    """This node's place in a cluster: its peer-to-peer port, and the peer it joins (None: it starts one)."""

    p2p_port: int
    bootstrap_port: int | None = None


class LocalQdrantServer:
    """The `qdrant` binary serving HTTP and gRPC on loopback ports, telemetry off, an API key required.

    Started detached (it outlives the command that started it) and found again by the pid file in its
    storage directory. With a `peer`, it runs in distributed mode as one node of a cluster.
    """

    def __init__(
        self,
        *,
        binary: Path,
        storage_dir: Path,
        http_port: int,
        grpc_port: int,
        api_key: str,
        peer: ClusterPeer | None = None,
    ) -> None:
        self.binary = _resolve(binary)
        self.storage_dir = Path(storage_dir).resolve()
        self.http_port = http_port
        self.grpc_port = grpc_port
        self.api_key = api_key
        self.peer = peer
        self.log_file = self.storage_dir / LOG_FILE_NAME
        self._process = DetachedProcess(
            self.storage_dir / PID_FILE_NAME, markers=[str(self.binary)], cwd=self.storage_dir
        )

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}"

    def environment(self) -> dict[str, str]:
        """The server's settings, as the environment variables Qdrant reads (the API key stays off the
        command line, which every local user can read)."""
        settings = {
            # Never report to the internet (Qdrant does by default).
            "QDRANT__TELEMETRY_DISABLED": "true",
            "QDRANT__SERVICE__HOST": LOOPBACK,
            "QDRANT__SERVICE__HTTP_PORT": str(self.http_port),
            "QDRANT__SERVICE__GRPC_PORT": str(self.grpc_port),
            "QDRANT__SERVICE__API_KEY": self.api_key,
            "QDRANT__STORAGE__STORAGE_PATH": str(self.storage_dir / "storage"),
            "QDRANT__STORAGE__SNAPSHOTS_PATH": str(self.storage_dir / "snapshots"),
            "QDRANT__LOG_LEVEL": "WARN",
        }
        if self.peer is not None:
            settings |= {
                "QDRANT__CLUSTER__ENABLED": "true",
                "QDRANT__CLUSTER__P2P__PORT": str(self.peer.p2p_port),
            }
        return settings

    def command(self) -> list[str]:
        if self.peer is None:
            return [str(self.binary)]
        uri = ["--uri", f"http://{LOOPBACK}:{self.peer.p2p_port}"]
        if self.peer.bootstrap_port is None:
            return [str(self.binary), *uri]
        return [str(self.binary), "--bootstrap", f"http://{LOOPBACK}:{self.peer.bootstrap_port}", *uri]

    def start(self, timeout: float = 60.0) -> None:
        """Start the server unless it runs; return once `/readyz` answers, or raise with the log's end."""
        if self._process.running_pid() is None:
            if not self.binary.is_file() or not os.access(self.binary, os.X_OK):
                raise QdrantServerError(
                    f"no Qdrant server binary at {self.binary} (set PAGEFORGE_QDRANT__BINARY; "
                    "../shared/qdrant/build.sh builds one)"
                )
            private_directory(self.storage_dir)
            environment = {**os.environ, **self.environment()}
            with self.log_file.open("ab") as log:
                self._process.spawn(self.command(), cwd=self.storage_dir, env=environment, log=log)
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self._process.running_pid() is None:
                self._process.forget()
                raise QdrantServerError(f"qdrant exited during start-up:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise QdrantServerError(
                    f"qdrant not ready within {timeout:.0f}s; stopped it:\n{self.log_tail()}"
                )
            time.sleep(_POLL_S)

    def ready(self) -> bool:
        """Whether the server answers `/readyz` (no API key needed there)."""
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def status(self) -> QdrantStatus:
        """Running means the process in the pid file is alive and `/readyz` answers."""
        pid = self._process.running_pid()
        return QdrantStatus(
            running=pid is not None and self.ready(), pid=pid, url=self.url, storage_dir=self.storage_dir
        )

    def kill(self) -> None:
        """SIGKILL: the server gets no chance to flush (what a crash does)."""
        pid = self._process.running_pid()
        if pid is not None:
            self._process.kill(pid)
        self._process.forget()

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds."""
        try:
            self._process.stop(timeout)
        except ProcessSurvived as exc:
            raise QdrantServerError(f"qdrant: {exc}") from exc

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_file.read_text(errors="replace")[-chars:] if self.log_file.exists() else ""


def _resolve(binary: Path) -> Path:
    """A bare name (`qdrant`) is looked up on PATH; a path is used as it is."""
    if binary.parent == Path() and (found := shutil.which(binary.name)):
        return Path(found).resolve()
    return binary.resolve()

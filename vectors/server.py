"""A Qdrant server process on 127.0.0.1, with an API key and its storage in a directory we own.

PageForge runs one for its tests (the qdrant-client adapter's contract suite) the way it runs the
managed Neo4j; in production the Qdrant server is deployed on its own and only its URL is configured.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

LOOPBACK = "127.0.0.1"
LOG_FILE_NAME = "qdrant.log"
_POLL_S = 0.1


class QdrantServerError(RuntimeError):
    """The Qdrant server could not be started or stopped."""


class LocalQdrantServer:
    """The `qdrant` binary serving HTTP and gRPC on loopback ports, telemetry off, an API key required."""

    def __init__(
        self, *, binary: Path, storage_dir: Path, http_port: int, grpc_port: int, api_key: str
    ) -> None:
        self.binary = Path(binary)
        self.storage_dir = Path(storage_dir).resolve()
        self.http_port = http_port
        self.grpc_port = grpc_port
        self.api_key = api_key
        self.log_file = self.storage_dir / LOG_FILE_NAME
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}"

    def environment(self) -> dict[str, str]:
        """The server's settings, as the environment variables Qdrant reads."""
        return {
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

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and return once `/readyz` answers; raise with the log's end if it does not."""
        if not self.binary.is_file() or not os.access(self.binary, os.X_OK):
            raise QdrantServerError(
                f"no Qdrant server binary at {self.binary} (build one with ../shared/qdrant/build.sh)"
            )
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                [str(self.binary)],
                cwd=self.storage_dir,
                env={**os.environ, **self.environment()},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self._process.poll() is not None:
                raise QdrantServerError(f"qdrant exited with {self._process.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise QdrantServerError(f"qdrant not ready within {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(_POLL_S)

    def ready(self) -> bool:
        """Whether the server answers `/readyz` (no API key needed there)."""
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def kill(self) -> None:
        """SIGKILL: the server gets no chance to flush (what a crash does)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_file.read_text(errors="replace")[-chars:] if self.log_file.exists() else ""

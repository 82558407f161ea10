"""`pageforge serve` as a real subprocess on a free port, for tests that need processes of their own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from app.settings import Settings
from graph.server import free_port

PAGEFORGE = Path(sys.executable).parent / "pageforge"
START_TIMEOUT_S = 180.0


def server_env(settings: Settings, **extra: str) -> dict[str, str]:
    """This environment with PageForge reaching the Neo4j and the layout index `settings` name (with their
    credentials), the model offline, and further PAGEFORGE_* settings (`gateway__renderer_url=...`)."""
    neo4j, vectors = settings.neo4j, settings.vectors
    assert neo4j.uri is not None, "a test server uses the test run's Neo4j"
    env = {
        **os.environ,
        "PAGEFORGE_NEO4J__URI": neo4j.uri,
        "PAGEFORGE_VECTORS__PATH": str(vectors.path),
        "PAGEFORGE_VECTORS__COLLECTION": vectors.collection,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    if neo4j.password is not None:
        env["PAGEFORGE_NEO4J__PASSWORD"] = neo4j.password.get_secret_value()
    if vectors.qdrant_url is not None:
        env["PAGEFORGE_VECTORS__QDRANT_URL"] = vectors.qdrant_url
    if vectors.qdrant_api_key is not None:
        env["PAGEFORGE_VECTORS__QDRANT_API_KEY"] = vectors.qdrant_api_key.get_secret_value()
    return env | {f"PAGEFORGE_{name.upper()}": value for name, value in extra.items()}


class ApiServer:
    """`pageforge serve [args]` as a subprocess on the port (default: a free one), logging to a file."""

    def __init__(self, env: Mapping[str, str], log_path: Path, *args: str, port: int | None = None) -> None:
        self.env = dict(env)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [str(PAGEFORGE), "serve", "--port", str(self.port), *args],
            env=dict(env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"server exited early:\n{self.log_tail()}"
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise AssertionError(f"server not healthy within {START_TIMEOUT_S}s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a power cut of the process."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def terminate(self, timeout_s: float = 60.0) -> int:
        """SIGTERM: a clean shutdown that closes the index; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"server ignored SIGTERM:\n{self.log_tail()}") from None

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill()
        self._log.close()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self) -> str:
        return self.log_text()[-4000:]

    def logged(self, text: str, timeout_s: float = 10.0) -> bool:
        """Whether `text` reaches the log within `timeout_s`: a line may land just after its response."""
        deadline = time.monotonic() + timeout_s
        while text not in self.log_text():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True


@contextmanager
def api_server(env: Mapping[str, str], log_path: Path, *args: str) -> Iterator[ApiServer]:
    server = ApiServer(env, log_path, *args)
    try:
        yield server
    finally:
        server.close()

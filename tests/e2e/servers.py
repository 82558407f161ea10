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

from graph.server import LocalNeo4jServer, free_port

PAGEFORGE = Path(sys.executable).parent / "pageforge"
START_TIMEOUT_S = 180.0


def server_env(neo4j_server: LocalNeo4jServer, vectors_path: Path, **settings: str) -> dict[str, str]:
    """This environment with PageForge using the test run's Neo4j, vectors under vectors_path, the model
    offline, and further PAGEFORGE_* settings (`gateway__renderer_url=...`)."""
    return {
        **os.environ,
        "PAGEFORGE_NEO4J__URI": neo4j_server.bolt_uri,
        "PAGEFORGE_VECTORS__PATH": str(vectors_path),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        **{f"PAGEFORGE_{name.upper()}": value for name, value in settings.items()},
    }


class ApiServer:
    """`pageforge serve [args]` as a subprocess on the port (default: a free one), logging to a file."""

    def __init__(self, env: Mapping[str, str], log_path: Path, *args: str, port: int | None = None) -> None:
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

    def terminate(self) -> int:
        """SIGTERM: a clean shutdown that closes the index; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
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

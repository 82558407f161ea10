"""`pageforge qdrant start|stop|status`: a real Qdrant server started detached, found again, stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from qdrant_client import QdrantClient
from qdrant_client.http.exceptions import UnexpectedResponse

from graph.server import free_port
from tests.corpora import QDRANT_BINARY

PAGEFORGE = Path(sys.executable).with_name("pageforge")


def pageforge(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PAGEFORGE), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PAGEFORGE_QDRANT__BINARY": str(QDRANT_BINARY),
        "PAGEFORGE_QDRANT__DATA_DIR": str(tmp_path / "qdrant"),
        "PAGEFORGE_QDRANT__HTTP_PORT": str(free_port()),
        "PAGEFORGE_QDRANT__GRPC_PORT": str(free_port()),
        "PAGEFORGE_VECTORS__QDRANT_API_KEY": f"key-{uuid.uuid4().hex}",
    }


def test_start_outlives_the_cli_requires_the_key_and_stop_ends_it(
    env: dict[str, str], tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{env['PAGEFORGE_QDRANT__HTTP_PORT']}"
    api_key = env["PAGEFORGE_VECTORS__QDRANT_API_KEY"]
    stopped_before = pageforge(env, "qdrant", "status")
    assert stopped_before.returncode == 1
    assert stopped_before.stdout.strip() == f"qdrant stopped at {url}"

    started = pageforge(env, "qdrant", "start")
    try:
        assert started.returncode == 0, started.stderr
        assert f"qdrant running at {url}" in started.stdout
        assert f"PAGEFORGE_VECTORS__QDRANT_URL={url}" in started.stdout
        status = pageforge(env, "qdrant", "status")
        assert status.returncode == 0, status.stdout + status.stderr
        assert "running" in status.stdout
        # Starting again finds the running server rather than a second one fighting for its ports.
        again = pageforge(env, "qdrant", "start")
        assert again.returncode == 0, again.stderr
        assert (tmp_path / "qdrant" / "storage").is_dir()
        assert (tmp_path / "qdrant").stat().st_mode & 0o777 == 0o700  # only its owner reads the vectors

        assert QdrantClient(url=url, api_key=api_key).get_collections().collections == []
        with pytest.raises(UnexpectedResponse) as refused:
            QdrantClient(url=url, api_key="not-the-key").get_collections()
        assert refused.value.status_code == 401
        # The key reaches the server through its environment, not its command line.
        pid = int((tmp_path / "qdrant" / "qdrant.pid").read_text())
        assert api_key.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
    finally:
        stopped = pageforge(env, "qdrant", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert pageforge(env, "qdrant", "status").returncode == 1
    assert not Path(f"/proc/{pid}").exists() or b"qdrant" not in Path(f"/proc/{pid}/cmdline").read_bytes()


def test_without_an_api_key_or_a_binary_it_says_what_is_missing(env: dict[str, str]) -> None:
    no_key = pageforge(
        {k: v for k, v in env.items() if k != "PAGEFORGE_VECTORS__QDRANT_API_KEY"}, "qdrant", "start"
    )
    assert no_key.returncode == 2
    assert "PAGEFORGE_VECTORS__QDRANT_API_KEY" in no_key.stderr

    no_binary = pageforge(env | {"PAGEFORGE_QDRANT__BINARY": "/nonexistent/qdrant"}, "qdrant", "start")
    assert no_binary.returncode == 1
    assert "no Qdrant server binary at /nonexistent/qdrant" in no_binary.stderr
    assert "Traceback" not in no_binary.stderr

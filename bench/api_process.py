"""The API as the benchmarks serve it: uvicorn running create_app() in a child process on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from graph.server import free_port

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 240.0


def start_api(settings: Mapping[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """uvicorn serving create_app() configured by `settings` (PAGEFORGE_* variables), the model offline,
    logging to `log`; returns the process and its base URL once /health answers 200."""
    port = free_port()
    env = {
        **os.environ,
        "PAGEFORGE_LOG_LEVEL": "WARNING",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        **settings,
    }
    command = [
        sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", "--host", "127.0.0.1",
        "--port", str(port), "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    with log.open("wb") as log_file:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log_file)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return process, base
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise RuntimeError(
                f"the API exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}"
            )
        time.sleep(0.5)
    stop_api(process)
    raise RuntimeError(f"the API did not become healthy within {START_TIMEOUT_S:.0f} s")


def stop_api(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)

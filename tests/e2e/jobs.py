"""What the job tests share: archives made in memory, and waiting for a job's end."""

from __future__ import annotations

import io
import time
import zipfile
from typing import Any

from fastapi.testclient import TestClient

from tests.e2e.conftest import TenantKey

WAIT_S = 120.0


def zipped(files: dict[str, bytes]) -> bytes:
    """A zip archive holding these files (name: content)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def wait_finished(
    client: TestClient, tenant: TenantKey, path: str, timeout_s: float = WAIT_S
) -> dict[str, Any]:
    """The job at `path` once it has succeeded, failed or been cancelled."""
    deadline = time.monotonic() + timeout_s
    while True:
        job: dict[str, Any] = client.get(path, headers=tenant.headers).json()
        if job["state"] not in ("queued", "running"):
            return job
        assert time.monotonic() < deadline, f"job not finished within {timeout_s:.0f} s: {job}"
        time.sleep(0.2)

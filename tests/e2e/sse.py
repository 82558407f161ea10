"""A Server-Sent Events client for the tests: reads a stream in a thread and keeps what arrives."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx


class Listener:
    """Reads a stream in a thread and keeps its messages (event name, id, data) and comment lines."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.messages: list[dict[str, Any]] = []
        self.comments: list[str] = []
        self.status: int | None = None
        self.content_type = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(url, headers), daemon=True)
        self._thread.start()

    def _read(self, url: str, headers: dict[str, str]) -> None:
        try:
            self._listen(url, headers)
        except httpx.HTTPError:
            if not self._stop.is_set():
                raise

    def _listen(self, url: str, headers: dict[str, str]) -> None:
        with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(30, read=None)) as response:
            self.status, self.content_type = response.status_code, response.headers.get("content-type", "")
            message: dict[str, Any] = {}
            for line in response.iter_lines():
                if self._stop.is_set():
                    return
                if line.startswith(":"):
                    self.comments.append(line)
                elif not line:
                    if "data" in message:
                        self.messages.append(message)
                    message = {}
                else:
                    field, _, value = line.partition(": ")
                    message[field] = json.loads(value) if field == "data" else value

    def wait(self, count: int, timeout_s: float = 30) -> list[dict[str, Any]]:
        self.wait_until(lambda: len(self.messages) >= count, f"{count} messages", timeout_s)
        return self.messages

    def versions_created(self) -> list[str]:
        return [m["data"]["data"]["version_id"] for m in self.messages if m["event"] == "version.created"]

    def wait_until(self, condition: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert time.monotonic() < deadline, f"no {what}: {self.messages} {self.comments}"
            time.sleep(0.05)

    def close(self) -> None:
        self._stop.set()

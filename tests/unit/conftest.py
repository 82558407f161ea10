"""Fixtures shared by the unit tests."""

from __future__ import annotations

import pytest

from app import auth


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The monotonic clock app.auth reads, frozen at clock[0]; tests move it by changing clock[0]."""
    now = [1000.0]
    monkeypatch.setattr(auth.time, "monotonic", lambda: now[0])
    return now

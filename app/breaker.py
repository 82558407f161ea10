"""A circuit breaker per service behind the gateway: callers of a service that is down get 503 at once."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Literal

from app.errors import DependencyUnavailable

BreakerState = Literal["closed", "open", "half-open"]


class CircuitOpen(DependencyUnavailable):
    """503 without contacting the service, with Retry-After: when the breaker lets a probe through."""

    def __init__(self, detail: str, *, service: str, retry_after_s: float) -> None:
        super().__init__(detail, service=service, retry_after_s=round(retry_after_s, 3))
        self.retry_after_s = retry_after_s

    @property
    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(max(1, math.ceil(self.retry_after_s)))}


class CircuitBreaker:
    """Closed: every call goes. `failures` failed calls in a row (0: never) open it: calls are refused for
    `reset_s`, then it is half-open: one probe call goes (another only if it outlasts `reset_s`), whose
    success closes the breaker and whose failure opens it again.

    `admit()` says whether a call is that probe; the caller reports the call's outcome with it. One event
    loop, no awaits inside: no lock needed.
    """

    def __init__(
        self, service: str, *, failures: int, reset_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.service = service
        self.failures = failures
        self.reset_s = reset_s
        self.clock = clock
        self.state: BreakerState = "closed"
        self._failed = 0
        self._last_failure = ""
        self._since = 0.0  # when it opened, or when the probe under way started

    def admit(self) -> bool:
        """Whether the call about to be made is the probe; CircuitOpen if no call may be made now."""
        if self.state == "closed":
            return False
        now = self.clock()
        wait = self._since + self.reset_s - now
        if wait > 0:
            raise CircuitOpen(self._refusal(wait), service=self.service, retry_after_s=wait)
        self.state = "half-open"
        self._since = now
        return True

    def succeeded(self, probe: bool) -> None:
        """The service answered (whatever its status)."""
        if self.state == "closed" or (probe and self.state == "half-open"):
            self.state = "closed"
            self._failed = 0

    def failed(self, probe: bool, reason: str) -> None:
        """The call could not reach the service or got no answer from it."""
        if self.state == "closed" or (probe and self.state == "half-open"):
            self._failed += 1
            self._last_failure = reason
            if self.state == "half-open" or (self.failures and self._failed >= self.failures):
                self.state, self._since = "open", self.clock()

    def abandoned(self, probe: bool) -> None:
        """The call ended without a verdict on the service (cancelled): the next call may probe."""
        if probe and self.state == "half-open":
            self._since = self.clock() - self.reset_s

    def describe(self) -> str | None:
        """What callers of the service get now, unless the breaker is closed."""
        if self.state == "closed":
            return None
        if self.state == "half-open":
            return "circuit half-open: one probe request is under way"
        wait = max(0.0, self._since + self.reset_s - self.clock())
        return (
            f"circuit open after {self._failed} failed attempts in a row ({self._last_failure}): "
            f"503 for {wait:.1f}s more"
        )

    def _refusal(self, wait: float) -> str:
        if self.state == "half-open":
            return (
                f"service {self.service} unavailable: a probe request is checking whether it is back; "
                f"retry in {wait:.1f}s"
            )
        return (
            f"service {self.service} unavailable: {self._failed} attempts in a row failed, the last: "
            f"{self._last_failure}; the gateway tries it again in {wait:.1f}s"
        )

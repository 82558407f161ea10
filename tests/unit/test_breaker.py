"""The gateway's breaker per service: closed, open after N failures in a row, one probe when half-open."""

from __future__ import annotations

import pytest

from app.breaker import CircuitBreaker, CircuitOpen


@pytest.fixture
def now() -> list[float]:
    return [500.0]


@pytest.fixture
def breaker(now: list[float]) -> CircuitBreaker:
    return CircuitBreaker("renderer", failures=3, reset_s=10, clock=lambda: now[0])


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        breaker.failed(breaker.admit(), "connection refused")


def test_it_opens_after_the_configured_failures_in_a_row(breaker: CircuitBreaker, now: list[float]) -> None:
    fail(breaker, 2)
    assert breaker.state == "closed"
    fail(breaker, 1)
    assert breaker.state == "open"
    now[0] += 4
    with pytest.raises(CircuitOpen) as refused:
        breaker.admit()
    error = refused.value
    assert (error.status_code, error.extra["service"]) == (503, "renderer")
    assert error.retry_after_s == pytest.approx(6)
    assert error.headers == {"Retry-After": "6"}
    assert "renderer unavailable" in error.detail
    assert "connection refused" in error.detail


def test_a_success_in_between_starts_the_count_again(breaker: CircuitBreaker) -> None:
    fail(breaker, 2)
    breaker.succeeded(breaker.admit())
    fail(breaker, 2)
    assert breaker.state == "closed"
    fail(breaker, 1)
    assert breaker.state == "open"


def test_after_the_cool_down_one_probe_goes_through_and_its_success_closes(
    breaker: CircuitBreaker, now: list[float]
) -> None:
    fail(breaker, 3)
    now[0] += 10
    probe = breaker.admit()
    assert probe is True
    assert breaker.state == "half-open"
    # Only the probe goes; everyone else still gets 503 while it is under way.
    with pytest.raises(CircuitOpen):
        breaker.admit()
    breaker.succeeded(probe)
    assert breaker.state == "closed"
    assert breaker.admit() is False


def test_a_failed_probe_opens_it_for_another_cool_down(breaker: CircuitBreaker, now: list[float]) -> None:
    fail(breaker, 3)
    now[0] += 10
    breaker.failed(breaker.admit(), "connect timeout")
    assert breaker.state == "open"
    now[0] += 9.5
    with pytest.raises(CircuitOpen) as refused:
        breaker.admit()
    assert refused.value.retry_after_s == pytest.approx(0.5)
    assert "connect timeout" in refused.value.detail
    now[0] += 0.5
    assert breaker.admit() is True


def test_answers_of_calls_admitted_before_it_opened_do_not_decide_the_probe(
    breaker: CircuitBreaker, now: list[float]
) -> None:
    early = breaker.admit()
    fail(breaker, 3)
    now[0] += 10
    probe = breaker.admit()
    breaker.failed(early, "connection reset")  # a call from before: not the probe
    assert breaker.state == "half-open"
    breaker.succeeded(probe)
    assert breaker.state == "closed"


def test_an_abandoned_probe_lets_the_next_call_probe(breaker: CircuitBreaker, now: list[float]) -> None:
    fail(breaker, 3)
    now[0] += 10
    breaker.abandoned(breaker.admit())  # e.g. its client went away: no verdict on the service
    assert breaker.admit() is True


def test_a_probe_slower_than_the_cool_down_lets_another_probe_go(
    breaker: CircuitBreaker, now: list[float]
) -> None:
    fail(breaker, 3)
    now[0] += 10
    assert breaker.admit() is True
    now[0] += 9
    with pytest.raises(CircuitOpen) as refused:
        breaker.admit()
    assert refused.value.retry_after_s == pytest.approx(1)
    now[0] += 1
    assert breaker.admit() is True


def test_zero_failures_never_opens(now: list[float]) -> None:
    breaker = CircuitBreaker("renderer", failures=0, reset_s=10, clock=lambda: now[0])
    fail(breaker, 1000)
    assert breaker.state == "closed"


def test_its_description_says_what_callers_get(breaker: CircuitBreaker, now: list[float]) -> None:
    assert breaker.describe() is None
    fail(breaker, 3)
    now[0] += 2.5
    assert breaker.describe() == (
        "circuit open after 3 failed attempts in a row (connection refused): 503 for 7.5s more"
    )
    now[0] += 7.5
    breaker.admit()
    assert breaker.describe() == "circuit half-open: one probe request is under way"

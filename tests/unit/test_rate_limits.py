"""Per-tenant token buckets: the burst, the refill rate, the retry hint, tenants apart, and off at 0."""

from __future__ import annotations

import pytest

from app.auth import TenantRateLimits
from app.errors import TooManyRequests


def test_a_tenant_gets_its_burst_then_waits_for_the_rate(clock: list[float]) -> None:
    limits = TenantRateLimits(per_s=2, burst=3)
    for _ in range(3):
        limits.take("t-1")
    with pytest.raises(TooManyRequests) as refused:
        limits.take("t-1")
    assert refused.value.retry_after_s == pytest.approx(0.5)
    assert refused.value.headers == {"Retry-After": "1"}
    clock[0] += 0.5
    limits.take("t-1")
    with pytest.raises(TooManyRequests):
        limits.take("t-1")


def test_the_bucket_refills_no_higher_than_the_burst(clock: list[float]) -> None:
    limits = TenantRateLimits(per_s=10, burst=2)
    limits.take("t-1")
    clock[0] += 3600
    limits.take("t-1")
    limits.take("t-1")
    with pytest.raises(TooManyRequests):
        limits.take("t-1")


def test_tenants_have_their_own_buckets(clock: list[float]) -> None:
    limits = TenantRateLimits(per_s=1)
    limits.take("t-1")
    with pytest.raises(TooManyRequests):
        limits.take("t-1")
    limits.take("t-2")


def test_the_burst_defaults_to_one_second_of_requests(clock: list[float]) -> None:
    limits = TenantRateLimits(per_s=4)
    for _ in range(4):
        limits.take("t-1")
    with pytest.raises(TooManyRequests):
        limits.take("t-1")


def test_a_rate_of_zero_never_refuses() -> None:
    limits = TenantRateLimits(per_s=0)
    for _ in range(10_000):
        limits.take("t-1")


def test_at_most_max_tenants_buckets_are_kept(clock: list[float]) -> None:
    limits = TenantRateLimits(per_s=1, max_tenants=2)
    for tenant in ("t-1", "t-2", "t-3"):
        limits.take(tenant)
    # t-1's empty bucket was dropped as the least recently used, so it starts full again.
    limits.take("t-1")
    with pytest.raises(TooManyRequests):
        limits.take("t-3")

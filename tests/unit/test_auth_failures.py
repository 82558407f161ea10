"""Failed authentications: who the client is (X-Forwarded-For only from trusted proxies), the budget of
failures per client address, and the short memory of unknown keys."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from starlette.requests import Request

from app.auth import ClientAddresses, FailedAuthLimits, UnknownKeys
from app.errors import TooManyRequests
from app.settings import ApiSettings


def request_from(peer: str, *forwarded: str) -> Request:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    return Request({"type": "http", "client": (peer, 40000), "headers": headers})


def test_without_trusted_proxies_the_peer_is_the_client_whatever_it_forwards() -> None:
    addresses = ClientAddresses([])
    assert addresses.of(request_from("198.51.100.4", "203.0.113.1")) == "198.51.100.4"


def test_behind_a_trusted_proxy_the_client_is_the_right_most_untrusted_forwarded_address() -> None:
    addresses = ClientAddresses(["10.0.0.2"])
    # The client may send any X-Forwarded-For of its own; the proxy appends the address it saw.
    assert addresses.of(request_from("10.0.0.2", "1.1.1.1, 203.0.113.9")) == "203.0.113.9"
    assert addresses.of(request_from("10.0.0.2", "1.1.1.1", "203.0.113.9")) == "203.0.113.9"


def test_a_chain_of_trusted_proxies_is_skipped_networks_included() -> None:
    addresses = ClientAddresses(["10.0.0.0/8", "2001:db8::/32"])
    forwarded = "192.0.2.77, 203.0.113.5, 10.1.2.3, 2001:db8::1"
    assert addresses.of(request_from("10.0.0.2", forwarded)) == "203.0.113.5"


def test_an_untrusted_peer_cannot_choose_its_address_by_forwarding_one() -> None:
    addresses = ClientAddresses(["10.0.0.2"])
    assert addresses.of(request_from("198.51.100.4", "10.0.0.2, 203.0.113.1")) == "198.51.100.4"


def test_a_trusted_peer_without_forwarded_addresses_is_the_client() -> None:
    addresses = ClientAddresses(["10.0.0.2"])
    assert addresses.of(request_from("10.0.0.2")) == "10.0.0.2"
    assert addresses.of(request_from("10.0.0.2", " , ")) == "10.0.0.2"


def test_when_every_forwarded_address_is_trusted_the_left_most_is_the_client() -> None:
    addresses = ClientAddresses(["10.0.0.0/8"])
    assert addresses.of(request_from("10.0.0.2", "10.9.9.9, 10.1.1.1")) == "10.9.9.9"


def test_a_forwarded_entry_that_is_no_address_is_never_trusted() -> None:
    addresses = ClientAddresses(["10.0.0.0/8"])
    assert addresses.of(request_from("10.0.0.2", "203.0.113.1, unknown")) == "unknown"


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    assert ApiSettings(trusted_proxies=["10.0.0.1", "172.16.0.0/12", "::1"]).trusted_proxies
    with pytest.raises(ValidationError, match=r"gateway\.local"):
        ApiSettings(trusted_proxies=["gateway.local"])


def test_an_address_gets_its_burst_of_failures_then_429_until_the_rate_refills(clock: list[float]) -> None:
    limits = FailedAuthLimits(per_s=2, burst=3)
    for _ in range(3):
        limits.check("203.0.113.1")
        limits.failed("203.0.113.1")
    with pytest.raises(TooManyRequests) as refused:
        limits.check("203.0.113.1")
    assert refused.value.retry_after_s == pytest.approx(0.5)
    assert refused.value.headers == {"Retry-After": "1"}
    assert "failed authentications" in refused.value.detail
    clock[0] += 0.5
    limits.check("203.0.113.1")


def test_checking_spends_nothing_only_failures_do(clock: list[float]) -> None:
    limits = FailedAuthLimits(per_s=1, burst=1)
    for _ in range(100):
        limits.check("203.0.113.1")
    limits.failed("203.0.113.1")
    with pytest.raises(TooManyRequests):
        limits.check("203.0.113.1")


def test_each_address_has_its_own_budget(clock: list[float]) -> None:
    limits = FailedAuthLimits(per_s=1)
    limits.failed("203.0.113.1")
    with pytest.raises(TooManyRequests):
        limits.check("203.0.113.1")
    limits.check("203.0.113.2")


def test_a_failure_rate_of_zero_never_refuses() -> None:
    limits = FailedAuthLimits(per_s=0)
    for _ in range(1000):
        limits.failed("203.0.113.1")
    limits.check("203.0.113.1")


def test_at_most_max_clients_budgets_are_kept(clock: list[float]) -> None:
    limits = FailedAuthLimits(per_s=1, max_clients=2)
    for address in ("203.0.113.1", "203.0.113.2", "203.0.113.3"):
        limits.failed(address)
    limits.check("203.0.113.1")  # dropped as the least recently failed: a full budget again
    with pytest.raises(TooManyRequests):
        limits.check("203.0.113.3")


def test_an_unknown_key_is_remembered_for_its_ttl(clock: list[float]) -> None:
    unknown = UnknownKeys(ttl_s=5)
    unknown.add("h1")
    clock[0] += 4.9
    assert "h1" in unknown
    assert "h2" not in unknown
    clock[0] += 0.1
    assert "h1" not in unknown


def test_unknown_keys_are_bounded_and_a_ttl_of_zero_remembers_none(clock: list[float]) -> None:
    unknown = UnknownKeys(ttl_s=5, max_keys=2)
    for key_hash in ("h1", "h2", "h3"):
        unknown.add(key_hash)
    assert ["h1" in unknown, "h2" in unknown, "h3" in unknown] == [False, True, True]
    off = UnknownKeys(ttl_s=0)
    off.add("h1")
    assert "h1" not in off

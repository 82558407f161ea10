"""The in-process cache of API keys Neo4j confirmed: expiry, bound, and switched off by a ttl of 0."""

from __future__ import annotations

from app.auth import VerifiedKeys
from graph.tenants import KeyHolder, Tenant

ACME = KeyHolder(Tenant(id="t-1", name="acme"), "write")
OTHER = KeyHolder(Tenant(id="t-2", name="other"), "read")


def test_a_verified_key_is_trusted_until_its_ttl_runs_out(clock: list[float]) -> None:
    keys = VerifiedKeys(ttl_s=60)
    keys.put("h1", ACME)
    clock[0] += 59.9
    assert keys.get("h1") == ACME
    clock[0] += 0.1
    assert keys.get("h1") is None
    assert keys.get("h1") is None


def test_unknown_hashes_are_not_found() -> None:
    keys = VerifiedKeys(ttl_s=60)
    keys.put("h1", ACME)
    assert keys.get("h2") is None


def test_a_ttl_of_zero_keeps_nothing() -> None:
    keys = VerifiedKeys(ttl_s=0)
    keys.put("h1", ACME)
    assert keys.get("h1") is None


def test_the_least_recently_used_key_goes_first_when_full(clock: list[float]) -> None:
    keys = VerifiedKeys(ttl_s=60, max_keys=2)
    keys.put("h1", ACME)
    keys.put("h2", OTHER)
    assert keys.get("h1") == ACME  # h1 is now the most recently used
    keys.put("h3", OTHER)
    assert keys.get("h2") is None
    assert keys.get("h1") == ACME
    assert keys.get("h3") == OTHER

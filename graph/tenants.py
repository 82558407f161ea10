"""Tenants and their API keys; a key is stored only as its SHA-256."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

from neo4j.exceptions import ConstraintError

from graph import queries
from graph.database import Graph
from graph.errors import TenantExists, TenantNotFound

KEY_PREFIX = "pf_"


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    name: str


def hash_api_key(key: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough; there is nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


class TenantRepository:
    """Creates tenants, issues keys, finds a tenant by its name or by one of its keys."""

    def __init__(self, graph: Graph) -> None:
        self._graph = graph

    async def create(self, name: str) -> Tenant:
        """Create a tenant; TenantExists when the name is taken."""
        try:
            result = await self._graph.run(queries.CREATE_TENANT, id=str(uuid.uuid4()), name=name)
        except ConstraintError as exc:
            raise TenantExists(f"tenant {name!r} already exists") from exc
        record = result.records[0]
        return Tenant(id=record["id"], name=record["name"])

    async def issue_key(self, name: str) -> str:
        """Issue a new API key for the tenant and return it; only its hash is stored."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        result = await self._graph.run(
            queries.ADD_API_KEY, name=name, hash=hash_api_key(key), prefix=key[:10]
        )
        if not result.records:
            raise TenantNotFound(f"no tenant named {name!r}")
        return key

    async def named(self, name: str) -> Tenant:
        """The tenant with this name; TenantNotFound, with the way to make one, if there is none."""
        result = await self._graph.run(queries.TENANT_BY_NAME, name=name)
        if not result.records:
            raise TenantNotFound(
                f"no tenant named {name!r} (create it with `pageforge tenant create {name}`)"
            )
        record = result.records[0]
        return Tenant(id=record["id"], name=record["name"])

    async def for_key(self, key: str) -> Tenant | None:
        """The tenant the key belongs to, or None for an unknown key."""
        return await self.for_hash(hash_api_key(key))

    async def for_hash(self, key_hash: str) -> Tenant | None:
        """The tenant of the key with this SHA-256 (see hash_api_key), or None."""
        result = await self._graph.run(queries.TENANT_FOR_KEY_HASH, hash=key_hash)
        if not result.records:
            return None
        record = result.records[0]
        return Tenant(id=record["id"], name=record["name"])

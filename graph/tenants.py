"""Tenants and their API keys; a key is stored only as its SHA-256."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, cast

from neo4j.exceptions import ConstraintError

from graph import queries
from graph.database import Graph, from_epoch_millis
from graph.errors import ApiKeyNotFound, TenantExists, TenantNotFound

KEY_PREFIX = "pf_"
STREAM_TOKEN_PREFIX = "pfs_"
# Characters of a key kept in clear, to tell a tenant's keys apart when listing or revoking them.
SHOWN_PREFIX = 10


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    name: str


# What a key may do: "read" every GET (and searches, renders), or "write" too (ingest versions, releases).
KeyScope = Literal["read", "write"]


@dataclass(frozen=True, slots=True)
class KeyHolder:
    """The tenant an API key belongs to, the key's kind (`scope`), the scopes it was issued with (None: those
    of its kind) and when it expires (None: never)."""

    tenant: Tenant
    scope: KeyScope
    scopes: tuple[str, ...] | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """What is kept of an API key besides its hash: its first characters, kind, scopes, label, when it was
    issued and when it expires."""

    prefix: str
    scope: KeyScope
    created_at: datetime
    scopes: tuple[str, ...] | None = None
    label: str | None = None
    expires_at: datetime | None = None


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

    async def issue_key(
        self,
        name: str,
        scope: KeyScope = "write",
        *,
        scopes: tuple[str, ...] | None = None,
        expires_at: datetime | None = None,
        label: str | None = None,
    ) -> str:
        """Issue a new API key for the tenant and return it; only its hash is stored. `scopes` names what
        it grants when not simply what its kind (`scope`) grants."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        result = await self._graph.run(
            queries.ADD_API_KEY,
            name=name,
            hash=hash_api_key(key),
            prefix=key[:SHOWN_PREFIX],
            scope=scope,
            scopes=list(scopes) if scopes is not None else None,
            label=label,
            expires_ms=int(expires_at.timestamp() * 1000) if expires_at is not None else None,
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

    async def keys(self, name: str) -> list[ApiKeyInfo]:
        """The tenant's API keys, oldest first; TenantNotFound if there is no such tenant."""
        result = await self._graph.run(queries.TENANT_KEYS, name=name)
        if not result.records:
            raise TenantNotFound(f"no tenant named {name!r}")
        return [
            ApiKeyInfo(
                prefix=key["prefix"],
                scope=cast(KeyScope, key["scope"]),
                created_at=datetime.fromtimestamp(key["created_ms"] / 1000, tz=UTC),
                scopes=tuple(key["scopes"]) if key["scopes"] is not None else None,
                label=key["label"],
                expires_at=from_epoch_millis(key["expires_ms"]),
            )
            for key in result.records[0]["keys"]
            if key["prefix"] is not None
        ]

    async def revoke_key(self, name: str, key_or_prefix: str) -> None:
        """Delete the tenant's key, given whole or by its shown prefix; ApiKeyNotFound unless one matches.

        Servers that verified the key recently keep accepting it until their key cache expires
        (`api.key_cache_s`).
        """
        result = await self._graph.run(
            queries.REVOKE_API_KEY,
            name=name,
            prefix=key_or_prefix[:SHOWN_PREFIX] if len(key_or_prefix) == SHOWN_PREFIX else None,
            hash=hash_api_key(key_or_prefix),
        )
        if not result.records:
            raise TenantNotFound(f"no tenant named {name!r}")
        matched = result.records[0]["matched"]
        if matched == 0:
            raise ApiKeyNotFound(
                f"tenant {name!r} has no key {key_or_prefix!r} (see `pageforge tenant keys {name}`)"
            )
        if matched > 1:
            raise ApiKeyNotFound(
                f"{matched} keys of tenant {name!r} start with {key_or_prefix!r}: give the whole key"
            )

    async def for_key(self, key: str) -> KeyHolder | None:
        """The tenant the key belongs to and the key's scope, or None for an unknown key."""
        return await self.for_hash(hash_api_key(key))

    async def for_hash(self, key_hash: str) -> KeyHolder | None:
        """The tenant and scope of the key with this SHA-256 (see hash_api_key), or None."""
        result = await self._graph.run(queries.TENANT_FOR_KEY_HASH, hash=key_hash)
        if not result.records:
            return None
        record = result.records[0]
        return KeyHolder(
            tenant=Tenant(id=record["id"], name=record["name"]),
            scope=record["scope"],
            scopes=tuple(record["scopes"]) if record["scopes"] is not None else None,
            expires_at=from_epoch_millis(record["expires_ms"]),
        )

    async def issue_stream_token(self, tenant: Tenant, scopes: tuple[str, ...], expires_at: datetime) -> str:
        """A token that opens the tenant's event stream until `expires_at` (only its hash is stored); the
        tenant's expired ones are deleted."""
        token = STREAM_TOKEN_PREFIX + secrets.token_urlsafe(32)
        result = await self._graph.run(
            queries.ADD_STREAM_TOKEN,
            tenant=tenant.id,
            hash=hash_api_key(token),
            scopes=list(scopes),
            expires_ms=int(expires_at.timestamp() * 1000),
        )
        if not result.records:
            raise TenantNotFound(f"no tenant {tenant.name!r}")
        return token

    async def for_stream_hash(self, token_hash: str) -> KeyHolder | None:
        """The tenant, scopes and expiry of the stream token with this SHA-256 (see hash_api_key), or None
        for one never issued."""
        result = await self._graph.fetch(queries.TENANT_FOR_STREAM_TOKEN, hash=token_hash)
        if not result.records:
            return None
        record = result.records[0]
        return KeyHolder(
            tenant=Tenant(id=record["id"], name=record["name"]),
            scope="read",
            scopes=tuple(record["scopes"]),
            expires_at=from_epoch_millis(record["expires_ms"]),
        )

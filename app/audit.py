"""Security events, one JSON log line each on their own logger (`pageforge.audit`), so they can be routed
apart from the rest: authentication failed, forbidden, rate limited, tenants and keys made or revoked.
A line names a credential by what identifies it without granting anything (an API key's first characters,
a token's issuer and key id), never by the secret or the whole token."""

from __future__ import annotations

import getpass
import logging
from typing import Any

import jwt

from graph.tenants import SHOWN_PREFIX, STREAM_TOKEN_PREFIX

audit_logger = logging.getLogger("pageforge.audit")


def security_event(event: str, **fields: Any) -> None:
    """Log one security event (`event` is its type, e.g. `auth.failed`) with its fields."""
    audit_logger.info(event, extra={"fields": {"event": event, **fields}})


def credential_fields(credential: str) -> dict[str, Any]:
    """What identifies the credential in an event: a token's issuer, key id and subject as it claims them
    (unverified: it may be why authentication failed), or an API key's first characters."""
    if credential.count(".") == 2:
        try:
            header = jwt.get_unverified_header(credential)
            claims = jwt.decode(credential, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            return {"credential": "token", "token": "malformed"}
        return {
            "credential": "token",
            "token_iss": str(claims.get("iss"))[:200],
            "token_kid": str(header.get("kid"))[:200],
            "token_sub": str(claims.get("sub"))[:200],
        }
    if not credential:
        return {}
    kind = "stream_token" if credential.startswith(STREAM_TOKEN_PREFIX) else "api_key"
    return {"credential": kind, "key_prefix": credential[:SHOWN_PREFIX]}


def operator() -> str:
    """Who runs a CLI command that changes tenants or keys (the operating-system user)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"

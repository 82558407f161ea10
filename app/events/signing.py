"""Standard Webhooks signatures: HMAC-SHA256 over `{id}.{timestamp}.{body}` with the endpoint's secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A secret in the Standard Webhooks form: whsec_ and 24 random bytes, base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def signature(secrets_: list[str], message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value: a version-1 signature with each secret, space-separated (while
    a rotated secret is still valid, receivers holding either one verify)."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1,"
        + base64.b64encode(
            hmac.new(base64.b64decode(secret.removeprefix(SECRET_PREFIX)), signed, hashlib.sha256).digest()
        ).decode()
        for secret in secrets_
    )

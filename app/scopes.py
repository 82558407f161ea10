"""What a caller may do: the scopes an endpoint needs, and those an API key or a token grants."""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    FORMS_READ = "forms:read"
    FORMS_WRITE = "forms:write"
    RELEASES_WRITE = "releases:write"
    RENDERS_READ = "renders:read"
    ADMIN = "admin"


# What the two kinds of API key grant (`pageforge tenant key NAME [--read-only]`).
KEY_SCOPES: dict[str, frozenset[Scope]] = {
    "read": frozenset({Scope.FORMS_READ, Scope.RENDERS_READ}),
    "write": frozenset({Scope.FORMS_READ, Scope.FORMS_WRITE, Scope.RELEASES_WRITE, Scope.RENDERS_READ}),
}


def granted_scopes(claims: dict[str, object]) -> frozenset[Scope]:
    """The PageForge scopes a token's `scope` (space-separated, RFC 8693/9068) or `scp` (a list, or a string)
    claim grants; any other scope it carries (openid, profile...) grants nothing here."""
    names: list[str] = []
    for claim in ("scope", "scp"):
        value = claims.get(claim)
        if isinstance(value, str):
            names += value.split()
        elif isinstance(value, list):
            names += [item for item in value if isinstance(item, str)]
    known = {scope.value for scope in Scope}
    return frozenset(Scope(name) for name in names if name in known)

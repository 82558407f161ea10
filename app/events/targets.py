"""Where a webhook may be delivered: the URL's host resolved once, and the address checked is the address
connected to. Loopback, private, link-local, metadata and other special addresses are refused unless the
operator allows private targets."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio.to_thread

from app.errors import Invalid


class TargetRefused(Invalid):
    """The URL is not one PageForge delivers to."""


@dataclass(frozen=True)
class Target:
    """A checked URL: what to connect to (`address`), and what to present (`host`, the URL)."""

    url: str
    scheme: str
    host: str
    port: int
    address: str

    @property
    def connect_url(self) -> str:
        """The URL with the checked address in place of the host name (the Host header names the host)."""
        parts = urlsplit(self.url)
        netloc = f"[{self.address}]" if ":" in self.address else self.address
        query = f"?{parts.query}" if parts.query else ""
        return f"{parts.scheme}://{netloc}:{self.port}{parts.path or '/'}{query}"

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


def parse_target(url: str) -> tuple[str, str, int]:
    """Scheme, host and port of a webhook URL; TargetRefused naming what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise TargetRefused(f"webhook URL {url!r}: only http:// and https:// are delivered to")
    if not parts.hostname:
        raise TargetRefused(f"webhook URL {url!r} has no host")
    if parts.username or parts.password:
        raise TargetRefused(f"webhook URL {url!r}: credentials do not belong in the URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TargetRefused(f"webhook URL {url!r} has an invalid port") from None
    return parts.scheme, parts.hostname, port


def _refused_reason(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local (cloud metadata lives there)"
    if address.is_private:
        return "private"
    if address.is_multicast or address.is_reserved or address.is_unspecified:
        return "not a unicast internet"
    return None


async def resolve_target(url: str, *, allow_private: bool) -> Target:
    """The URL resolved once (in a worker thread) to an address it may be delivered to."""
    scheme, host, port = parse_target(url)
    try:
        infos = await anyio.to_thread.run_sync(
            lambda: socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        )
    except OSError as exc:
        raise TargetRefused(f"webhook host {host!r} does not resolve ({exc.strerror or exc})") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not allow_private:
        for address in addresses:
            reason = _refused_reason(address)
            if reason is not None:
                raise TargetRefused(
                    f"webhook host {host!r} resolves to a {reason} address ({address}): refused unless "
                    "PAGEFORGE_WEBHOOKS__ALLOW_PRIVATE_TARGETS is set"
                )
    return Target(url=url, scheme=scheme, host=host, port=port, address=str(addresses[0]))

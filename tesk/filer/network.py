"""Which hosts a task may make TESK fetch from or upload to.

TESK transfers inputs and outputs from where it runs, with that machine's network position. Cloud
metadata services live at link-local addresses and hand out the machine's credentials to whoever
asks, so URLs pointing there are refused (configurable: `filer.blocked_networks`). The check sees
the URL only; a name that resolves into a blocked network is caught where the filer connects
(check_resolved).
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address

# Names of metadata services that resolve to a link-local address inside a cloud.
METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
# URL schemes whose "host" is no network host (an S3 bucket, the local file system).
_NO_NETWORK_HOST = frozenset({"file", "s3"})
_NAT64 = IPv6Network("64:ff9b::/96")


def check_url_host(url: str, networks: Sequence[Network]) -> None:
    """Raise ValueError when the host of `url` is a blocked address or metadata service name."""
    if not networks:
        return
    parts = urlsplit(url)
    if parts.scheme.lower() in _NO_NETWORK_HOST:
        return
    try:
        host = parts.hostname
    except ValueError:
        raise ValueError(f"{url!r} has a malformed host") from None
    if not host:
        return
    host = host.rstrip(".").lower()
    if host in METADATA_HOSTS:
        raise ValueError(f"host {host!r} is a cloud metadata service, which tasks may not reach")
    address = literal_address(host)
    if address is not None:
        _check_address(address, networks, host)


def check_resolved(host: str, networks: Sequence[Network]) -> None:
    """Raise ValueError when `host` resolves to a blocked address (for the filer, at connect)."""
    if not networks:
        return
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return  # the transfer itself reports what is wrong with the name
    for info in infos:
        _check_address(ip_address(str(info[4][0]).split("%", 1)[0]), networks, host)


def literal_address(host: str) -> Address | None:
    """The IP address `host` spells, in any form a resolver accepts (`0xa9fea9fe`, `2852039166`)."""
    try:
        return ip_address(host.split("%", 1)[0] if ":" in host else host)
    except ValueError:
        pass
    if ":" in host:
        return None
    try:
        # The legacy forms inet_aton (and so every resolver) accepts: hex, octal, fewer parts.
        return IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _check_address(address: Address, networks: Sequence[Network], host: str) -> None:
    candidates: list[Address] = [address]
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)
        if address in _NAT64:
            candidates.append(IPv4Address(address.packed[-4:]))
    for candidate in candidates:
        for network in networks:
            if candidate.version == network.version and candidate in network:
                raise ValueError(
                    f"host {host!r} is in the blocked network {network} (link-local and cloud "
                    "metadata addresses are refused; see filer.blocked_networks)"
                )


class BlockedHostError(requests.ConnectionError):
    """A request (or a redirect) would have gone to a blocked network."""


class GuardedAdapter(HTTPAdapter):
    """A requests adapter that refuses blocked hosts on every request, redirects included.

    The HTTP transfer's sessions use it: the URL check at create cannot see where a name
    resolves or a server redirects.
    A name that resolves elsewhere between this check and the connection (DNS rebinding) is not
    caught; an egress firewall or NetworkPolicy is the complete answer (docs/security.md).
    """

    def __init__(self, networks: Sequence[Network], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._networks = list(networks)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        url = request.url or ""
        try:
            check_url_host(url, self._networks)
            host = urlsplit(url).hostname
            if host:
                check_resolved(host, self._networks)
        except ValueError as exc:
            raise BlockedHostError(str(exc), request=request) from None
        return super().send(request, *args, **kwargs)

"""Which address of this host others reach it at, when a server listens on all of them.

A server bound to a wildcard address (``0.0.0.0``, ``::``) is reached on this host at the
loopback address and from other hosts at one of this host's own addresses.  The kernel's
routing answers which one: connecting a UDP socket sends nothing, yet gives the source
address of the route toward a destination.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Final

WILDCARD_HOSTS: Final = frozenset({"0.0.0.0", "::"})
"""Listen hosts meaning "every address of this host"."""

_ROUTE_PROBES: Final = {socket.AF_INET: "192.0.2.1", socket.AF_INET6: "2001:db8::1"}
"""Documentation addresses (RFC 5737, RFC 3849): routed like any outside address, never
contacted."""


def is_wildcard(host: str) -> bool:
    """True for ``0.0.0.0`` and ``::`` (brackets allowed)."""
    return host.strip("[]") in WILDCARD_HOSTS


def loopback_for(host: str) -> str:
    """The loopback address of the family of ``host`` (``::1`` for IPv6, else 127.0.0.1)."""
    return "::1" if ":" in host else "127.0.0.1"


def route_source(host: str, port: int = 9) -> str | None:
    """The local address the route toward ``host`` leaves from; None without a route."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((host.strip("[]"), port))
        except OSError:
            return None
        return str(probe.getsockname()[0])


def primary_address(ipv6: bool = False) -> str | None:
    """This host's main address (the source of its default route), None if it has none.

    A loopback or unspecified answer counts as none.
    """
    family = socket.AF_INET6 if ipv6 else socket.AF_INET
    found = route_source(_ROUTE_PROBES[family])
    if found is None:
        return None
    address = ipaddress.ip_address(found.split("%", 1)[0])
    return None if address.is_loopback or address.is_unspecified else str(address)

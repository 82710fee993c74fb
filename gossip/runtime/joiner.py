"""Finding the cluster: the address this agent advertises to it.

Rules: the bind address is advertised as it is, unless it is a wildcard; then
the host's outgoing address stands in (IPv4 for 0.0.0.0; for :: the IPv4 one
when the host has an IPv4 route, else the IPv6 one). Seed names become
addresses in seeds.py, again on every attempt; when to try again is the
core's join-retry policy (core/membership/joinretry.py): the node asks with
ResolveSeeds, and the agent answers with the resolved addresses.
"""

from __future__ import annotations

import socket

from gossip.core.types import Address


def advertise_address(bind: Address) -> Address:
    """The bind address, or for a wildcard this host's outgoing address: IPv4 for
    0.0.0.0; for :: the IPv4 one when the host has an IPv4 route, else the IPv6 one."""
    host, port = bind
    if host in ("0.0.0.0", ""):
        return _outgoing(socket.AF_INET) or "127.0.0.1", port
    if host == "::":
        return _outgoing(socket.AF_INET) or _outgoing(socket.AF_INET6) or "::1", port
    return host, port


def _outgoing(family: socket.AddressFamily) -> str | None:
    """The source address the kernel would pick for a remote destination, if any."""
    # Private / documentation addresses: connect() on UDP only picks a route, no
    # packet is sent.
    remote = ("10.255.255.255", 1) if family == socket.AF_INET else ("2001:db8::1", 1)
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(remote)
        except OSError:
            return None
        chosen = str(probe.getsockname()[0])
    return None if chosen in ("0.0.0.0", "::") else chosen

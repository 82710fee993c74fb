"""Finding the cluster: seed resolution and the advertised address.

Rules: seed names are resolved again on every attempt (DNS may change while we
wait); resolution failures are logged and retried, never fatal. When to try
again is the core's join-retry policy (core/membership/joinretry.py): the
node asks with ResolveSeeds, and the agent answers with these addresses.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

import structlog
import trio

from gossip.core.types import Address
from gossip.runtime.settings import parse_hostport

RESOLVE_TIMEOUT = 5.0

log = structlog.get_logger("gossip.joiner")


async def resolve_seeds(seeds: Sequence[str]) -> list[Address]:
    """Resolve HOST:PORT strings to IPv4 addresses; unresolvable ones are skipped."""
    found: list[Address] = []
    for seed in seeds:
        host, port = parse_hostport(seed)
        try:
            with trio.fail_after(RESOLVE_TIMEOUT):
                infos = await trio.socket.getaddrinfo(
                    host, port, family=socket.AF_INET, type=socket.SOCK_DGRAM
                )
        except (OSError, trio.TooSlowError) as exc:
            log.warning("seed_unresolved", seed=seed, error=str(exc))
            continue
        for info in infos[:1]:
            ip, p = info[4][:2]
            address = (str(ip), int(p))
            if address not in found:
                found.append(address)
    return found


def advertise_address(bind: Address) -> Address:
    """The bind address, or when bound to 0.0.0.0 this host's outgoing IPv4 address."""
    host, port = bind
    if host not in ("0.0.0.0", ""):
        return host, port
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        # connect() on UDP only picks a route; no packet is sent.
        probe.connect(("10.255.255.255", 1))
        chosen = str(probe.getsockname()[0])
    except OSError:
        chosen = "127.0.0.1"
    finally:
        probe.close()
    return chosen, port

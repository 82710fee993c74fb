"""Finding the cluster: the advertised address, join retries, rejoining when alone.

Rules: seed names are resolved again on every attempt (DNS may change while we
wait; seeds.py resolves them); failures are retried, never fatal. Attempts back
off exponentially with jitter from JOIN_BACKOFF_MIN to JOIN_BACKOFF_MAX until
the core reports Joined. Afterwards, whenever this node sees no other live
member for a jittered reconnect_interval, the seeds are resolved and joined
again, so a node cut off (or whose seeds moved in DNS) finds its way back.
The loop sees the agent only as `JoiningAgent`, the part of it the loop uses.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Sequence
from typing import Protocol

import structlog
import trio

from gossip.core.membership.config import Config
from gossip.core.types import Address, MemberInfo

JOIN_BACKOFF_MIN = 1.0
JOIN_BACKOFF_MAX = 30.0

log = structlog.get_logger("gossip.joiner")


class JoiningAgent(Protocol):
    """What the join loop needs of the agent."""

    @property
    def name(self) -> str: ...
    @property
    def config(self) -> Config: ...
    @property
    def leaving(self) -> bool: ...
    @property
    def joined(self) -> trio.Event: ...

    def members(self) -> list[MemberInfo]: ...
    async def join(self, seeds: Sequence[str]) -> int: ...


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


async def join_until_joined(
    agent: JoiningAgent, seeds: Sequence[str], rng: random.Random | None = None
) -> None:
    """Retry joining `seeds` with jittered exponential backoff until joined, then
    rejoin them whenever this node finds itself alone (jitter from `rng`)."""
    rng = rng or random.Random()
    await _first_join(agent, seeds, rng)
    while not agent.leaving:
        await trio.sleep(agent.config.reconnect_interval * (0.5 + rng.random()))
        others = [m for m in agent.members() if m.name != agent.name and m.is_alive_or_suspect]
        if not others and not agent.leaving:
            resolved = await agent.join(seeds)
            log.info("seeds_rejoined", seeds=list(seeds), resolved=resolved)


async def _first_join(agent: JoiningAgent, seeds: Sequence[str], rng: random.Random) -> None:
    backoff = JOIN_BACKOFF_MIN
    while not agent.joined.is_set():
        with trio.move_on_after(backoff * (0.5 + rng.random())):
            await agent.joined.wait()
        if agent.joined.is_set() or agent.leaving:
            return
        resolved = await agent.join(seeds)
        log.info("join_retry", seeds=list(seeds), resolved=resolved, backoff_s=backoff)
        backoff = min(backoff * 2, JOIN_BACKOFF_MAX)

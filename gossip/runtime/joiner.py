"""Finding the cluster: seed resolution, the advertised address, join retries.

Rules: seed names are resolved again on every attempt (DNS may change while we
wait); resolution failures are logged and retried, never fatal. Attempts back
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
from gossip.runtime.settings import parse_hostport

JOIN_BACKOFF_MIN = 1.0
JOIN_BACKOFF_MAX = 30.0
RESOLVE_TIMEOUT = 5.0

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

"""Finding the cluster: the address this agent advertises, the addresses it joins.

Rules: the bind address is advertised as it is, unless it is a wildcard; then
the host's outgoing address stands in (IPv4 for 0.0.0.0; for :: the IPv4 one
when the host has an IPv4 route, else the IPv6 one). Seed names become
addresses in seeds.py, again on every attempt, in the families the bound
socket reaches and without our own address; the addresses of the member
snapshot (snapshot.py) follow them, so a restarted agent finds its cluster
even when no seed answers. When to try again is the core's join-retry policy
(core/membership/joinretry.py): the node asks with ResolveSeeds, and the
Joiner answers with the resolved addresses (one resolution at a time). The
snapshot is saved every SAVE_INTERVAL_S and when the agent stops; a failed
save is logged, never raised.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from typing import Any

import trio

from gossip.core.types import Address, MemberInfo
from gossip.runtime.coretask import CoreTask
from gossip.runtime.network import families
from gossip.runtime.seeds import Resolver, resolve_seeds
from gossip.runtime.snapshot import SAVE_INTERVAL_S, MemberSnapshot


class Joiner:
    def __init__(
        self,
        name: str,
        seeds: Sequence[str],
        bind_host: str,
        *,
        resolver: Resolver,
        snapshot: MemberSnapshot,
        core: CoreTask,
        own: Callable[[], Address],
        members: Callable[[], list[MemberInfo]],
        joined: trio.Event,
        log: Any,
    ) -> None:
        self._name = name
        self._seeds = seeds
        self._bind_host = bind_host
        self._resolver = resolver
        self._snapshot = snapshot
        self._core = core
        self._own = own
        self._members = members
        self._joined = joined
        self._log = log
        self._resolving = False

    async def resolve(self, seeds: Sequence[str]) -> list[Address]:
        """The seeds' addresses in the families our socket reaches, ourselves left out."""
        own = self._own()
        reach = families(self._bind_host)
        return [a for a in await resolve_seeds(seeds, self._resolver, reach) if a != own]

    async def candidates(self) -> list[Address]:
        """The seeds' addresses, then those of the member snapshot (snapshot.py)."""
        seeds = await self.resolve(self._seeds)
        known, problem = self._snapshot.addresses()
        if problem:
            self._log.warning("member_snapshot_skipped", reason=problem)
        own = self._own()
        return seeds + [a for a in dict.fromkeys(known) if a not in seeds and a != own]

    def seeds_wanted(self, nursery: trio.Nursery) -> None:
        """ResolveSeeds: resolve the seed names again (unless that is under way)."""
        if not self._resolving:
            self._resolving = True
            nursery.start_soon(self._resolve_again)

    async def _resolve_again(self) -> None:
        """The seed names resolved now, handed back to the core, which joins them
        (the retry policy is the core's: joinretry.py)."""
        try:
            addresses = await self.candidates()
        finally:
            self._resolving = False
        event = "seeds_rejoined" if self._joined.is_set() else "join_retry"
        self._log.info(event, seeds=list(self._seeds), resolved=len(addresses))
        await self._core.call(lambda node, now: node.set_seeds(now, addresses))

    async def snapshot_loop(self) -> None:
        while True:
            await trio.sleep(SAVE_INTERVAL_S)
            self.save_snapshot()

    def save_snapshot(self) -> None:
        try:
            self._snapshot.save(self._members(), self._name)
        except OSError as exc:
            self._log.warning("member_snapshot_failed", error=str(exc))


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

"""An in-memory network for agents in one trio process: tests under MockClock.

Rules: each agent gets its own `HostNetwork` (one IP) from a shared
`MemoryNetwork`, which implements the Network protocol without sockets:
datagrams are delivered at once into a bounded queue (a full queue drops,
like a kernel buffer), streams are trio memory stream pairs. Faults come from
the shared object: a loss rate (seeded rng), hosts taken down (crash: nothing in
or out, connects refused) and partitions between groups of IPs. Nothing here
reads a clock, so it runs as fast as trio's MockClock lets it.
"""

from __future__ import annotations

import errno
import itertools
import random
from collections.abc import Iterable

import trio
import trio.testing

from gossip.core.types import Address
from gossip.runtime.network import DatagramEndpoint, StreamServer

QUEUE = 1024
_Incoming = tuple[trio.abc.Stream, Address]


class MemoryNetwork:
    def __init__(self, rng: random.Random, loss: float = 0.0) -> None:
        self.rng = rng
        self.loss = loss
        self.down: set[str] = set()
        self._groups: list[set[str]] = []
        self._endpoints: dict[Address, _Endpoint] = {}
        self._listeners: dict[Address, trio.MemorySendChannel[_Incoming]] = {}
        self._ports = itertools.count(40000)
        self.delivered = 0
        self.dropped = 0

    def host(self, ip: str) -> HostNetwork:
        return HostNetwork(self, ip)

    def partition(self, *groups: Iterable[str]) -> None:
        """Cut every path between different groups (IPs not named stay connected)."""
        self._groups = [set(g) for g in groups]

    def heal(self) -> None:
        self._groups = []

    def reachable(self, a: str, b: str) -> bool:
        if a in self.down or b in self.down:
            return False
        ga = next((i for i, g in enumerate(self._groups) if a in g), None)
        gb = next((i for i, g in enumerate(self._groups) if b in g), None)
        return ga is None or gb is None or ga == gb

    def _deliver(self, src: Address, to: Address, data: bytes) -> None:
        endpoint = self._endpoints.get(to)
        lost = self.loss > 0 and self.rng.random() < self.loss
        if endpoint is None or lost or not self.reachable(src[0], to[0]):
            self.dropped += 1
            return
        try:
            endpoint.queue.send_nowait((data, src))
            self.delivered += 1
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            self.dropped += 1

    def _port(self, bind: Address) -> Address:
        return bind if bind[1] else (bind[0], next(self._ports))


class _Endpoint:
    def __init__(self, net: MemoryNetwork, address: Address) -> None:
        self._net = net
        self._address = address
        self.queue, self._recv = trio.open_memory_channel[tuple[bytes, Address]](QUEUE)

    @property
    def local_address(self) -> Address:
        return self._address

    async def send(self, to: Address, data: bytes) -> bool:
        await trio.lowlevel.checkpoint()
        self._net._deliver(self._address, to, bytes(data))
        return True  # a lost datagram is not a failed send

    async def receive(self) -> tuple[bytes, Address]:
        return await self._recv.receive()

    def close(self) -> None:
        if self._net._endpoints.get(self._address) is self:
            del self._net._endpoints[self._address]
        self._recv.close()


class HostNetwork:
    """One host's view of a MemoryNetwork (the Network protocol for one Agent)."""

    def __init__(self, net: MemoryNetwork, ip: str) -> None:
        self.net = net
        self.ip = ip

    async def open_datagram(self, bind: Address) -> DatagramEndpoint:
        await trio.lowlevel.checkpoint()
        address = self.net._port((self.ip, bind[1]))
        if address in self.net._endpoints:
            raise OSError(errno.EADDRINUSE, f"{address} is in use")
        endpoint = _Endpoint(self.net, address)
        self.net._endpoints[address] = endpoint
        return endpoint

    async def serve_streams(
        self,
        bind: Address,
        handler: StreamServer,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        address = (self.ip, bind[1])
        send, recv = trio.open_memory_channel[_Incoming](QUEUE)
        self.net._listeners[address] = send
        try:
            async with trio.open_nursery() as nursery:
                task_status.started()
                async for stream, peer in recv:
                    nursery.start_soon(handler, stream, peer)
        finally:
            if self.net._listeners.get(address) is send:
                del self.net._listeners[address]

    async def connect(self, to: Address) -> trio.abc.Stream:
        await trio.lowlevel.checkpoint()
        listener = self.net._listeners.get(to)
        if listener is None or not self.net.reachable(self.ip, to[0]):
            raise OSError(errno.ECONNREFUSED, f"connection to {to} refused")
        ours, theirs = trio.testing.memory_stream_pair()
        try:
            listener.send_nowait((theirs, (self.ip, next(self.net._ports))))
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            raise OSError(errno.ECONNREFUSED, f"connection to {to} refused") from None
        return ours

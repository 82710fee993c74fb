"""An in-memory network for agents in one trio process: tests under MockClock.

Rules: each agent gets its own `HostNetwork` (one IP) from a shared
`MemoryNetwork`, which implements the Network protocol without sockets:
datagrams go into a bounded queue per endpoint (a full queue drops, like a
kernel buffer), streams are in-memory pipes. Faults are the shared fault
model (gossip/faults.py) over IPs, `faults`, with every random draw from the
network's seeded rng: loss, duplication, latency with jitter, reordering,
hosts taken down (crash: nothing in or out, connects refused), partitions,
one-way cuts (a connect needs both directions, like TCP). A datagram's
reachability is judged when it is delivered, so one in flight when a cut
starts is lost. Pauses are the model's too (`faults.paused`); here every
datagram or stream operation of a paused host waits until it resumes (a gate
per paused host), so its core task blocks on its first send. Streams are
reliable and immediate while their path is up both ways; a write across a cut
(partition, one-way cut, host down) resets the stream instead: it fails, and
the other end reads the end of the stream (what TCP's retransmissions would
come to, sooner), so a kept connection carries nothing across a fault that
began after it opened. Delayed datagrams need `run` in a nursery; without it
they go at once. Time is trio's, so it runs as fast as MockClock lets it.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import random
from collections.abc import Iterable

import trio

from gossip.core.types import Address
from gossip.faults import FaultModel
from gossip.runtime.network import DatagramEndpoint, StreamServer

QUEUE = 1024
_Incoming = tuple[trio.abc.Stream, Address]


class MemoryNetwork:
    # Slots, so that setting a fault knob that is not there fails loudly.
    __slots__ = (
        "_courier",
        "_endpoints",
        "_gates",
        "_later",
        "_listeners",
        "_ports",
        "_seq",
        "delivered",
        "dropped",
        "faults",
        "rng",
    )

    def __init__(self, rng: random.Random, loss: float = 0.0) -> None:
        self.rng = rng
        self.faults = FaultModel[str](loss=loss, latency=0.0)
        self._gates: dict[str, trio.Event] = {}
        """The gate a paused host's operations wait at (one per host in faults.paused)."""
        self._endpoints: dict[Address, _Endpoint] = {}
        self._listeners: dict[Address, trio.MemorySendChannel[_Incoming]] = {}
        self._ports = itertools.count(40000)
        self._later: list[tuple[float, int, Address, Address, bytes]] = []
        self._seq = itertools.count()
        self._courier: trio.Event | None = None
        self.delivered = 0
        self.dropped = 0

    def host(self, ip: str) -> HostNetwork:
        return HostNetwork(self, ip)

    # ---- faults (the model's, by IP) -------------------------------------------

    @property
    def down(self) -> set[str]:
        """IPs of hosts that are down."""
        return self.faults.down

    def partition(self, *groups: Iterable[str]) -> None:
        """Cut every path between different groups (IPs not named stay connected)."""
        self.faults.partition(*groups)

    def cut(self, src: str, dst: str) -> None:
        """Drop everything from `src` to `dst` (one way)."""
        self.faults.cut(src, dst)

    def heal(self) -> None:
        self.faults.heal()

    def pause(self, ip: str) -> None:
        self.faults.pause(ip)
        self._gates.setdefault(ip, trio.Event())

    def resume(self, ip: str) -> None:
        self.faults.resume(ip)
        gate = self._gates.pop(ip, None)
        if gate is not None:
            gate.set()

    def paused(self, ip: str) -> bool:
        return ip in self.faults.paused

    async def gate(self, ip: str) -> None:
        """Wait while `ip` is paused (a checkpoint either way)."""
        gate = self._gates.get(ip)
        if gate is None:
            await trio.lowlevel.checkpoint()
        else:
            await gate.wait()

    async def hold(self, ip: str) -> None:
        """Wait while `ip` is paused; no checkpoint otherwise (for callers that just had one)."""
        gate = self._gates.get(ip)
        if gate is not None:
            await gate.wait()

    def reachable(self, a: str, b: str) -> bool:
        return self.faults.reachable(a, b)

    # ---- delivery ------------------------------------------------------------

    def _send(self, src: Address, to: Address, data: bytes) -> None:
        delays = self.faults.datagram_delays(self.rng, src[0], to[0])
        if not delays:
            self.dropped += 1
            return
        for delay in delays:
            if delay <= 0 or self._courier is None:
                self._deliver(src, to, data)
            else:
                due = trio.current_time() + delay
                heapq.heappush(self._later, (due, next(self._seq), src, to, data))
                self._courier.set()

    def _deliver(self, src: Address, to: Address, data: bytes) -> None:
        endpoint = self._endpoints.get(to)
        if endpoint is None or not self.reachable(src[0], to[0]):
            self.dropped += 1
            return
        try:
            endpoint.queue.send_nowait((data, src))
            self.delivered += 1
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            self.dropped += 1

    async def run(self) -> None:
        """Deliver delayed datagrams when due (run in a nursery for latency and reordering)."""
        while True:
            self._courier = trio.Event()
            now = trio.current_time()
            while self._later and self._later[0][0] <= now:
                _, _, src, to, data = heapq.heappop(self._later)
                self._deliver(src, to, data)
            deadline = self._later[0][0] if self._later else float("inf")
            with trio.move_on_at(deadline):
                await self._courier.wait()

    def _port(self, bind: Address) -> Address:
        return bind if bind[1] else (bind[0], next(self._ports))


class _Endpoint:
    def __init__(self, net: MemoryNetwork, address: Address) -> None:
        self._net = net
        self._address = address
        self.queue, self._recv = trio.open_memory_channel[tuple[bytes, Address]](QUEUE)
        self._held: tuple[bytes, Address] | None = None

    @property
    def local_address(self) -> Address:
        return self._address

    async def send(self, to: Address, data: bytes) -> bool:
        await self._net.gate(self._address[0])
        self._net._send(self._address, to, bytes(data))
        return True  # a lost datagram is not a failed send

    async def receive(self) -> tuple[bytes, Address]:
        if self._held is None:
            self._held = await self._recv.receive()
        else:
            await trio.lowlevel.checkpoint()
        # Cancelled while paused: the datagram stays here for the next call.
        await self._net.hold(self._address[0])
        item, self._held = self._held, None
        return item

    def close(self) -> None:
        if self._net._endpoints.get(self._address) is self:
            del self._net._endpoints[self._address]
        self._recv.close()


class _Pipe:
    """One direction of a stream: bytes written and not yet read."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.closed = False
        self.waiting = trio.lowlevel.ParkingLot()


class _MemoryStream(trio.abc.Stream):
    """One end of an in-memory stream pair (lighter than trio.testing's, which a
    fault run opens tens of thousands of times); its operations wait while its
    host is paused."""

    def __init__(self, net: MemoryNetwork, ip: str, peer: str, out: _Pipe, into: _Pipe) -> None:
        self._net = net
        self._ip = ip
        self._peer = peer
        self._out = out
        self._in = into
        self._closed = False

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._net.gate(self._ip)
        if self._closed:
            raise trio.ClosedResourceError("this end is closed")
        if self._out.closed:
            raise trio.BrokenResourceError("the other end is closed")
        net, ip, peer = self._net, self._ip, self._peer
        if not (net.reachable(ip, peer) and net.reachable(peer, ip)):
            self._reset()
            raise trio.BrokenResourceError("the path to the other end is cut")
        self._out.data += data
        self._out.waiting.unpark_all()

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        if self._closed:
            raise trio.ClosedResourceError("this end is closed")
        if self._in.data or self._in.closed:
            await self._net.gate(self._ip)
        else:
            while not self._in.data and not self._in.closed:
                await self._in.waiting.park()
            await self._net.hold(self._ip)
        n = len(self._in.data) if max_bytes is None else max_bytes
        chunk = bytes(self._in.data[:n])
        del self._in.data[:n]
        return chunk

    async def aclose(self) -> None:
        # No checkpoint: closing never blocks, and the agent closes every stream with
        # aclose_forcefully, whose cancelled checkpoint would cost a scheduler pass each.
        self._closed = True
        self._reset()

    def _reset(self) -> None:
        for pipe in (self._out, self._in):
            pipe.closed = True
            pipe.waiting.unpark_all()


def _stream_pair(net: MemoryNetwork, a: str, b: str) -> tuple[_MemoryStream, _MemoryStream]:
    ab, ba = _Pipe(), _Pipe()
    return _MemoryStream(net, a, b, ab, ba), _MemoryStream(net, b, a, ba, ab)


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
        await self.net.gate(self.ip)
        listener = self.net._listeners.get(to)
        reachable = self.net.reachable(self.ip, to[0]) and self.net.reachable(to[0], self.ip)
        if listener is None or not reachable:
            raise OSError(errno.ECONNREFUSED, f"connection to {to} refused")
        ours, theirs = _stream_pair(self.net, self.ip, to[0])
        try:
            listener.send_nowait((theirs, (self.ip, next(self.net._ports))))
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            raise OSError(errno.ECONNREFUSED, f"connection to {to} refused") from None
        return ours

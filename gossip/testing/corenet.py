"""A tiny deterministic network for unit tests of the membership core.

Rules: faults are the shared fault model (gossip/faults.py) over node names,
`faults`, with its seeded draws; by default every datagram arrives after 1 ms
unless a host is down or its link cut, judged when it is sent. Streams are
answered in one round trip if both directions are open. Tests step time
explicitly; a down node neither receives nor fires timers."""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from gossip.core.membership import outputs as out
from gossip.core.membership.config import Config
from gossip.core.membership.node import Node
from gossip.core.types import Address, MemberState
from gossip.faults import FaultModel

OutputT = TypeVar("OutputT", bound=out.Output)


def addr(i: int) -> Address:
    return (f"10.0.0.{i}", 7946)


class Net:
    def __init__(self, n: int, cfg: Config | None = None, seed: int = 1) -> None:
        self.cfg = cfg or Config.for_profile("lan")
        self.nodes = [
            Node(f"n{i}", addr(i), self.cfg, rng=random.Random(seed * 1000 + i)) for i in range(n)
        ]
        self.by_addr = {node.address: node for node in self.nodes}
        self.now = 0.0
        self.faults = FaultModel[str](latency=0.001)
        self.rng = random.Random(seed)
        self.events: list[tuple[float, int, Callable[[], None]]] = []
        self.seq = 0
        self.log: list[tuple[str, out.Output]] = []  # (observer, output)
        self.loss = 0.0
        """Fraction of datagrams dropped, drawn from a seeded rng."""
        self._loss_rng = random.Random(seed)

    def start_all(self) -> None:
        seeds = [self.nodes[0].address]
        for node in self.nodes:
            node.start(self.now, seeds)
            self.drain(node)

    @property
    def down(self) -> set[str]:
        """Names of the nodes that are down."""
        return self.faults.down

    def reachable(self, a: Node, b: Node) -> bool:
        return self.faults.reachable(a.name, b.name)

    def at(self, t: float, fn: Callable[[], None]) -> None:
        self.seq += 1
        heapq.heappush(self.events, (t, self.seq, fn))

    def drain(self, node: Node) -> None:
        for o in node.take_outputs():
            self.log.append((node.name, o))
            if isinstance(o, out.Send):
                dst = self.by_addr.get(o.to)
                lost = self.loss and self._loss_rng.random() < self.loss
                if dst is not None and self.reachable(node, dst) and not lost:
                    src, payload = node.address, o.payload
                    for delay in self.faults.datagram_delays(self.rng, node.name, dst.name):
                        self.at(self.now + delay, partial(self._rx, dst, src, payload))
            elif isinstance(o, out.OpenStream):
                self._stream(node, o)
        deadline = node.next_deadline()
        if deadline is not None:
            self.at(deadline, partial(self._tick, node))

    def _rx(self, dst: Node, src: Address, payload: bytes) -> None:
        if dst.name in self.down:
            return
        dst.receive_datagram(self.now, src, payload)
        self.drain(dst)

    def _tick(self, node: Node) -> None:
        if node.name in self.down:
            return
        node.handle_timeout(self.now)
        self.drain(node)

    def _stream(self, node: Node, o: out.OpenStream) -> None:
        dst = self.by_addr.get(o.to)

        def finish() -> None:
            if node.name in self.down:
                return
            if dst is None or not self.reachable(node, dst) or not self.reachable(dst, node):
                node.stream_failed(self.now, o.stream_id, "unreachable")
            else:
                reply = dst.handle_stream_request(self.now, node.address, o.payload)
                self.drain(dst)
                if reply is None:
                    node.stream_failed(self.now, o.stream_id, "closed")
                else:
                    node.receive_stream_response(self.now, o.stream_id, reply)
            self.drain(node)

        self.at(self.now + 2 * self.faults.latency, finish)

    def run_until(self, t: float) -> None:
        while self.events and self.events[0][0] <= t:
            when, _, fn = heapq.heappop(self.events)
            self.now = max(self.now, when)
            fn()
        self.now = t

    def view(self, observer: Node) -> dict[str, MemberState]:
        return {m.name: m.state for m in observer.members()}

    def outputs_of(self, name: str, kind: type[OutputT]) -> list[OutputT]:
        return [o for who, o in self.log if who == name and isinstance(o, kind)]

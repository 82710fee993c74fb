"""A discrete-event simulator that drives many membership cores from one queue.

Rules:
- One heap of events ordered by (time, insertion order) and one seeded rng for
  the network; each node has its own rng derived from the seed. The same seed
  and scenario give the same run, event for event.
- Cores exchange their real wire bytes, so packet and byte counts are real.
- Hosts are up or down, and an up host may be paused (the fault model's
  `paused`: a GC stall, CPU starvation). A paused host keeps everything
  addressed to it in a backlog and runs it, then its due timers, when it
  resumes; only a running host (up, not paused) acts. A down host drops
  everything; a restart builds a fresh Node with the incarnation its
  predecessor last reported, and ends a pause.
- The network is the shared fault model (gossip/faults.py) over host
  indexes; a datagram's reachability is judged when it is sent. Streams are
  reliable but slow under loss; a stream to a down host is refused after one
  round trip, across a partition or a cut it times out.
- Notifications (every output but Send, OpenStream, IncarnationChanged and
  Metric) are handed to each of `listeners(host, output)`, and to listeners
  registered with listen() for their kinds only (a thousand-node run emits
  about a million MemberJoined, which most checks do not want); checks.py
  builds on that.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from typing import Any, TypeVar

from gossip.core.membership import outputs as out
from gossip.core.membership.config import Config
from gossip.core.membership.node import Node
from gossip.core.types import Address
from gossip.faults import FaultModel

UP, DOWN = "up", "down"

# event kinds
_DELIVER, _WAKE, _STREAM_REQ, _STREAM_RESP, _STREAM_END, _CALL = range(6)

_Send = out.Send
_OpenStream = out.OpenStream
_IncarnationChanged = out.IncarnationChanged
_Metric = out.Metric


T = TypeVar("T")


def sim_address(i: int) -> Address:
    """A realistic IPv4 address per host, so byte counts match a real LAN."""
    return (f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}", 7946)


class Host:
    """One simulated machine: a name, an address and its current Node."""

    __slots__ = (
        "address",
        "backlog",
        "generation",
        "idx",
        "incarnation",
        "name",
        "node",
        "status",
        "wake",
    )

    def __init__(self, idx: int, name: str, address: Address) -> None:
        self.idx = idx
        self.name = name
        self.address = address
        self.node: Node | None = None
        self.status = DOWN
        self.wake: float | None = None
        self.backlog: list[tuple[Any, ...]] = []
        self.generation = 0
        self.incarnation = 0


Listener = Callable[[Host, out.Notification], None]


class Simulation:
    def __init__(
        self,
        n: int,
        cfg: Config,
        *,
        seed: int = 1,
        faults: FaultModel[int] | None = None,
        names: Callable[[int], str] = lambda i: f"node-{i}",
    ) -> None:
        self.cfg = cfg
        self.seed = seed
        self.rng = random.Random(seed)
        self.faults: FaultModel[int] = faults or FaultModel()
        self.hosts = [Host(i, names(i), sim_address(i)) for i in range(n)]
        self.by_address = {h.address: h.idx for h in self.hosts}
        self.by_name = {h.name: h for h in self.hosts}
        self.now = 0.0
        self.listeners: list[Listener] = []
        self._listeners_by_kind: dict[type, list[Listener]] = {}
        self._events: list[tuple[Any, ...]] = []
        self._seq = 0
        self._streams: dict[tuple[int, int, int], bool] = {}
        # counters
        self.events = 0
        self.datagrams = 0
        self.datagram_bytes = 0
        self.max_datagram = 0
        self.stream_bytes = 0

    # ---- scheduling -------------------------------------------------------------

    def _push(self, t: float, kind: int, *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self._events, (t, self._seq, kind, *args))

    def listen(self, listener: Listener, kinds: tuple[type, ...]) -> None:
        """Hand `listener` the notifications of these output types only."""
        for kind in kinds:
            self._listeners_by_kind.setdefault(kind, []).append(listener)

    def call_at(self, t: float, fn: Callable[[], None]) -> None:
        """Run `fn()` at simulated time `t` (scenario actions, periodic checks)."""
        self._push(t, _CALL, fn)

    def run_until(self, t_end: float) -> None:
        events = self._events
        heappop = heapq.heappop
        hosts = self.hosts
        faults = self.faults
        while events and events[0][0] <= t_end:
            ev = heappop(events)
            self.now = ev[0]
            self.events += 1
            kind = ev[2]
            if kind == _DELIVER:
                h = hosts[ev[3]]
                if h.status is not UP:
                    continue
                if faults.paused and h.idx in faults.paused:
                    h.backlog.append(ev)
                else:
                    node = h.node
                    assert node is not None
                    node.receive_datagram(self.now, ev[4], ev[5])
                    self._drain(h)
            elif kind == _WAKE:
                h = hosts[ev[3]]
                if self.running(h) and h.wake == ev[0] and h.generation == ev[4]:
                    h.wake = None
                    assert h.node is not None
                    h.node.handle_timeout(self.now)
                    self._drain(h)
            elif kind == _CALL:
                ev[3]()
            else:
                self._stream_event(ev)
        self.now = max(self.now, t_end)

    # ---- host lifecycle ---------------------------------------------------------------

    def start(self, idx: int, seeds: list[Address], at: float | None = None) -> None:
        """Start (or restart) host `idx` now or at time `at`."""
        if at is not None and at > self.now:
            self.call_at(at, lambda: self.start(idx, seeds))
            return
        h = self.hosts[idx]
        h.generation += 1
        h.status = UP
        self.faults.resume(idx)
        h.backlog = []
        h.wake = None
        rng = random.Random(self.seed * 1_000_003 + idx * 7919 + h.generation)
        h.node = Node(h.name, h.address, self.cfg, rng=rng, incarnation=h.incarnation)
        h.node.start(self.now, seeds)
        self._drain(h)

    def user_event(self, idx: int, name: str, payload: bytes) -> None:
        """Host `idx` (up) fires a user event now."""
        self.act(idx, lambda node, now: node.user_event(now, name, payload, coalesce=False))

    def act(self, idx: int, fn: Callable[[Node, float], T]) -> T:
        """Run `fn(node, now)` on host `idx` (up) now, as its shell would."""
        h = self.hosts[idx]
        assert h.node is not None and self.running(h)
        result = fn(h.node, self.now)
        self._drain(h)
        return result

    def crash(self, idx: int) -> None:
        h = self.hosts[idx]
        h.status = DOWN
        self.faults.resume(idx)
        h.node = None
        h.backlog = []
        h.wake = None

    def pause(self, idx: int, seconds: float) -> None:
        h = self.hosts[idx]
        if self.running(h):
            self.faults.pause(idx)
            self.call_at(self.now + seconds, lambda: self.resume(idx))

    def resume(self, idx: int) -> None:
        h = self.hosts[idx]
        if not self.faults.resume(idx):
            return
        backlog, h.backlog = h.backlog, []
        node = h.node
        assert node is not None
        for ev in backlog:  # everything that queued up, at the time we wake
            if ev[2] == _DELIVER:
                node.receive_datagram(self.now, ev[4], ev[5])
            else:
                self._stream_event(ev)
        node.handle_timeout(self.now)
        h.wake = None
        self._drain(h)

    def running(self, h: Host) -> bool:
        """Whether `h` runs: up and not paused."""
        return h.status is UP and h.idx not in self.faults.paused

    def live_hosts(self) -> list[Host]:
        """Hosts that are up or paused (paused hosts are alive, just slow)."""
        return [h for h in self.hosts if h.status is not DOWN]

    # ---- outputs ------------------------------------------------------------------------

    def _drain(self, h: Host) -> None:
        node = h.node
        assert node is not None
        for o in node.take_outputs():
            if isinstance(o, _Send):
                self._send(h, o)
            elif isinstance(o, _Metric):
                continue
            elif isinstance(o, _OpenStream):
                self._open_stream(h, o)
            elif isinstance(o, _IncarnationChanged):
                h.incarnation = o.incarnation
            elif isinstance(o, out.ResolveSeeds):
                continue  # never asked: the simulated seeds are addresses
            else:
                for listener in self.listeners:
                    listener(h, o)
                for listener in self._listeners_by_kind.get(type(o), ()):
                    listener(h, o)
        deadline = node.next_deadline()
        if deadline is not None and (h.wake is None or deadline < h.wake):
            # A deadline already past (a suspicion confirmed after its new,
            # earlier deadline) is due now: the clock never runs backwards.
            deadline = max(deadline, self.now)
            h.wake = deadline
            self._push(deadline, _WAKE, h.idx, h.generation)

    def _send(self, h: Host, o: out.Send) -> None:
        size = len(o.payload)
        self.datagrams += 1
        self.datagram_bytes += size
        if size > self.max_datagram:
            self.max_datagram = size
        dst = self.by_address.get(o.to)
        if dst is None or not self.faults.reachable(h.idx, dst):
            return
        for delay in self.faults.datagram_delays(self.rng, h.idx, dst):
            self._push(self.now + delay, _DELIVER, dst, h.address, o.payload)

    # ---- streams ---------------------------------------------------------------------------
    # A stream is keyed (requester idx, stream id, requester generation); it is
    # pending until a response, a refusal or its timeout ends it.

    def _open_stream(self, h: Host, o: out.OpenStream) -> None:
        key = (h.idx, o.stream_id, h.generation)
        self._streams[key] = True
        self.stream_bytes += len(o.payload)
        self._push(self.now + o.timeout, _STREAM_END, key, "timeout")
        dst = self.by_address.get(o.to)
        faults = self.faults
        if dst is None or self.hosts[dst].status is DOWN:
            self._push(self.now + 2 * faults.latency, _STREAM_END, key, "refused")
        elif faults.reachable(h.idx, dst) and faults.reachable(dst, h.idx):
            # handshake round trip, then the request itself
            delay = 2 * faults.latency + faults.stream_delay(self.rng, h.idx, dst)
            self._push(self.now + delay, _STREAM_REQ, key, dst, h.address, o.payload)

    def _stream_event(self, ev: tuple[Any, ...]) -> None:
        kind, key = ev[2], ev[3]
        if key not in self._streams:
            return
        if kind == _STREAM_REQ:
            dst = self.hosts[ev[4]]
            if dst.status is DOWN:
                self._push(self.now + self.faults.latency, _STREAM_END, key, "reset")
            elif dst.idx in self.faults.paused:
                dst.backlog.append(ev)
            else:
                assert dst.node is not None
                reply = dst.node.handle_stream_request(self.now, ev[5], ev[6])
                self._drain(dst)
                if reply is None:
                    self._push(self.now + self.faults.latency, _STREAM_END, key, "closed")
                else:
                    self.stream_bytes += len(reply)
                    delay = self.faults.stream_delay(self.rng, dst.idx, key[0])
                    self._push(self.now + delay, _STREAM_RESP, key, reply)
            return
        h = self.hosts[key[0]]
        if h.generation != key[2] or h.status is DOWN:
            del self._streams[key]
            return
        if h.idx in self.faults.paused:
            h.backlog.append(ev)
            return
        del self._streams[key]
        assert h.node is not None
        if kind == _STREAM_RESP:
            h.node.receive_stream_response(self.now, key[1], ev[4])
        else:
            h.node.stream_failed(self.now, key[1], ev[4])
        self._drain(h)

"""Shared state and plumbing of the membership node (see node.py).

Rules: this holds what the node and its parts share: the member table, the
timers, the outbox, the broadcast queue, the state rows and the counters,
plus sending with piggybacked updates and the gossip tick. It makes no
protocol decisions: those are the node's (node.py) and its parts' (probing.py,
suspecting.py, pushpull.py), which it does not know.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Protocol

import cbor2

from gossip.core.membership import outputs as out
from gossip.core.membership.broadcast import BroadcastQueue
from gossip.core.membership.config import Config
from gossip.core.membership.lifeguard import Health
from gossip.core.membership.members import ALIVE, DEAD, SUSPECT, MemberTable
from gossip.core.membership.messages import (
    Alive,
    Message,
)
from gossip.core.membership.staterows import StateRows
from gossip.core.membership.timers import Timer, TimerHeap
from gossip.core.membership.userevents import UserEvents
from gossip.core.membership.wire import Codec, encode_message, wrap
from gossip.core.types import Address, MemberInfo, MemberState

METRICS_INTERVAL = 5.0
"""Seconds between Metric flushes of the counters."""
BACKLOG_PACKETS = 4
"""Above this many full packets of pending updates, copies heard from others
count as transmissions (broadcast.py)."""
MISS = ("", -1)
SEEN_CACHE_MIN = 4096
"""Updates remembered by their bytes (at least; 8 per member in big clusters)."""
GOSSIP_STATES = {ALIVE, SUSPECT, DEAD}


class CountFn(Protocol):
    """The node's counter increment, as its parts are handed it."""

    def __call__(self, name: str, value: float = 1, label: str = "") -> None: ...


class NodeBase:
    def __init__(
        self,
        name: str,
        address: Address,
        cfg: Config,
        *,
        rng: random.Random,
        incarnation: int = 0,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        if not name or len(name.encode()) > cfg.max_name_bytes:
            raise ValueError(f"node name must be 1..{cfg.max_name_bytes} bytes")
        self.name = name
        self.address = address
        self.cfg = cfg
        self.rng = rng
        self.incarnation = incarnation
        self.tags: Mapping[str, str] = MappingProxyType(dict(tags or {}))
        check_tags(cfg, self.tags)
        self._health = Health(cfg.max_health)
        self._codec = Codec(cfg)
        self._table = MemberTable(rng)
        self._timers = TimerHeap()
        self._queue = BroadcastQueue(BACKLOG_PACKETS * self._codec.room)
        self._events = UserEvents(cfg, self._codec.room)
        self._outbox: list[out.Output] = []
        self._counters: dict[str, float] = {}
        # Per-datagram traffic counts, kept as plain ints on the hot path and
        # folded into _counters when they are flushed.
        self._packets_in = self._bytes_in = self._packets_out = self._bytes_out = 0
        self._next_flush = 0.0
        self._seen: dict[bytes, tuple[str, int] | None] = {}
        self._rows = StateRows()
        self._gossip_timer: Timer | None = None
        self._started = False
        self._leaving = False
        self._leave_done = False
        self._left_payload = b""
        self._self_payload = b""

    # ---- public surface -----------------------------------------------------

    @property
    def health(self) -> int:
        return self._health.score

    def members(self) -> list[MemberInfo]:
        return list(self._table)

    def member(self, name: str) -> MemberInfo | None:
        return self._table.get(name)

    def count(self, state: MemberState) -> int:
        """How many members (this node included) are in `state`: O(1)."""
        return self._table.counts[state]

    def take_outputs(self) -> list[out.Output]:
        # Copied, not swapped: the parts hold this list's append.
        outputs = self._outbox.copy()
        self._outbox.clear()
        return outputs

    def next_deadline(self) -> float | None:
        return self._timers.next_deadline()

    def handle_timeout(self, now: float) -> None:
        self._timers.fire_due(now)

    def _reject(self, src: Address, reason: str) -> None:
        self._count("datagrams_rejected", 1, reason)
        self._outbox.append(out.DatagramRejected(src, reason))

    # ---- sending ----------------------------------------------------------------

    def _send(self, to: Address, first: Message | None = None, *, extra: bytes = b"") -> bool:
        """Send `first` (+ the wrapped `extra`) with as many pending updates as
        fit. With no `first`, send only if an update is pending. True if sent."""
        codec = self._codec
        head = [wrap(encode_message(first))] if first is not None else []
        if extra:
            head.append(extra)
        room = codec.room - sum(len(p) for p in head)
        parts = head + self._queue.take(room, self._retransmit_limit())
        if self._events:  # user events after the membership updates
            room -= sum(len(p) for p in parts[len(head) :])
            parts += self._events.take(room, self.cfg.event_retransmit_limit(len(self._table)))
        if not parts:
            return False
        payload = codec.packet(parts)
        self._outbox.append(out.Send(to, payload))
        self._packets_out += 1
        self._bytes_out += len(payload)
        return True

    def _retransmit_limit(self) -> int:
        return self.cfg.retransmit_limit(len(self._table))

    def _enqueue(self, now: float, key: str, msg: Message, raw: bytes | None) -> None:
        """Queue an update for gossip, reusing the bytes it arrived in if any."""
        encoded = raw if raw is not None else encode_message(msg)
        self._queue.enqueue(key, wrap(encoded), encoded)
        self._schedule_gossip(now)

    def _remember(self, raw: bytes | None, accused: tuple[str, int] | None = None) -> None:
        """Cache an applied update's bytes: a repeat of it is then skipped
        unparsed (precedence makes re-applying an update a no-op). For a
        suspicion or death, `accused` (name, incarnation) is kept so that a
        repeat can still be recognised as stale and corrected."""
        if raw is not None:
            seen = self._seen
            if len(seen) >= max(SEEN_CACHE_MIN, 8 * len(self._table)):
                seen.clear()
            seen[raw] = accused

    def _schedule_gossip(self, now: float) -> None:
        if self._gossip_timer is None:
            self._gossip_timer = self._timers.add(now + self.cfg.gossip_interval, self._gossip_tick)

    def _gossip_tick(self, now: float, _: Any) -> None:
        self._gossip_timer = None
        if not self._queue and not self._events:
            return
        targets = self._table.random_members(
            self.cfg.gossip_nodes, GOSSIP_STATES, exclude=(self.name,)
        )
        dead_horizon = now - self.cfg.gossip_to_the_dead_time
        for info in targets:
            if info.state == DEAD and info.state_since < dead_horizon:
                continue
            if not self._send(info.address):
                break
        if self._leaving and not self._queue.pending(self.name, self._left_payload):
            self._finish_leave(now, None)
        if self._queue or self._events:
            self._schedule_gossip(now)

    def _health_delta(self, delta: int, reason: str) -> None:
        if delta and self._health.apply(delta):
            self._outbox.append(out.HealthChanged(self._health.score, reason))

    # ---- self -----------------------------------------------------------------------

    def _self_info(self, now: float, state: MemberState = ALIVE) -> MemberInfo:
        return MemberInfo(self.name, self.address, state, self.incarnation, self.tags, now)

    def _set_incarnation(self, inc: int) -> None:
        if inc != self.incarnation:
            self.incarnation = inc
            self._outbox.append(out.IncarnationChanged(inc))

    def _broadcast_self(self) -> None:
        alive = Alive(self.name, self.incarnation, self.address, self.tags)
        self._self_payload = wrap(encode_message(alive))
        # No ident: copies heard from others never cut our own news short.
        self._queue.enqueue(self.name, self._self_payload)

    def _reassert(self, now: float) -> None:
        """A stale accusation still circulates: someone missed our refutation,
        so gossip our current alive again (unless it is still queued)."""
        if not self._leaving and not self._queue.pending(self.name, self._self_payload):
            self._queue.enqueue(self.name, self._self_payload)
            self._schedule_gossip(now)
            self._count("reassertions")

    def _finish_leave(self, now: float, _: Any) -> None:
        if not self._leave_done:
            self._leave_done = True
            self._outbox.append(out.LeaveCompleted())

    # ---- counters --------------------------------------------------------------------

    def _count(self, name: str, value: float = 1, label: str = "") -> None:
        key = f"{name}|{label}" if label else name
        self._counters[key] = self._counters.get(key, 0) + value

    def _flush_counters(self, now: float) -> None:
        """Emit the counters accumulated since the last flush as Metric
        increments (at most every METRICS_INTERVAL, from the probe tick)."""
        if now < self._next_flush:
            return
        self._next_flush = now + METRICS_INTERVAL
        traffic = (
            ("packets_in", self._packets_in),
            ("bytes_in", self._bytes_in),
            ("packets_out", self._packets_out),
            ("bytes_out", self._bytes_out),
        )
        for name, count in traffic:
            if count:
                self._count(name, count)
        self._packets_in = self._bytes_in = self._packets_out = self._bytes_out = 0
        for key, value in self._counters.items():
            name, _, label = key.partition("|")
            labels = {"reason": label} if label else {}
            self._outbox.append(out.Metric(name, value, labels))
        self._counters.clear()


def check_tags(cfg: Config, tags: Mapping[str, str]) -> None:
    if not all(type(k) is str and type(v) is str for k, v in tags.items()):
        raise ValueError("tags must map str to str")
    size = len(cbor2.dumps(dict(tags)))
    if size > cfg.max_tags_bytes:
        raise ValueError(f"tags take {size} bytes encoded; the limit is {cfg.max_tags_bytes}")


def freeze_tags(tags: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(tags)) if tags else _NO_TAGS


_NO_TAGS: Mapping[str, str] = MappingProxyType({})

"""Dissemination: the node's piggybacked updates and its gossip rounds.

Rules:
- Updates wait in the transmit-limited BroadcastQueue (broadcast.py); every
  datagram the node sends carries as many of them as fit, each up to the
  retransmit limit for the current cluster size. User events (userevents.py)
  fill what room is left, within their own byte budget.
- A gossip round, every gossip_interval while updates are pending (at once
  when a user event is new here, see hurry), sends them to gossip_nodes
  random members, skipping the dead ones gossiped to for long
  enough already; it stops early when nothing is left to send.
- An applied update's bytes are remembered, so a repeat of it is recognised
  unparsed; for a suspicion or death the accused (name, incarnation) is kept
  so a stale repeat can still be corrected. The cache is bounded.
- It decides nothing about membership: after each round it hands control back
  to the node (`after_round`), which decides, e.g., whether a leave is done.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gossip.core.membership import outputs as out
from gossip.core.membership.broadcast import BroadcastQueue
from gossip.core.membership.config import Config
from gossip.core.membership.counters import Counters
from gossip.core.membership.members import ALIVE, DEAD, SUSPECT, MemberTable
from gossip.core.membership.messages import Message
from gossip.core.membership.timers import Timer, TimerHeap
from gossip.core.membership.userevents import UserEvents
from gossip.core.membership.wire import Codec, encode_message, wrap
from gossip.core.types import Address

BACKLOG_PACKETS = 4
"""Above this many full packets of pending updates, copies heard from others
count as transmissions (broadcast.py)."""
SEEN_CACHE_MIN = 4096
"""Updates remembered by their bytes (at least; 8 per member in big clusters)."""
GOSSIP_STATES = {ALIVE, SUSPECT, DEAD}


class Disseminator:
    """The broadcast queue, the cache of applied updates and the gossip timer."""

    def __init__(
        self,
        name: str,
        cfg: Config,
        *,
        table: MemberTable,
        timers: TimerHeap,
        codec: Codec,
        counters: Counters,
        emit: Callable[[out.Output], None],
        after_round: Callable[[float], None],
    ) -> None:
        self._name = name
        self._cfg = cfg
        self._table = table
        self._timers = timers
        self._codec = codec
        self._counters = counters
        self._emit = emit
        self._after_round = after_round
        self.queue = BroadcastQueue(BACKLOG_PACKETS * codec.room)
        self.events = UserEvents(cfg, codec.room)
        """User events: their own queue and byte budget, after the updates."""
        self.seen: dict[bytes, tuple[str, int] | None] = {}
        """Applied updates by their bytes -> the accused of a suspicion or death."""
        self._timer: Timer | None = None
        self._hurried_until = -1.0

    def send(self, to: Address, first: Message | None = None, *, extra: bytes = b"") -> bool:
        """Send `first` (+ the wrapped `extra`) with as many pending updates as
        fit. With no `first`, send only if an update is pending. True if sent."""
        codec = self._codec
        head = [wrap(codec.encode(first))] if first is not None else []
        if extra:
            head.append(extra)
        room = codec.room - sum(len(p) for p in head)
        parts = head + self.queue.take(room, self._cfg.retransmit_limit(len(self._table)))
        if self.events:  # user events after the membership updates
            room -= sum(len(p) for p in parts[len(head) :])
            parts += self.events.take(room, self._cfg.event_retransmit_limit(len(self._table)))
        if not parts:
            return False
        payload = codec.packet(parts)
        self._emit(out.Send(to, payload))
        counters = self._counters
        counters.packets_out += 1
        counters.bytes_out += len(payload)
        return True

    def enqueue(self, now: float, key: str, msg: Message, raw: bytes | None) -> None:
        """Queue an update for gossip, reusing the bytes it arrived in if any."""
        encoded = raw if raw is not None else encode_message(msg)
        self.queue.enqueue(key, wrap(encoded), encoded)
        self.schedule(now)

    def remember(self, raw: bytes | None, accused: tuple[str, int] | None = None) -> None:
        """Cache an applied update's bytes: a repeat of it is then skipped
        unparsed (precedence makes re-applying an update a no-op). For a
        suspicion or death, `accused` (name, incarnation) is kept so that a
        repeat can still be recognised as stale and corrected."""
        if raw is not None:
            seen = self.seen
            if len(seen) >= max(SEEN_CACHE_MIN, 8 * len(self._table)):
                seen.clear()
            seen[raw] = accused

    def schedule(self, now: float) -> None:
        """Make sure a gossip round is due within gossip_interval."""
        if self._timer is None:
            self._timer = self._timers.add(now + self._cfg.gossip_interval, self._round)

    def hurry(self, now: float) -> None:
        """A user event is new here: run a round now instead of up to
        gossip_interval later (an event has no probe to ride on soon, and
        each hop would otherwise wait for the timer). At most one hurried
        round per quarter interval, whatever the rate of events."""
        if now < self._hurried_until:
            self.schedule(now)
            return
        self._hurried_until = now + self._cfg.gossip_interval / 4
        if self._timer is not None:
            if self._timer.deadline <= now:
                return
            self._timer.cancel()
        self._timer = self._timers.add(now, self._round)

    def _round(self, now: float, _: Any) -> None:
        self._timer = None
        if not self.queue and not self.events:
            return
        targets = self._table.random_members(
            self._cfg.gossip_nodes, GOSSIP_STATES, exclude=(self._name,)
        )
        dead_horizon = now - self._cfg.gossip_to_the_dead_time
        for info in targets:
            if info.state == DEAD and info.state_since < dead_horizon:
                continue
            if not self.send(info.address):
                break
        self._after_round(now)
        if self.queue or self.events:
            self.schedule(now)

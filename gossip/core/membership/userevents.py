"""User events: named payloads that any member fires and gossip brings to all.

Rules (Serf's user events, without its locks):
- A Lamport clock orders the events: firing stamps an event with the clock
  and advances it; every event received moves the clock past its time.
- An event is known by (ltime, name, payload). The events of the last
  `event_window` Lamport times are kept: a copy of one kept is a duplicate,
  and an event older than the window is a replay; neither is delivered.
- A coalescing event is still gossiped on, but not delivered when a newer
  coalescing event of the same name was delivered already: only the latest
  of a burst matters to its receivers.
- Events are gossiped from their own transmit-limited queue (broadcast.py),
  filling at most `event_budget` bytes of a datagram, after the membership
  updates: events never delay failure detection.
- The limit on a name plus its payload is max_event_bytes, lowered to what
  one datagram can carry; fire() refuses a larger event with ValueError.
- recent() lists the kept events, oldest first, so that a node which missed
  them (it was away, or just joined) can be given them again.
"""

from __future__ import annotations

from collections.abc import Iterator

from gossip.core.membership.broadcast import BroadcastQueue
from gossip.core.membership.config import Config
from gossip.core.membership.messages import UserEvent
from gossip.core.membership.wire import encode_message, wrap

ENVELOPE_BYTES = 32
"""Room a user event takes beyond its name and payload: kind, Lamport time,
flag and CBOR headers (generous)."""


class UserEvents:
    def __init__(self, cfg: Config, room: int) -> None:
        self.clock = 0
        """The Lamport time the next event fired here is stamped with."""
        self.window = cfg.event_window
        self.budget = cfg.event_budget
        self.limit = max(0, min(cfg.max_event_bytes, room - ENVELOPE_BYTES))
        """The largest name plus payload accepted from a caller."""
        self._queue = BroadcastQueue()
        self._kept: dict[int, list[UserEvent]] = {}
        self._latest: dict[str, int] = {}
        """Lamport time of the newest coalescing event delivered, by name."""
        self._oldest = 0
        self.kept = 0
        """New events taken in so far (duplicates and replays not counted)."""
        self._next_key = 0

    def __len__(self) -> int:
        """Events still to be gossiped."""
        return len(self._queue)

    def fire(self, name: str, payload: bytes, coalesce: bool) -> UserEvent:
        """A new event of ours: stamped, kept and queued; deliver it too."""
        size = len(name.encode()) + len(payload)
        if not name or size > self.limit:
            raise ValueError(
                f"a user event's name and payload take {size} bytes; the limit is {self.limit}"
            )
        event = UserEvent(self.clock, name, payload, coalesce)
        self.receive(event)
        return event

    def receive(self, event: UserEvent, gossip: bool = True) -> bool:
        """An event heard (or fired): True if it is to be delivered now. A new
        event is kept, and queued for gossip (unless `gossip` is False: one
        learned by push-pull spreads by push-pull), even when coalescing
        hides it."""
        if event.ltime >= self.clock:
            self.clock = event.ltime + 1
        if event.ltime < self.clock - self.window:
            return False  # a replay, or too old to tell from one
        if not self._kept or event.ltime < self._oldest:
            self._oldest = event.ltime
        same_time = self._kept.setdefault(event.ltime, [])
        if event in same_time:
            return False
        same_time.append(event)
        self.kept += 1
        self._prune()
        if gossip:
            self._next_key += 1
            self._queue.enqueue(f"e{self._next_key}", wrap(encode_message(event)))
        if event.coalesce:
            latest = self._latest.get(event.name, -1)
            if event.ltime < latest:
                return False
            self._latest[event.name] = event.ltime
        return True

    def gossip(self, wrapped: bytes) -> None:
        """Queue another message (a query) in the events' queue and budget."""
        self._next_key += 1
        self._queue.enqueue(f"e{self._next_key}", wrapped)

    def take(self, room: int, limit: int) -> list[bytes]:
        """Encoded events for a datagram with `room` bytes left (each counts
        one transmit of at most `limit`)."""
        if not self._queue:
            return []
        # The queue hands out the newest first; oldest first is the order
        # they were fired in, when one packet carries a burst of them.
        return self._queue.take(min(room, self.budget), limit)[::-1]

    def recent(self) -> Iterator[UserEvent]:
        for ltime in sorted(self._kept):
            yield from self._kept[ltime]

    def recent_wrapped(self) -> list[bytes]:
        """The kept events as a push-pull carries them."""
        return [wrap(encode_message(e)) for e in self.recent()]

    def _prune(self) -> None:
        horizon = self.clock - self.window
        if self._oldest >= horizon:
            return
        for ltime in [t for t in self._kept if t < horizon]:
            del self._kept[ltime]
        for name in [n for n, t in self._latest.items() if t < horizon]:
            del self._latest[name]
        self._oldest = min(self._kept, default=horizon)

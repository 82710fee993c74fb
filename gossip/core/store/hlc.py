"""Hybrid logical clocks: versions for last-writer-wins.

Rules: the wall time is passed in (milliseconds); nothing here reads a clock.
A timestamp is (wall_ms, counter, node) and orders as that tuple, so two
writes never compare equal unless they are the same write: the counter breaks
ties within one millisecond and the node name breaks ties between nodes.
The counter fits 16 bits; on overflow the clock borrows the next millisecond
(it may run ahead of wall time by a little, never behind its own past).
A remote timestamp more than `max_offset_ms` ahead of our wall time is not
adopted (a broken clock elsewhere must not drag ours into the future); the
store's own data (`advance`, on restart) and a version a replica reports as
newer than a write (`now_after`) are adopted whatever the offset.
"""

from __future__ import annotations

from dataclasses import dataclass

COUNTER_BITS = 16
MAX_COUNTER = (1 << COUNTER_BITS) - 1
MAX_WALL_MS = (1 << 47) - 1
"""Wall times are non-negative and fit 47 bits (year ~6400), so (wall, counter)
packs into one unsigned 64-bit integer with room to spare."""


@dataclass(frozen=True, slots=True, order=True)
class Timestamp:
    wall: int
    """Milliseconds since the Unix epoch."""
    counter: int
    node: str

    def __post_init__(self) -> None:
        if not 0 <= self.wall <= MAX_WALL_MS:
            raise ValueError(f"wall time out of range: {self.wall}")
        if not 0 <= self.counter <= MAX_COUNTER:
            raise ValueError(f"counter out of range: {self.counter}")

    @property
    def packed(self) -> int:
        """(wall, counter) as one integer that orders the same way."""
        return (self.wall << COUNTER_BITS) | self.counter


class HybridClock:
    """One node's clock. `now()` for local events, `observe()` for remote ones."""

    def __init__(self, node: str, *, max_offset_ms: int = 60_000) -> None:
        self.node = node
        self.max_offset_ms = max_offset_ms
        self._wall = 0
        self._counter = 0

    @property
    def last(self) -> tuple[int, int]:
        return self._wall, self._counter

    def now(self, wall_ms: int) -> Timestamp:
        """A timestamp greater than every one this clock issued or observed."""
        if wall_ms > self._wall:
            self._wall, self._counter = wall_ms, 0
        elif self._counter < MAX_COUNTER:
            self._counter += 1
        else:
            self._wall, self._counter = self._wall + 1, 0
        return Timestamp(self._wall, self._counter, self.node)

    def observe(self, wall_ms: int, remote: Timestamp) -> bool:
        """Advance past a remote timestamp; False (and no change) if it is
        implausibly far ahead of our wall time."""
        if remote.wall > wall_ms + self.max_offset_ms:
            return False
        if (remote.wall, remote.counter) > (self._wall, self._counter):
            self._wall, self._counter = remote.wall, remote.counter
        return True

    def advance(self, wall: int, counter: int) -> None:
        """Move past (wall, counter) unconditionally: the store's own stored versions,
        so a restarted node's writes outrank what it wrote before, even when its wall
        clock now runs far behind them."""
        if (wall, counter) > (self._wall, self._counter):
            self._wall, self._counter = wall, counter

    def now_after(self, wall_ms: int, newer: Timestamp) -> Timestamp:
        """A timestamp above `newer` (and above everything this clock has seen)."""
        self.advance(newer.wall, newer.counter)
        return self.now(wall_ms)

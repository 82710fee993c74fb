"""Store clock agreement: how far to correct a node's clock, from its peers' readings.

Rules: nothing here reads a clock; every input takes `now` (monotonic seconds).
An offset is a peer's corrected store-clock reading minus this node's
uncorrected one, taken when the reading arrived (latency is small against the
max offset). The correction is the lower median of this node's own offset (0)
and the fresh offsets of its live peers, so one bad clock, or any minority of
them, moves nobody, and a node whose clock is far from most of its peers moves
to them. A node agrees when its corrected clock (which counts for itself) and the
peers within the max offset of it are a strict majority of the readings; a node
with live peers and no fresh reading of any has not been checked yet. With no
fresh reading at all, the last correction stays (a node whose peers went away
keeps the time it agreed on). Readings
are untrusted input: an offset larger than `absurd_ms` is ignored; readings
older than `max_age` are forgotten, and at most MAX_PEERS are kept.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass

MAX_PEERS = 4096
"""Readings kept at most (the oldest goes first): names on the wire are untrusted."""
DEFAULT_ABSURD_MS = 7 * 86_400_000
"""A week: no clock this far from ours is taken into account."""


def lower_median(values: list[int]) -> int:
    """The middle value, the lower of the two middle ones for an even count."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2]


@dataclass(frozen=True, slots=True)
class ClockVerdict:
    correction_ms: int
    """Add this to the uncorrected clock."""
    readings: int
    """This node's own reading and the fresh ones of live peers."""
    agreeing: int
    """The corrected clock itself and the peers within the max offset of it."""
    reason: str | None
    """Why this node must not stamp or accept writes now (None: it may)."""


class ClockAgreement:
    def __init__(
        self, max_offset_ms: int, max_age: float, *, absurd_ms: int = DEFAULT_ABSURD_MS
    ) -> None:
        self.max_offset_ms = max_offset_ms
        self.max_age = max_age
        self.absurd_ms = absurd_ms
        self._offsets: dict[str, tuple[int, float]] = {}
        self.correction_ms = 0
        self.ignored = 0
        """Readings ignored as absurd."""
        self.changes = 0
        """Counts every change to the readings kept (a verdict computed before is stale)."""

    def observe(self, peer: str, offset_ms: int, now: float) -> bool:
        """Record a peer's offset; False (and nothing kept) if it is absurd."""
        if abs(offset_ms) > self.absurd_ms:
            self.ignored += 1
            return False
        if peer not in self._offsets and len(self._offsets) >= MAX_PEERS:
            oldest = min(self._offsets, key=lambda p: self._offsets[p][1])
            del self._offsets[oldest]
        self._offsets[peer] = (offset_ms, now)
        self.changes += 1
        return True

    def stable_until(self) -> float:
        """Until when (monotonic seconds, inclusive) no reading kept now goes stale:
        before then, without a new reading or another live set, the verdict holds."""
        if not self._offsets:
            return float("inf")
        return min(at for _, at in self._offsets.values()) + self.max_age

    def offsets(self, now: float, live: Set[str]) -> dict[str, int]:
        """The fresh offsets of live peers. Stale readings are forgotten; a reading of a
        peer not (yet) in the live set is kept, as it may arrive before its join."""
        for peer in list(self._offsets):
            if now > self._offsets[peer][1] + self.max_age:  # as stable_until reckons
                del self._offsets[peer]
                self.changes += 1
        return {p: off for p, (off, _) in self._offsets.items() if p in live}

    def verdict(self, now: float, live: Set[str]) -> ClockVerdict:
        """The correction and whether this node's corrected clock agrees with its peers."""
        fresh = self.offsets(now, live)
        if fresh:
            self.correction_ms = lower_median([0, *fresh.values()])
        correction = self.correction_ms
        readings = 1 + len(fresh)
        agreeing = 1 + sum(abs(v - correction) <= self.max_offset_ms for v in fresh.values())
        reason = None
        if live and not fresh:
            reason = "clock not yet checked against any live peer"
        elif 2 * agreeing <= readings:
            reason = (
                f"clock agrees with {agreeing} of {readings} readings"
                f" within {self.max_offset_ms} ms, a majority needed"
            )
        return ClockVerdict(correction, readings, agreeing, reason)

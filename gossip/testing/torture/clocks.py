"""Per-node virtual wall clocks for fault runs.

Rules: a node's wall clock reads `epoch_ms + trio.current_time() * 1000 * (1 + drift)
+ offset_ms`, in whole milliseconds: it follows trio's (virtual) time, so a run is
the same at any speed. The schedule may step the offset forward or backward while
the node runs (an NTP step, a fixed RTC); monotonic time stays trio's and never
moves back. It implements gossip.runtime.clock.WallClock.
"""

from __future__ import annotations

import trio

EPOCH_MS = 1_767_225_600_000
"""2026-01-01T00:00:00Z: every run starts its wall clocks here, so histories are repeatable."""


class VirtualClock:
    def __init__(self, epoch_ms: int = EPOCH_MS, drift: float = 0.0, offset_ms: int = 0) -> None:
        self.epoch_ms = epoch_ms
        self.drift = drift
        self.offset_ms = offset_ms

    def wall_ms(self) -> int:
        return self.epoch_ms + int(trio.current_time() * 1000 * (1 + self.drift)) + self.offset_ms

    def step(self, ms: int) -> None:
        """Move the wall clock by `ms` (negative: backward) from now on."""
        self.offset_ms += ms

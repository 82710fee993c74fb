"""Wall-clock time for the agent and its services, behind one seam.

Rules: the agent and its services read the wall clock only through the agent's
`WallClock` (`host.wall_ms()`: integer milliseconds since the epoch). Wall time
anchors the store clock (read once; gossip.runtime.store.storeclock) and stamps
fencing tokens; it never measures elapsed time, which is trio.current_time()'s
job. Tests and fault runs give each agent a clock of its own, with an offset that
can be stepped while the agent runs.
"""

from __future__ import annotations

import time
from typing import Protocol


class WallClock(Protocol):
    def wall_ms(self) -> int: ...


class SystemClock:
    """The host's clock (time.time_ns)."""

    def wall_ms(self) -> int:
        return time.time_ns() // 1_000_000

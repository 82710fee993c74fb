"""Functions due at given times on trio's clock, run by one task for all of them.

Rules: `at(when, fn)` never blocks and may be called from any task of the
run; `fn` runs in the timer task at or after `when`, in the order of the
times (ties in the order they were added), and once. What it raises is
logged and the others still run. Nothing is run after `run` has ended. For
work that is rarely needed but must be bounded in time (a deadline), this
costs a heap entry instead of a task and a cancel scope each.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

import structlog
import trio

log = structlog.get_logger("gossip.runtime")


class DueTimers:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._wake = trio.Event()

    def __len__(self) -> int:
        return len(self._heap)

    def at(self, when: float, fn: Callable[[], None]) -> None:
        earliest = self._heap[0][0] if self._heap else None
        heapq.heappush(self._heap, (when, next(self._order), fn))
        if earliest is None or when < earliest:
            self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake = trio.Event()
            if not self._heap:
                await self._wake.wait()
                continue
            with trio.move_on_at(self._heap[0][0]):
                await self._wake.wait()
            now = trio.current_time()
            while self._heap and self._heap[0][0] <= now:
                _, _, fn = heapq.heappop(self._heap)
                try:
                    fn()
                except Exception:
                    log.exception("due_timer_failed")

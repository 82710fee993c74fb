"""A heap of timers for a pure state machine that is told the time.

Rules: a timer is a deadline plus a callback `fn(now, arg)`; cancelling marks
it inactive (cancelled entries are dropped lazily, and never reported as the
next deadline). Ties fire in the order the timers were added, so a run is
deterministic. Nothing here reads a clock.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

Callback = Callable[[float, Any], None]


class Timer:
    __slots__ = ("active", "arg", "deadline", "fn")

    def __init__(self, deadline: float, fn: Callback, arg: Any) -> None:
        self.deadline = deadline
        self.fn = fn
        self.arg = arg
        self.active = True

    def cancel(self) -> None:
        self.active = False


class TimerHeap:
    def __init__(self) -> None:
        # (deadline, sequence, timer): tuples compare in C, the sequence
        # breaks ties in insertion order and keeps timers from being compared.
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = 0

    def add(self, deadline: float, fn: Callback, arg: Any = None) -> Timer:
        self._seq += 1
        timer = Timer(deadline, fn, arg)
        heapq.heappush(self._heap, (deadline, self._seq, timer))
        return timer

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and not heap[0][2].active:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def fire_due(self, now: float) -> None:
        """Run every active timer due at or before `now`, earliest first
        (including timers that the callbacks themselves add for <= now)."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            timer = heapq.heappop(heap)[2]
            if timer.active:
                timer.active = False
                timer.fn(now, timer.arg)

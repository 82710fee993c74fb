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
    __slots__ = ("active", "arg", "deadline", "fn", "seq")

    def __init__(self, deadline: float, seq: int, fn: Callback, arg: Any) -> None:
        self.deadline = deadline
        self.seq = seq
        self.fn = fn
        self.arg = arg
        self.active = True

    def __lt__(self, other: Timer) -> bool:
        return (self.deadline, self.seq) < (other.deadline, other.seq)

    def cancel(self) -> None:
        self.active = False


class TimerHeap:
    def __init__(self) -> None:
        self._heap: list[Timer] = []
        self._seq = 0

    def add(self, deadline: float, fn: Callback, arg: Any = None) -> Timer:
        self._seq += 1
        timer = Timer(deadline, self._seq, fn, arg)
        heapq.heappush(self._heap, timer)
        return timer

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and not heap[0].active:
            heapq.heappop(heap)
        return heap[0].deadline if heap else None

    def fire_due(self, now: float) -> None:
        """Run every active timer due at or before `now`, earliest first
        (including timers that the callbacks themselves add for <= now)."""
        heap = self._heap
        while heap and heap[0].deadline <= now:
            timer = heapq.heappop(heap)
            if timer.active:
                timer.active = False
                timer.fn(now, timer.arg)

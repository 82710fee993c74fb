"""The membership node's counters, flushed as Metric outputs.

Rules: counts accumulate between flushes under "name" or "name|label" and are
emitted at most every METRICS_INTERVAL seconds, as increments, then reset.
Per-datagram traffic is kept as plain ints (the hot path) and folded into the
counts when they are flushed. A label becomes the metric's `reason`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from gossip.core.membership import outputs as out

METRICS_INTERVAL = 5.0
"""Seconds between Metric flushes of the counters."""


class CountFn(Protocol):
    """The node's counter increment, as its parts are handed it."""

    def __call__(self, name: str, value: float = 1, label: str = "") -> None: ...


class Counters:
    """Counts since the last flush, and the traffic of datagrams in and out."""

    __slots__ = ("_counts", "_next_flush", "bytes_in", "bytes_out", "packets_in", "packets_out")

    def __init__(self) -> None:
        self._counts: dict[str, float] = {}
        self._next_flush = 0.0
        self.packets_in = self.bytes_in = self.packets_out = self.bytes_out = 0

    def count(self, name: str, value: float = 1, label: str = "") -> None:
        key = f"{name}|{label}" if label else name
        self._counts[key] = self._counts.get(key, 0) + value

    def flush(self, now: float, emit: Callable[[out.Output], None]) -> None:
        """Emit the counts accumulated since the last flush as Metric
        increments, unless the last flush is less than METRICS_INTERVAL ago."""
        if now < self._next_flush:
            return
        self._next_flush = now + METRICS_INTERVAL
        traffic = (
            ("packets_in", self.packets_in),
            ("bytes_in", self.bytes_in),
            ("packets_out", self.packets_out),
            ("bytes_out", self.bytes_out),
        )
        for name, n in traffic:
            if n:
                self.count(name, n)
        self.packets_in = self.bytes_in = self.packets_out = self.bytes_out = 0
        for key, value in self._counts.items():
            name, _, label = key.partition("|")
            labels = {"reason": label} if label else {}
            emit(out.Metric(name, value, labels))
        self._counts.clear()

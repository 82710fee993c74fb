"""The metrics of the stream transport: connections and exchanges in flight.

Rules: declared once per agent on its registry; the gauges read the client's
and the server's counts when rendered, so nothing is kept twice. Labels come
from fixed vocabularies: direction in/out, mode mux/single, and the short
reason tokens a connection ends with.
"""

from __future__ import annotations

from collections.abc import Callable

from gossip.runtime.metrics import Registry

Counts = Callable[[], tuple[int, int]]
"""(outbound, inbound)."""


class StreamMetrics:
    def __init__(self, registry: Registry) -> None:
        self.opened = registry.counter(
            "stream_connections_opened_total",
            "TCP connections opened (out) or accepted (in), by mode (mux: kept and shared,"
            " single: one exchange).",
            ("direction", "mode"),
        )
        self.closed = registry.counter(
            "stream_connections_closed_total",
            "Multiplexed connections closed, by direction and reason.",
            ("direction", "reason"),
        )
        self.reused = registry.counter(
            "stream_connections_reused_total",
            "Outgoing exchanges carried by a multiplexed connection that was already open.",
        )
        self.late = registry.counter(
            "stream_late_answers_total", "Answers that came after their exchange gave up."
        )
        self._connections: Counts = lambda: (0, 0)
        self._in_flight: Counts = lambda: (0, 0)
        registry.gauge(
            "stream_connections",
            "Multiplexed connections open now.",
            ("direction",),
            lambda: _by_direction(self._connections()),
        )
        registry.gauge(
            "stream_exchanges_in_flight",
            "Exchanges in flight on multiplexed connections.",
            ("direction",),
            lambda: _by_direction(self._in_flight()),
        )

    def read_from(self, connections: Counts, in_flight: Counts) -> None:
        self._connections = connections
        self._in_flight = in_flight


def _by_direction(counts: tuple[int, int]) -> dict[tuple[str, ...], float]:
    return {("out",): float(counts[0]), ("in",): float(counts[1])}

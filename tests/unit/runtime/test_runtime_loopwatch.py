"""Loop-lag reporting: every lateness is counted, a stall is logged at most once a minute."""

from __future__ import annotations

from typing import Any

from gossip.runtime.loopwatch import LAG_WARN_S, WARN_EVERY_S, LagWatch
from gossip.runtime.metrics import Histogram


class RecordingLog:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def warning(self, event: str, **fields: Any) -> None:
        self.lines.append((event, fields))


def test_every_lateness_is_observed_and_a_stall_is_logged_once_a_minute() -> None:
    histogram = Histogram("lag", "", [0.01, 0.25, 1.0])
    log = RecordingLog()
    watch = LagWatch(histogram, log)
    watch.observe(10.0, 0.001)
    watch.observe(11.0, 0.5)  # a stall: logged
    watch.observe(12.0, 0.9)  # another within the minute: counted, not logged
    watch.observe(11.0 + WARN_EVERY_S + 1, LAG_WARN_S)  # a minute on: logged again
    watch.observe(200.0, -0.002)  # a timer seen early counts as on time
    assert histogram.count == 5
    assert histogram.samples()[0] == 'lag_bucket{le="0.01"} 2'
    assert log.lines == [
        ("event_loop_stalled", {"lag_s": 0.5}),
        ("event_loop_stalled", {"lag_s": LAG_WARN_S}),
    ]

"""Event-loop stall reporting: how late do the core task's timers fire?

Rules: the core task (coretask.py) already wakes for its timers (gossip every
200 ms, probes every second while there are peers) and hands each lateness to
`LagWatch.observe`; no task of its own wakes to measure, so an idle agent pays
no extra wakeups for the metric. Every lateness goes into a histogram, and
`event_loop_stalled` is logged at most once a minute when a stall reaches
LAG_WARN_S. A blocked loop delays acks, so other nodes suspect this one: the
metric tells an operator that the cause is local (a slow synchronous call), not
the network. The health score hears of the same lateness from the core task
(Node.loop_lagged), so one stall counts once.
"""

from __future__ import annotations

import math
from typing import Any

from gossip.runtime.metrics import Histogram

LAG_WARN_S = 0.2
"""A stall this long is a fair share of a probe timeout: worth a (rate-limited) warning."""
WARN_EVERY_S = 60.0


class LagWatch:
    def __init__(self, histogram: Histogram, log: Any) -> None:
        self.histogram = histogram
        self.log = log
        self.last_warning = -math.inf

    def observe(self, now: float, lag: float) -> None:
        """A timer due `lag` seconds before `now` fired at `now`."""
        lag = max(0.0, lag)
        self.histogram.observe(lag)
        if lag >= LAG_WARN_S and now - self.last_warning > WARN_EVERY_S:
            self.last_warning = now
            self.log.warning("event_loop_stalled", lag_s=round(lag, 3))

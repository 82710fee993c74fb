"""Event-loop stall detection: how late does a short sleep wake up?

Rules: one task per agent; it observes every lateness in a histogram and logs
`event_loop_stalled` at most once a minute when a stall reaches LAG_WARN_S. A
blocked loop delays acks, so other nodes suspect this one: the metric tells an
operator that the cause is local (a slow synchronous call), not the network.
This task only measures; the health score hears of stalls from the core task
itself (how late its timers fire, agent.py), so one stall counts once.
"""

from __future__ import annotations

import math
from typing import Any

import trio

from gossip.runtime.metrics import Histogram

LAG_PROBE_S = 0.5
LAG_WARN_S = 0.2
"""A stall this long is a fair share of a probe timeout: worth a (rate-limited) warning."""


async def watch_loop_lag(histogram: Histogram, log: Any) -> None:
    last_warning = -math.inf
    while True:
        start = trio.current_time()
        await trio.sleep(LAG_PROBE_S)
        lag = max(0.0, trio.current_time() - start - LAG_PROBE_S)
        histogram.observe(lag)
        if lag >= LAG_WARN_S and trio.current_time() - last_warning > 60:
            last_warning = trio.current_time()
            log.warning("event_loop_stalled", lag_s=round(lag, 3))

"""User-event load in a simulation, and its delivery figures.

Rules: from `start` until `stop` the load fires `rate` user events per
simulated second cluster-wide (Poisson arrivals), each from a random host
that is up, all drawn from the load's own seeded rng, so a run replays. Every
delivery (UserEventReceived) is recorded with its time. A host is expected
to deliver an event once if it was up from the firing to the end of the run
and never crashed; the figures count what is missing, what was duplicated,
and how long the last host took.
"""

from __future__ import annotations

import random
from typing import Any

from gossip.core.membership import outputs as out
from gossip.sim.arrivals import Arrivals
from gossip.sim.engine import Host, Simulation

PAYLOAD = b"x" * 32
"""Every simulated event carries this payload (its size is what matters)."""


class EventLoad:
    def __init__(self, sim: Simulation, rate: float, seed: int) -> None:
        self.sim = sim
        self.rate = rate
        self.rng = random.Random(f"events-{seed}")
        self.fired: dict[str, tuple[float, str]] = {}
        """Event name -> (time fired, sender)."""
        self.delivered: dict[str, dict[str, list[float]]] = {}
        """Event name -> host name -> delivery times."""
        self.crashed: set[str] = set()
        self._arrivals = Arrivals(sim, rate, self.rng, self._fire)
        sim.listen(self._on_output, (out.UserEventReceived,))

    def start(self, at: float, stop: float) -> None:
        self._arrivals.start(at, stop)

    def _fire(self, host: Host, up: list[Host]) -> None:
        name = f"ev{len(self.fired)}"
        self.fired[name] = (self.sim.now, host.name)
        self.sim.user_event(host.idx, name, PAYLOAD)

    def _on_output(self, host: Host, o: out.Notification) -> None:
        assert isinstance(o, out.UserEventReceived)
        self.delivered.setdefault(o.name, {}).setdefault(host.name, []).append(self.sim.now)

    def figures(self) -> dict[str, Any]:
        expected = [h.name for h in self.sim.hosts if h.name not in self.crashed]
        missing = duplicates = 0
        latencies: list[float] = []
        for name, (at, _) in self.fired.items():
            got = self.delivered.get(name, {})
            for host in expected:
                times = got.get(host)
                if not times:
                    missing += 1
                    continue
                duplicates += len(times) - 1
                latencies.append(times[0] - at)
        latencies.sort()

        def pct(q: float) -> float | None:
            if not latencies:
                return None
            return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 3)

        return {
            "events_fired": len(self.fired),
            "event_deliveries": len(latencies),
            "event_missing": missing,
            "event_duplicates": duplicates,
            "event_latency_p50_s": pct(0.5),
            "event_latency_p99_s": pct(0.99),
            "event_latency_max_s": round(latencies[-1], 3) if latencies else None,
        }

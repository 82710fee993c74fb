"""Poisson arrivals on random up hosts: the clock of a simulated client load.

Rules: from `at` until `stop`, arrivals come `rate` per simulated second
cluster-wide (exponential gaps); each picks a random host that is up and hands
it, with the hosts up at that moment, to the load's action. Every draw comes
from the load's own seeded rng (the gap first, then the host), so a run replays.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from gossip.sim.engine import Host, Simulation

Action = Callable[[Host, list[Host]], None]


class Arrivals:
    def __init__(self, sim: Simulation, rate: float, rng: random.Random, act: Action) -> None:
        self.sim = sim
        self.rate = rate
        self.rng = rng
        self.act = act
        self._stop = 0.0

    def start(self, at: float, stop: float) -> None:
        if self.rate <= 0:
            return
        self._stop = stop
        self.sim.call_at(at + self.rng.expovariate(self.rate), self._arrive)

    def _arrive(self) -> None:
        sim = self.sim
        if sim.now >= self._stop:
            return
        up = [h for h in sim.hosts if sim.running(h)]
        if up:
            self.act(self.rng.choice(up), up)
        sim.call_at(sim.now + self.rng.expovariate(self.rate), self._arrive)

"""A WAN-like latency matrix, and how well network coordinates learn it.

Hosts are spread round-robin over datacentres at real places. The one-way
delay between two datacentres is their great-circle distance at the speed of
light in fibre (200 km/ms), times a route inflation drawn per pair of
datacentres from 1.2-2.2 (real routes detour, unevenly, so the matrix breaks
the triangle inequality as real ones do and no space embeds it exactly),
plus 1 ms; inside one it is 0.25 ms. Each host adds its own access delay
(0.05-0.5 ms, drawn from the seed) to every path, which is what a
coordinate's height models.
The matrix is symmetric and fixed for a run: it is the truth the estimates
are checked against.

check_coordinates runs the simulator with coordinates on over such a WAN
and reports the relative error |estimate - true| / true of every pair's
round trip as the nodes see it (each node's own coordinate against the one
it last heard from the other).
"""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass

from gossip.core.membership.config import Config
from gossip.core.membership.vivaldi import estimate_rtt
from gossip.faults import FaultModel
from gossip.sim.engine import Simulation

DATACENTRES: tuple[tuple[str, float, float], ...] = (
    ("us-east", 38.9, -77.0),
    ("us-west", 45.6, -121.2),
    ("eu-west", 53.3, -6.3),
    ("eu-central", 50.1, 8.7),
    ("ap-northeast", 35.7, 139.7),
    ("ap-southeast", 1.35, 103.8),
    ("sa-east", -23.5, -46.6),
)
FIBRE_KM_PER_S = 200_000.0
ROUTE_INFLATION = (1.2, 2.2)
INTER_DC_BASE_S = 0.001
INTRA_DC_S = 0.00025


def _great_circle_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(math.sqrt(h))


class Wan:
    """One-way delays between `n` hosts over the first `dcs` datacentres."""

    def __init__(self, n: int, dcs: int, seed: int) -> None:
        if not 1 <= dcs <= len(DATACENTRES):
            raise ValueError(f"datacentres must be 1..{len(DATACENTRES)}")
        rng = random.Random(seed)
        self.site = [i % dcs for i in range(n)]
        self.access = [rng.uniform(0.00005, 0.0005) for _ in range(n)]
        places = [(lat, lon) for _, lat, lon in DATACENTRES[:dcs]]
        self.between = [[INTRA_DC_S] * dcs for _ in range(dcs)]
        for a in range(dcs):
            for b in range(a + 1, dcs):
                km = _great_circle_km(places[a], places[b]) * rng.uniform(*ROUTE_INFLATION)
                self.between[a][b] = self.between[b][a] = INTER_DC_BASE_S + km / FIBRE_KM_PER_S

    def one_way(self, src: int, dst: int) -> float:
        return self.between[self.site[src]][self.site[dst]] + self.access[src] + self.access[dst]

    def rtt(self, a: int, b: int) -> float:
        return self.one_way(a, b) + self.one_way(b, a)


@dataclass(frozen=True)
class CoordinateReport:
    nodes: int
    datacentres: int
    duration_s: float
    pairs: int
    median_relative_error: float
    p90_relative_error: float
    median_abs_error_ms: float
    samples_per_node: float


def check_coordinates(
    nodes: int = 50, dcs: int = 5, duration: float = 300.0, seed: int = 1
) -> CoordinateReport:
    """Run `nodes` hosts with coordinates on over a WAN of `dcs` datacentres
    for `duration` simulated seconds and compare every pair's estimate."""
    wan = Wan(nodes, dcs, seed)
    cfg = Config.for_profile("lan", coordinates=True)
    sim = Simulation(nodes, cfg, seed=seed, faults=FaultModel(link_latency=wan.one_way))
    seeds = [sim.hosts[0].address]
    for h in sim.hosts:
        sim.start(h.idx, seeds if h.idx else [], at=0.05 * h.idx)
    sim.run_until(duration)
    relative, absolute = [], []
    for a in sim.hosts:
        assert a.node is not None
        coords = a.node.coordinates
        for b in sim.hosts:
            theirs = coords.of(b.name)
            if b.idx == a.idx or theirs is None:
                continue
            true = wan.rtt(a.idx, b.idx)
            est = estimate_rtt(coords.own, theirs)
            relative.append(abs(est - true) / true)
            absolute.append(abs(est - true))
    samples = [h.node.coordinates.samples for h in sim.hosts if h.node is not None]
    if not relative:
        raise RuntimeError("no node learned any coordinate")
    relative.sort()
    return CoordinateReport(
        nodes=nodes,
        datacentres=dcs,
        duration_s=duration,
        pairs=len(relative),
        median_relative_error=statistics.median(relative),
        p90_relative_error=relative[int(0.9 * (len(relative) - 1))],
        median_abs_error_ms=statistics.median(absolute) * 1000,
        samples_per_node=statistics.mean(samples),
    )

"""The standard simulation scenario behind `gossip simulate`.

Timeline: hosts 0-2 (the seeds) start at t=0, each joining one before it; the
others start at random moments within `start_spread` seconds, each joining
through one random seed. The
cluster has converged when every up host sees all N members alive. Ten
seconds after convergence (or at 30 % of the run if it never converges) the
faults strike together: `crash` hosts are killed, `pause` hosts stall for
`pause_s`, and with `partition_s` the cluster splits into two random halves
that are healed after that long. Crash, pause and partition victims are never
seeds. Everything is drawn from the seed, so a scenario replays exactly;
only `wall_s` and `cpu_s` differ between runs.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass
from typing import Any

from gossip.core.membership.config import Config
from gossip.core.membership.wireschema import MAX_RELAY
from gossip.faults import FaultModel
from gossip.sim.checks import Verdicts, all_see_alive
from gossip.sim.engine import Simulation
from gossip.sim.queryload import QueryLoad
from gossip.sim.userevents import EventLoad

N_SEEDS = 3
CHECK_EVERY = 0.25
"""Resolution of convergence and heal measurements, in simulated seconds."""
FAULT_DELAY = 10.0
EVENT_TAIL = 15.0
"""Seconds at the end of a run with no new user events, to let the last spread."""


@dataclass
class Scenario:
    nodes: int = 10
    duration: float = 60.0
    seed: int = 1
    profile: str = "lan"
    loss: float = 0.0
    latency_ms: float = 1.0
    jitter_ms: float = 0.5
    duplicate: float = 0.0
    reorder: float = 0.0
    crash: int = 0
    pause: int = 0
    pause_s: float = 4.0
    partition_s: float = 0.0
    start_spread: float = 1.0
    events_per_s: float = 0.0
    """User events fired cluster-wide per second, from convergence until
    EVENT_TAIL seconds before the end (sim/userevents.py)."""
    queries_per_s: float = 0.0
    """Queries to every member per second cluster-wide, same window (sim/queryload.py)."""
    query_relay: int = 0
    """Members each query's replies are also relayed through (0..5)."""

    def validate(self) -> None:
        if self.nodes < 1:
            raise ValueError("--nodes must be >= 1")
        if self.duration <= 0:
            raise ValueError("--duration must be > 0")
        victims = self.crash + self.pause
        if victims > max(0, self.nodes - N_SEEDS):
            raise ValueError("--crash + --pause must leave the seeds (3 nodes) untouched")
        if self.events_per_s < 0 or self.queries_per_s < 0:
            raise ValueError("--events-per-s and --queries-per-s must be >= 0")
        if not 0 <= self.query_relay <= MAX_RELAY:
            raise ValueError(f"--query-relay must be within 0..{MAX_RELAY}")
        if self.partition_s and self.nodes < 2:
            raise ValueError("a partition needs at least 2 nodes")


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


class _Run:
    def __init__(self, sc: Scenario) -> None:
        self.sc = sc
        cfg = Config.for_profile(sc.profile)
        latency = sc.latency_ms / 1000
        faults = FaultModel[int](
            loss=sc.loss,
            latency=latency,
            jitter=sc.jitter_ms / 1000,
            duplicate=sc.duplicate,
            reorder=sc.reorder,
            reorder_window=(2 * latency, 5 * latency),
        )
        self.sim = Simulation(sc.nodes, cfg, seed=sc.seed, faults=faults)
        self.verdicts = Verdicts(self.sim)
        self.plan_rng = random.Random(f"scenario-{sc.seed}")
        self.converged_at: float | None = None
        self.fault_at: float | None = None
        self.heal_at: float | None = None
        self.healed_at: float | None = None
        self.crashed: list[str] = []
        self.paused: list[str] = []
        self.events = EventLoad(self.sim, sc.events_per_s, sc.seed)
        self.queries = QueryLoad(self.sim, sc.queries_per_s, sc.seed, sc.query_relay)

    def start(self) -> None:
        sim, sc, rng = self.sim, self.sc, self.plan_rng
        seeds = [h.address for h in sim.hosts[:N_SEEDS]]
        for h in sim.hosts:
            # The seeds bootstrap in order (each joins the ones before it); the
            # rest start at random moments, each through one random seed.
            at = 0.0 if h.idx < N_SEEDS else rng.uniform(0, sc.start_spread)
            choices = seeds[: h.idx] if h.idx < N_SEEDS else seeds
            sim.start(h.idx, [rng.choice(choices)] if choices else [], at=at)
        sim.call_at(CHECK_EVERY, self._check)
        sim.call_at(0.3 * sc.duration, self._faults)

    def _check(self) -> None:
        sim = self.sim
        if self.converged_at is None and all_see_alive(sim, self.sc.nodes):
            self.converged_at = sim.now
            sim.call_at(sim.now + FAULT_DELAY, self._faults)
            self.events.start(sim.now, self.sc.duration - EVENT_TAIL)
            self.queries.start(sim.now, self.sc.duration - EVENT_TAIL)
        healing = self.heal_at is not None and self.healed_at is None
        if healing and all_see_alive(sim, self.sc.nodes - len(self.crashed)):
            self.healed_at = sim.now
        if self.converged_at is None or (self.heal_at is not None and self.healed_at is None):
            sim.call_at(sim.now + CHECK_EVERY, self._check)

    def _faults(self) -> None:
        if self.fault_at is not None:
            return
        sim, sc, rng = self.sim, self.sc, self.plan_rng
        self.fault_at = sim.now
        candidates = [h.name for h in sim.hosts[N_SEEDS:]]
        victims = rng.sample(candidates, sc.crash + sc.pause)
        self.crashed, self.paused = victims[: sc.crash], victims[sc.crash :]
        for name in self.crashed:
            self.verdicts.crash(name)
        self.events.crashed.update(self.crashed)
        for name in self.paused:
            sim.pause(sim.by_name[name].idx, sc.pause_s)
        if sc.partition_s:
            order = list(range(sc.nodes))
            rng.shuffle(order)
            half = sc.nodes // 2
            sim.faults.partition(order[:half], order[half:])
            sim.call_at(sim.now + sc.partition_s, self._heal)

    def _heal(self) -> None:
        self.sim.faults.heal()
        self.heal_at = self.sim.now
        self.sim.call_at(self.sim.now + CHECK_EVERY, self._check)

    def result(self, wall: float) -> dict[str, Any]:
        sim, sc = self.sim, self.sc
        firsts, alls = [], []
        for name in self.crashed:
            first, every = self.verdicts.detection(name)
            firsts.append(first)
            alls.append(every)
        node_seconds = sc.nodes * sc.duration

        def worst(values: list[float | None]) -> float | None:
            if not values or any(v is None for v in values):
                return None
            return max(v for v in values if v is not None)

        return {
            "nodes": sc.nodes,
            "duration_s": sc.duration,
            "seed": sc.seed,
            "wall_s": round(wall, 2),
            "converged_s": _r(self.converged_at),
            "fault_at_s": _r(self.fault_at),
            "crashed": len(self.crashed),
            "detected": sum(v is not None for v in alls),
            "detect_first_s": _r(worst(firsts)),
            "detect_all_s": _r(worst(alls)),
            "paused": len(self.paused),
            "false_suspicions": self.verdicts.false_suspicions,
            "falsely_suspected_nodes": len(self.verdicts.suspected),
            "false_deaths": len(self.verdicts.false_deaths),
            "healed_s": _r(
                None if self.healed_at is None else self.healed_at - (self.heal_at or 0)
            ),
            "msgs_per_node_s": round(sim.datagrams / node_seconds, 3),
            "bytes_per_node_s": round(sim.datagram_bytes / node_seconds, 1),
            "stream_bytes_per_node_s": round(sim.stream_bytes / node_seconds, 1),
            "max_packet_bytes": sim.max_datagram,
            "events": sim.events,
            **(self.events.figures() if sc.events_per_s else {}),
            **(self.queries.figures() if sc.queries_per_s else {}),
            "scenario": asdict(sc),
        }


def run_scenario(sc: Scenario) -> dict[str, Any]:
    """Run `sc` to its end and return the figures (see `gossip simulate`)."""
    sc.validate()
    started, cpu = time.perf_counter(), time.process_time()
    run = _Run(sc)
    run.start()
    run.sim.run_until(sc.duration)
    result = run.result(time.perf_counter() - started)
    result["cpu_s"] = round(time.process_time() - cpu, 2)
    return result

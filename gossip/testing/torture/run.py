"""One fault run from a seed: `run_torture(seed, config) -> Result`.

Rules: the whole run is one trio program under MockClock with autojump, so time
is virtual and a run of minutes takes seconds. Determinism: every rng is seeded
from the seed (see cluster and clients), and trio's scheduler, which shuffles
runnable tasks with a private generator, is seeded for the run and put in its
deterministic mode (the hook trio keeps for Hypothesis) and restored after; no
thread is started. The same seed and config give the same history, byte for
byte, within one interpreter and across interpreters started with the same
PYTHONHASHSEED. Phases: the cluster forms; clients and the schedule run for
`duration`; every fault is healed and every node started; then the store must
converge and ownership settle within their bounds, and the fencing sink is
watched until FENCE_WATCH after the last fault's window; then the checkers run
on what was recorded. Wall-clock and CPU time are measured only for the figures
(for the whole run, and for the load phase alone: `load_speed`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
import trio
import trio.testing

from gossip.core.types import MemberState
from gossip.testing.memnet import MemoryNetwork
from gossip.testing.torture import checkers
from gossip.testing.torture.clients import Clients, history_lines
from gossip.testing.torture.cluster import RESTART_DELAY, Cluster, Hook
from gossip.testing.torture.config import TortureConfig
from gossip.testing.torture.schedule import Schedule, Step, generate

FORM_LIMIT = 120.0
PROGRESS_EVERY = 5.0
FENCE_WATCH = 5.0
"""Virtual seconds the sink is watched after the last fault's ownership window."""
Progress = Callable[[float, float, int], None]
"""(virtual seconds so far, virtual seconds planned, operations so far)."""


@dataclass
class Result:
    seed: int
    schedule: Schedule
    history: list[str]
    verdicts: dict[str, checkers.Verdict]
    figures: dict[str, Any]
    crashes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts.values())

    @property
    def failed(self) -> list[str]:
        return [name for name, v in self.verdicts.items() if not v.ok]

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "ok": self.ok,
            "figures": self.figures,
            "verdicts": {name: v.to_json() for name, v in self.verdicts.items()},
            "crashes": self.crashes[:20],
        }


def run_torture(
    seed: int,
    config: TortureConfig | None = None,
    *,
    schedule: Schedule | None = None,
    hook: Hook | None = None,
    progress: Progress | None = None,
) -> Result:
    """Run one seed (or replay `schedule`, which carries its own seed and config)."""
    if schedule is None:
        schedule = generate(seed, config or TortureConfig())
    clock = trio.testing.MockClock(autojump_threshold=0)
    started, cpu = time.perf_counter(), time.process_time()
    with _deterministic_trio(schedule.seed), _quiet_logs():
        out = trio.run(_main, schedule, clock, hook, progress, clock=clock)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    virtual = out.figures["virtual_seconds"]
    out.figures["wall_seconds"] = round(wall, 3)
    out.figures["cpu_seconds"] = round(cpu, 3)
    out.figures["speed"] = round(virtual / wall, 1) if wall else None
    out.figures["speed_cpu"] = round(virtual / cpu, 1) if cpu else None
    return out


@contextlib.contextmanager
def _deterministic_trio(seed: int) -> Iterator[None]:
    """Seed trio's scheduler for one run. trio shuffles each batch of runnable tasks
    with the private generator `trio._core._run._r`; with
    `_ALLOW_DETERMINISTIC_SCHEDULING` (what pytest-trio sets under Hypothesis) it
    sorts the batch by spawn order before shuffling, so a seeded generator gives
    one order. Both are private: this is the one place that touches them."""
    run_mod: Any = trio._core._run
    saved_state = run_mod._r.getstate()
    saved_flag = run_mod._ALLOW_DETERMINISTIC_SCHEDULING
    run_mod._r.seed(f"trio/{seed}")
    run_mod._ALLOW_DETERMINISTIC_SCHEDULING = True
    try:
        yield
    finally:
        run_mod._ALLOW_DETERMINISTIC_SCHEDULING = saved_flag
        run_mod._r.setstate(saved_state)


@contextlib.contextmanager
def _quiet_logs() -> Iterator[None]:
    """Hundreds of thousands of log lines would cost more than the run: drop them."""
    saved = structlog.get_config()
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL),
        cache_logger_on_first_use=False,
    )
    try:
        yield
    finally:
        structlog.configure(**saved)


async def _main(
    schedule: Schedule,
    clock: trio.testing.MockClock,
    hook: Hook | None,
    progress: Progress | None,
) -> Result:
    seed, cfg = schedule.seed, schedule.config
    with tempfile.TemporaryDirectory(prefix="gossip-torture-", dir=_scratch()) as tmp:
        net = MemoryNetwork(random.Random(f"net/{seed}"))
        cluster = Cluster(seed, cfg, Path(tmp), net, clock.jump, hook)
        clients = Clients(cluster, seed)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(net.run)
            await cluster.start(nursery)
            formed = await _wait(lambda: _all_alive(cluster), FORM_LIMIT)
            cluster.base = trio.current_time()
            if progress is not None:
                nursery.start_soon(_report, cluster, clients, progress)
            load_started = time.perf_counter(), time.process_time()
            async with trio.open_nursery() as load:
                load.start_soon(clients.run)
                load.start_soon(_play, cluster, schedule.steps)
                await trio.sleep(cfg.duration)
                clients.stopping = True
            load_wall = time.perf_counter() - load_started[0]
            load_cpu = time.process_time() - load_started[1]
            await cluster.heal_all()
            converged = await _converge(cluster, cfg.converge_bound)
            owners = await _owners(cluster, cfg.owner_bound)
            # Holders keep writing to the fencing sink past every fault's window.
            await trio.sleep_until(cluster.base + cfg.duration + cfg.owner_bound + FENCE_WATCH)
            final = _snapshot(cluster, clients)
            virtual = trio.current_time()
            nursery.cancel_scope.cancel()
    ops = clients.ops
    private = {i: clients.private_keys(i) for i in range(cfg.clients)}
    verdicts = [
        checkers.lost_writes(ops, final, schedule.steps),
        checkers.resurrections(ops, final, schedule.steps),
        checkers.read_your_writes(ops, private, schedule.steps),
        checkers.convergence(converged, cfg.converge_bound),
        checkers.ownership(
            owners,
            cluster.sink.refused,
            cluster.handler_runs,
            schedule.steps,
            cluster.crashes,
            cfg.owner_bound,
            RESTART_DELAY,
        ),
        checkers.membership(
            cluster.deaths, schedule.steps, cluster.crashes, cfg.grace, RESTART_DELAY
        ),
        checkers.crashes(cluster.crashes),
    ]
    counts = {s: sum(op.status == s for op in ops) for s in ("ok", "fail", "unknown")}
    figures: dict[str, Any] = {
        "seed": seed,
        "nodes": cfg.nodes,
        "ops": len(ops),
        **counts,
        "faults_applied": sum("begin" in a for a in cluster.applied),
        "crashes": len(cluster.crashes),
        "start_failures": len(cluster.start_failures),
        "formed_after": round(formed, 3),
        "virtual_seconds": round(virtual, 3),
        "load_wall_seconds": round(load_wall, 3),
        "load_cpu_seconds": round(load_cpu, 3),
        "load_speed": round(cfg.duration / load_wall, 1) if load_wall else None,
        "load_speed_cpu": round(cfg.duration / load_cpu, 1) if load_cpu else None,
        "datagrams_delivered": net.delivered,
        "datagrams_dropped": net.dropped,
    }
    return Result(
        seed,
        schedule,
        history_lines(ops),
        {v.name: v for v in verdicts},
        figures,
        cluster.crashes,
    )


async def _play(cluster: Cluster, steps: tuple[Step, ...]) -> None:
    """Begin and end each step at its time (ends before begins at the same moment)."""
    events: list[tuple[float, int, int, Step]] = []
    for i, s in enumerate(steps):
        events.append((s.at, 1, i, s))
        if s.action != "clock":
            events.append((s.ends, 0, i, s))
    events.sort(key=lambda e: e[:3])
    for at, kind, _, step in events:
        await trio.sleep_until(cluster.base + at)
        await (cluster.begin(step) if kind == 1 else cluster.end(step))


async def _report(cluster: Cluster, clients: Clients, progress: Progress) -> None:
    while True:
        progress(cluster.now(), cluster.config.duration, len(clients.ops))
        await trio.sleep(PROGRESS_EVERY)


async def _wait(check: Callable[[], bool], limit: float) -> float:
    """Virtual seconds until `check()` holds, polled each second; -1 if never within `limit`."""
    start = trio.current_time()
    with trio.move_on_after(limit):
        while not check():  # noqa: ASYNC110 - virtual time: polling is free
            await trio.sleep(1.0)
        return trio.current_time() - start
    return -1.0


def _all_alive(cluster: Cluster) -> bool:
    names = list(cluster.nodes)
    for node in cluster.nodes.values():
        if not node.running or node.agent is None:
            return False
        for name in names:
            m = node.agent.member(name)
            if m is None or m.state != MemberState.ALIVE:
                return False
    return True


def _digest_problems(cluster: Cluster) -> list[dict[str, Any]]:
    stores = {n.name: n.store for n in cluster.nodes.values() if n.running and n.store}
    problems: list[dict[str, Any]] = []
    if len(stores) < len(cluster.nodes):
        return [{"reason": "not every node is running"}]
    views = {name: s.placement.members for name, s in stores.items()}
    if len(set(views.values())) > 1:
        return [
            {"reason": "placement views differ", "views": {k: list(v) for k, v in views.items()}}
        ]
    placement = next(iter(stores.values())).placement
    for part in range(cluster.config.partitions):
        roots = {r: stores[r].storage.tree(part).root for r in placement.replicas(part)}
        if len(set(roots.values())) > 1:
            counts = {r: stores[r].storage.count(part) for r in roots}
            problems.append({"partition": part, "counts": counts})
    return problems


async def _converge(cluster: Cluster, bound: float) -> dict[str, Any]:
    after = await _wait(lambda: _all_alive(cluster) and not _digest_problems(cluster), bound)
    if after >= 0:
        return {"converged": True, "after": round(after, 3)}
    return {"converged": False, "after": None, "differing": _digest_problems(cluster)}


def _owner_problems(cluster: Cluster) -> list[dict[str, Any]]:
    problems: list[dict[str, Any]] = []
    owns = {n.name: n.ownership for n in cluster.nodes.values() if n.running and n.ownership}
    for item in cluster.items:
        holders = sorted(name for name, o in owns.items() if item in o.held())
        views = {name: o.owner(item) for name, o in owns.items()}
        if len(holders) != 1 or set(views.values()) != set(holders):
            problems.append({"item": item, "holders": holders, "views": views})
    return problems


async def _owners(cluster: Cluster, bound: float) -> dict[str, Any]:
    after = await _wait(lambda: not _owner_problems(cluster), bound)
    if after >= 0:
        return {"settled": True, "after": round(after, 3)}
    return {"settled": False, "after": None, "problems": _owner_problems(cluster)}


def _snapshot(cluster: Cluster, clients: Clients) -> checkers.Final:
    """Every key's copy on each of its replicas (as the first running node places them)."""
    keys = set(clients.shared) | set(clients.one_shot)
    for i in range(cluster.config.clients):
        keys.update(clients.private_keys(i))
    stores = [n.store for n in cluster.nodes.values() if n.running and n.store]
    if not stores:
        return {}
    by_name = {n.name: n.store for n in cluster.nodes.values() if n.running and n.store}
    final: dict[str, dict[str, tuple[checkers.Version, str | None] | None]] = {}
    for key in sorted(keys):
        final[key] = {}
        for replica in stores[0].replicas_of_key(key):
            store = by_name.get(replica)
            if store is None:
                continue
            r = store.get_local(key)
            final[key][replica] = (
                None
                if r is None
                else (
                    (r.version.wall, r.version.counter, r.version.node),
                    None if r.value is None else r.value.decode(),
                )
            )
    return final


def _scratch() -> str | None:
    """A RAM-backed folder when the host has one: the files are real sqlite files,
    only the device is faster."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None

"""N complete agents on the in-memory network, with the faults a schedule asks for.

Rules: each node is the real Agent with the real StoreService and OwnershipService,
its own VirtualClock, its own Disk and a data directory that outlives restarts.
Every random choice comes from the run's seed: the agents' and services' rngs,
the node ids (written as the identity file before a first start), the network's
draws. Node-level faults count per node: a node is down while any kill, stop, wipe
or outage holds it, and starts again (on the same directory, or an emptied one
after a wipe) when the last one ends. A kill -9 takes the host off the network
first, then cancels the agent at once; a graceful stop leaves first. An agent
that dies of an exception is recorded as a crash and started again after
RESTART_DELAY, as a supervisor would; so is one that cannot open its storage at
start (a full disk). Network-wide faults are recomputed from the
set of active steps whenever one starts or ends (the latest partition wins; cuts,
loss, duplication, reordering and delay combine). Ownership is watched three
ways: every acquire and release, every handler run (a recording ItemHandlers
without subprocesses), and a fencing sink that every holder writes its token to
each second and that refuses a token lower than one it has accepted.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from gossip.core.ownership.assignment import ItemAcquired, ItemReleased
from gossip.runtime.agent import Agent
from gossip.runtime.identity import Identity, save_identity
from gossip.runtime.metrics import Registry
from gossip.runtime.ownership.handlers import HandlerJob, ItemHandlers
from gossip.runtime.ownership.service import OwnershipService
from gossip.runtime.settings import AgentSettings
from gossip.runtime.store.service import StoreService
from gossip.runtime.store.settings import StoreSettings
from gossip.runtime.store.storage import StorageError
from gossip.testing.memnet import MemoryNetwork
from gossip.testing.torture.clocks import VirtualClock
from gossip.testing.torture.config import TortureConfig
from gossip.testing.torture.disk import FULL, IO_ERROR, Disk
from gossip.testing.torture.schedule import Step

PORT = 7946
RESTART_DELAY = 5.0
OWNERSHIP_PARTITIONS = 256
"""Small enough that every table build runs inline, never in a worker thread."""
FENCE_PERIOD = 1.0
HANDLER_TIME = 0.05


@dataclass
class Node:
    name: str
    ip: str
    data_dir: Path
    clock: VirtualClock
    disk: Disk
    gen: int = 0
    agent: Agent | None = None
    store: StoreService | None = None
    ownership: OwnershipService | None = None
    running: bool = False
    starting: bool = False
    down: int = 0
    wipe: bool = False
    scope: trio.CancelScope | None = None
    done: trio.Event = field(default_factory=trio.Event)


@dataclass
class Sink:
    """A token-checking sink: per item, the highest token accepted so far."""

    best: dict[str, tuple[int, str]] = field(default_factory=dict)
    refused: list[dict[str, Any]] = field(default_factory=list)

    def write(self, t: float, node: str, item: str, token: int) -> bool:
        best = self.best.get(item)
        if best is not None and token < best[0]:
            self.refused.append(
                {"t": t, "node": node, "item": item, "token": token, "best": list(best)}
            )
            return False
        self.best[item] = (token, node)
        return True


Hook = Callable[["Cluster", Node], None]
"""Called after a node's agent and services are built, before it starts (tests use it
to break a build on purpose)."""


class Cluster:
    def __init__(
        self,
        seed: int,
        config: TortureConfig,
        root: Path,
        net: MemoryNetwork,
        stall: Callable[[float], None],
        hook: Hook | None = None,
    ) -> None:
        self.seed = seed
        self.config = config
        self.net = net
        self.hook = hook
        self.base = 0.0
        rng = random.Random(f"clocks/{seed}")
        skew = "clock" in config.faults
        self.nodes: dict[str, Node] = {}
        for i, name in enumerate(config.names):
            drift = rng.uniform(-1e-4, 1e-4) if skew else 0.0
            offset = rng.randint(-500, 500) if skew else 0
            self.nodes[name] = Node(
                name,
                f"10.0.0.{i + 1}",
                root / name,
                VirtualClock(drift=drift, offset_ms=offset),
                Disk(stall),
            )
        self.items = [f"item-{i}" for i in range(config.items)]
        self.sink = Sink()
        self.owner_events: list[dict[str, Any]] = []
        self.handler_runs: list[dict[str, Any]] = []
        self.deaths: list[dict[str, Any]] = []
        self.crashes: list[dict[str, Any]] = []
        self.start_failures: list[dict[str, Any]] = []
        """Starts that failed because storage could not be opened (not crashes)."""
        self.applied: list[dict[str, Any]] = []
        self.active: list[Step] = []
        self._nursery: trio.Nursery | None = None

    def now(self) -> float:
        return round(trio.current_time() - self.base, 6)

    # ---- life of a node --------------------------------------------------------

    async def start(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        for node in self.nodes.values():
            self._new_identity(node)
            await self.launch(node)

    def _new_identity(self, node: Node) -> None:
        node.data_dir.mkdir(parents=True, exist_ok=True)
        rng = random.Random(f"identity/{self.seed}/{node.name}/{node.gen}")
        save_identity(node.data_dir, Identity(f"{rng.getrandbits(128):032x}", 0, node.name))

    def _build(self, node: Node) -> Agent:
        c = self.config
        rng = random.Random(f"agent/{self.seed}/{node.name}/{node.gen}")
        settings = AgentSettings(
            name=node.name,
            bind=(node.ip, PORT),
            api=None,
            data_dir=node.data_dir,
            profile="local",
            join=tuple(f"{n.ip}:{PORT}" for n in self.nodes.values() if n is not node),
            core={"dead_reap_time": c.reap, "reconnect_interval": 5.0},
        )
        agent = Agent(
            settings,
            network=self.net.host(node.ip),
            rng=random.Random(rng.getrandbits(64)),
            clock=node.clock,
        )
        store = StoreService(
            StoreSettings(
                replicas=c.replicas,
                partitions=c.partitions,
                sync_interval=c.sync_interval,
                request_timeout=c.request_timeout,
                session_timeout=max(2.0, c.request_timeout),
                tombstone_horizon=c.horizon,
                gc_interval=c.gc_interval,
                roots_by_datagram=c.roots_by_datagram,
            ).checked(),
            rng=random.Random(rng.getrandbits(64)),
            connect=node.disk.connect,
        )
        own = OwnershipService(
            items=self.items,
            on_acquire="recorded",
            on_release="recorded",
            settle_time=c.settle,
            partitions=OWNERSHIP_PARTITIONS,
        )
        agent.add_service(store)
        agent.add_service(own)
        own.handlers = RecordingHandlers(self, node, agent.metrics)
        own.subscribe(lambda out: self._owner_event(node, out))
        node.agent, node.store, node.ownership = agent, store, own
        return agent

    async def launch(self, node: Node) -> None:
        assert self._nursery is not None
        if node.starting or node.running:
            return  # a supervisor restart and the end of a fault may meet here
        node.starting = True
        try:
            await self._launch(node)
        except StorageError as exc:
            # The agent cannot open its data directory (its disk is full, say) and
            # exits at start; a supervisor starts it again a little later.
            self.net.down.add(node.ip)
            self.start_failures.append({"t": self.now(), "node": node.name, "error": str(exc)})
            assert self._nursery is not None
            self._nursery.start_soon(self._restart_later, node)
        finally:
            node.starting = False

    async def _launch(self, node: Node) -> None:
        assert self._nursery is not None
        node.gen += 1
        self.net.down.discard(node.ip)
        if node.wipe:
            shutil.rmtree(node.data_dir, ignore_errors=True)
            node.wipe = False
            self._new_identity(node)
        agent = self._build(node)
        if self.hook is not None:
            self.hook(self, node)
        node.done = trio.Event()
        await self._nursery.start(self._life, node, agent)

    async def _life(self, node: Node, agent: Agent, *, task_status: trio.TaskStatus[None]) -> None:
        started = False
        try:
            with trio.CancelScope() as scope:
                node.scope = scope
                async with trio.open_nursery() as nursery:
                    await nursery.start(agent.serve)
                    node.running = True
                    started = True
                    task_status.started()
                    nursery.start_soon(self._watch_members, node, agent)
                    nursery.start_soon(self._fence_writer, node)
        except* Exception as group:
            errors = [f"{type(e).__name__}: {e}" for e in _leaves(group)]
            self.crashes.append({"t": self.now(), "node": node.name, "errors": errors})
            if node.down == 0:
                assert self._nursery is not None
                self._nursery.start_soon(self._restart_later, node)
        finally:
            node.running = False
            node.scope = None
            node.done.set()
            if not started:
                task_status.started()

    async def _restart_later(self, node: Node) -> None:
        await trio.sleep(RESTART_DELAY)
        if node.down == 0 and not node.running:
            await self.launch(node)

    async def kill(self, node: Node) -> None:
        """kill -9: off the network at once, then the process is gone."""
        self.net.down.add(node.ip)
        if node.scope is not None:
            node.scope.cancel()
        await node.done.wait()

    async def stop(self, node: Node) -> None:
        """A graceful stop: leave (bounded), then exit."""
        if node.agent is not None and node.running:
            with trio.move_on_after(15.0):
                await node.agent.leave()
        await self.kill(node)

    async def _watch_members(self, node: Node, agent: Agent) -> None:
        async with agent.subscribe(maxsize=100_000) as sub:
            async for event in sub:
                if event.kind == "failed":
                    death = {"t": self.now(), "observer": node.name, "member": event.name}
                    death["accuser"] = str(event.detail.get("accuser", ""))
                    self.deaths.append(death)

    async def _fence_writer(self, node: Node) -> None:
        own = node.ownership
        assert own is not None
        while True:
            await trio.sleep(FENCE_PERIOD)
            await self.net.gate(node.ip)
            for item, token in sorted(own.held().items()):
                self.sink.write(self.now(), node.name, item, token)

    def _owner_event(self, node: Node, out: ItemAcquired | ItemReleased) -> None:
        kind = "acquired" if isinstance(out, ItemAcquired) else "released"
        self.owner_events.append(
            {
                "t": self.now(),
                "node": node.name,
                "gen": node.gen,
                "event": kind,
                "item": out.item,
                "token": out.token,
                "reason": out.reason,
            }
        )

    # ---- faults ----------------------------------------------------------------------

    async def begin(self, step: Step) -> None:
        self.applied.append({"t": self.now(), "begin": step.to_json()})
        if step.action == "clock":
            self.nodes[step.target].clock.step(step.step_ms)
            return
        self.active.append(step)
        if step.action in ("kill", "stop", "wipe"):
            await self._down(self.nodes[step.target], step.action)
        elif step.action == "outage":
            for node in self.nodes.values():
                await self._down(node, "kill")
        self._recompute()

    async def end(self, step: Step) -> None:
        if step not in self.active:
            return
        self.applied.append({"t": self.now(), "end": step.to_json()})
        self.active.remove(step)
        self._recompute()
        if step.action in ("kill", "stop", "wipe"):
            await self._up(self.nodes[step.target])
        elif step.action == "outage":
            for node in self.nodes.values():
                await self._up(node)

    async def _down(self, node: Node, how: str) -> None:
        node.down += 1
        if how == "wipe":
            node.wipe = True
        if node.down > 1 or not node.running:
            self.net.down.add(node.ip)
            return
        if how == "stop":
            # A graceful stop takes as long as the leave does; the schedule goes on
            # meanwhile (later faults start at their times, as the checkers assume).
            assert self._nursery is not None
            self._nursery.start_soon(self._stop_in_background, node)
            return
        await self.kill(node)

    async def _stop_in_background(self, node: Node) -> None:
        await self.stop(node)
        if node.down == 0 and not node.running:
            await self.launch(node)  # its fault ended while it was still leaving

    async def _up(self, node: Node) -> None:
        node.down -= 1
        if node.down == 0 and not node.running:
            await self.launch(node)

    def _recompute(self) -> None:
        """Network and disk faults from the active steps."""
        net = self.net
        ip = {n.name: n.ip for n in self.nodes.values()}
        net.heal()
        faults = net.faults
        faults.loss = faults.duplicate = faults.reorder = 0.0
        faults.latency = faults.jitter = 0.0
        paused: set[str] = set()
        for node in self.nodes.values():
            node.disk.failure, node.disk.slow_ms = None, 0.0
        for s in self.active:
            if s.action == "partition":
                net.partition(*[[ip[n] for n in g] for g in s.groups])
            elif s.action == "oneway" and s.link is not None:
                net.cut(ip[s.link[0]], ip[s.link[1]])
            elif s.action == "isolate":
                for other in self.nodes.values():
                    if other.name != s.target:
                        net.cut(ip[s.target], other.ip)
                        net.cut(other.ip, ip[s.target])
            elif s.action == "loss":
                faults.loss = max(faults.loss, s.percent / 100)
            elif s.action == "duplicate":
                faults.duplicate = max(faults.duplicate, s.percent / 100)
            elif s.action == "reorder":
                faults.reorder = max(faults.reorder, s.percent / 100)
            elif s.action == "delay":
                faults.latency = max(faults.latency, s.delay_ms / 1000)
                faults.jitter = max(faults.jitter, s.jitter_ms / 1000)
            elif s.action == "pause":
                paused.add(ip[s.target])
            elif s.action in ("disk_full", "disk_error"):
                disk = self.nodes[s.target].disk
                disk.failure = FULL if s.action == "disk_full" else IO_ERROR
                disk.at = s.where
            elif s.action == "disk_slow":
                disk = self.nodes[s.target].disk
                disk.slow_ms = max(disk.slow_ms, s.delay_ms)
        for node in self.nodes.values():
            if node.ip in paused:
                net.pause(node.ip)
            else:
                net.resume(node.ip)

    async def heal_all(self) -> None:
        """End every fault still active and start every node that is down."""
        for step in list(self.active):
            await self.end(step)
        for node in self.nodes.values():
            node.down = 0
            if not node.running:
                await self.launch(node)


class RecordingHandlers(ItemHandlers):
    """The real per-item ordering of handler runs, with each run recorded instead of a
    subprocess (a short virtual-time sleep stands for the work)."""

    def __init__(self, cluster: Cluster, node: Node, metrics: Registry) -> None:
        super().__init__(node.name, {"acquired": "recorded", "released": "recorded"}, metrics)
        self.cluster = cluster
        self.gen = node.gen

    async def _execute(self, command: str, job: HandlerJob) -> int | None:
        self.cluster.handler_runs.append(
            {
                "t": self.cluster.now(),
                "node": self.node,
                "gen": self.gen,
                "event": job.event,
                "item": job.item,
                "token": job.token,
            }
        )
        await trio.sleep(HANDLER_TIME)
        return 0


def _leaves(group: BaseException) -> list[BaseException]:
    if isinstance(group, BaseExceptionGroup):
        return [leaf for e in group.exceptions for leaf in _leaves(e)]
    return [group]

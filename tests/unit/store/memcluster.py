"""Store agents on the in-memory network in virtual time, with their own wall
clocks and data dirs: crash, restart, isolate and heal them in a test.

Rules: every agent's wall clock follows trio's (virtual) clock plus an offset
the test may step at any moment; a crash stops the agent at once (no leave) and
keeps its sqlite file as committed; a restart opens the same file.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from gossip.core.types import MemberState
from gossip.runtime.agent import Agent
from gossip.runtime.settings import AgentSettings
from gossip.runtime.store.service import StoreService
from gossip.runtime.store.settings import StoreSettings
from gossip.testing.memnet import MemoryNetwork

BASE_WALL_MS = 1_760_000_000_000
CORE = {
    "probe_interval": 0.5,
    "probe_timeout": 0.2,
    "gossip_interval": 0.1,
    "push_pull_interval": 5.0,
    "dead_reap_time": 10.0,
    "reconnect_interval": 2.0,
    "reconnect_max_backoff": 4.0,
}


class VirtualWall:
    """Wall time that follows trio's clock, plus an offset a test may step."""

    def __init__(self, offset_ms: int = 0) -> None:
        self.offset_ms = offset_ms

    def wall_ms(self) -> int:
        return BASE_WALL_MS + int(trio.current_time() * 1000) + self.offset_ms


class MemCluster:
    def __init__(self, nursery: trio.Nursery, tmp: Path, store: StoreSettings) -> None:
        self.nursery = nursery
        self.tmp = tmp
        self.store = store
        self.net = MemoryNetwork(random.Random(7))
        self.names: list[str] = []
        self.agents: dict[str, Agent] = {}
        self.stores: dict[str, StoreService] = {}
        self.walls: dict[str, VirtualWall] = {}
        self._done: dict[str, trio.Event] = {}

    def ip(self, name: str) -> str:
        return f"10.0.0.{self.names.index(name) + 1}"

    async def start(self, name: str) -> StoreService:
        if name not in self.names:
            self.names.append(name)
            self.walls[name] = VirtualWall()
        self.net.down.discard(self.ip(name))
        first = self.ip(self.names[0])
        settings = AgentSettings(
            name=name,
            bind=(self.ip(name), 7946),
            api=None,
            profile="local",
            core=CORE,
            join=() if name == self.names[0] else (f"{first}:7946",),
            data_dir=self.tmp / name,
        )
        svc = StoreService(self.store, random.Random(len(self.agents)))
        agent = Agent(settings, network=self.net.host(self.ip(name)), clock=self.walls[name])
        agent.add_service(svc)
        done = self._done[name] = trio.Event()
        await self.nursery.start(self._serve, agent, done)
        self.agents[name], self.stores[name] = agent, svc
        return svc

    async def _serve(
        self, agent: Agent, done: trio.Event, *, task_status: trio.TaskStatus[None]
    ) -> None:
        try:
            await agent.serve(task_status=task_status)
        finally:
            done.set()

    async def crash(self, name: str) -> None:
        """kill -9: nothing more in or out, the data dir as last committed."""
        self.net.down.add(self.ip(name))
        self.agents.pop(name).stop()
        self.stores.pop(name)
        await self._done[name].wait()

    def up(self) -> list[str]:
        return list(self.agents)

    def see_each_other(self, names: list[str] | None = None) -> bool:
        names = self.up() if names is None else names
        return all(
            (m := self.agents[a].member(b)) is not None and m.state == MemberState.ALIVE
            for a in names
            for b in names
        ) and all(len(self.stores[a].placement.members) == len(names) for a in names)

    def digests_agree(self) -> bool:
        roots: dict[str, set[str]] = {}
        for s in self.stores.values():
            for p, info in s.digest()["partitions"].items():
                if info["replica"]:
                    roots.setdefault(p, set()).add(info["root"])
        return all(len(v) == 1 for v in roots.values())

    def holders(self, key: str) -> set[str]:
        return {n for n, s in self.stores.items() if s.get_local(key) is not None}


async def wait_until(check: Callable[[], bool], limit: float) -> None:
    with trio.fail_after(limit):
        while not check():  # noqa: ASYNC110 - virtual time: polling is free
            await trio.sleep(0.1)


@asynccontextmanager
async def running(tmp: Path, store: StoreSettings, names: str) -> AsyncIterator[MemCluster]:
    """A cluster of the agents named by the letters of `names`, all seeing each other."""
    async with trio.open_nursery() as nursery:
        c = MemCluster(nursery, tmp, store)
        for name in names:
            await c.start(name)
        await wait_until(c.see_each_other, 60)
        yield c
        nursery.cancel_scope.cancel()

"""Store agents on the in-memory network in virtual time, for tests under trio's
MockClock: each is the real Agent with the real StoreService and its own wall
clock; start, crash, restart, isolate and heal them in a test.

Rules: every agent's wall clock follows trio's (virtual) clock plus an offset
the test may step at any moment. With a `tmp` directory each agent keeps its
sqlite file there (a crash stops the agent at once, no leave, and keeps the file
as committed; a restart opens the same file); without one sqlite is in memory,
unless a test passes its own `connect` (the disk-fault seam). Agents are named
by the test ("a", "b") or numbered (`add(i)` starts "n{i}" at 10.0.0.{i+1});
every agent joins through the first one started.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from gossip.core.types import MemberState
from gossip.runtime.agent import Agent
from gossip.runtime.settings import AgentSettings
from gossip.runtime.store.service import StoreService
from gossip.runtime.store.settings import StoreSettings
from gossip.testing.memnet import MemoryNetwork

PORT = 7946
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
"""Faster membership timings, for tests that crash and restart agents."""


class VirtualWall:
    """Wall time that follows trio's clock, plus an offset a test may step."""

    def __init__(self, offset_ms: int = 0) -> None:
        self.offset_ms = offset_ms

    def wall_ms(self) -> int:
        return BASE_WALL_MS + int(trio.current_time() * 1000) + self.offset_ms


class MemCluster:
    def __init__(
        self,
        nursery: trio.Nursery,
        store: StoreSettings,
        *,
        tmp: Path | None = None,
        core: Mapping[str, Any] | None = None,
        seed: int = 7,
    ) -> None:
        self.nursery = nursery
        self.store = store
        self.tmp = tmp
        self.core = dict(core or {})
        self.net = MemoryNetwork(random.Random(seed))
        self.names: list[str] = []
        self.ips: dict[str, str] = {}
        self.agents: dict[str, Agent] = {}
        self.stores: dict[str, StoreService] = {}
        self.walls: dict[str, VirtualWall] = {}
        self._done: dict[str, trio.Event] = {}

    def ip(self, agent: str | int) -> str:
        """An agent's address, by name or number (known before it starts)."""
        if isinstance(agent, int):
            return f"10.0.0.{agent + 1}"
        return self.ips.get(agent) or f"10.0.0.{len(self.ips) + 1}"

    async def start(
        self,
        name: str,
        *,
        store: StoreSettings | None = None,
        connect: Callable[[str], sqlite3.Connection] | None = None,
        secret: Callable[[], bytes | None] | None = None,
    ) -> StoreService:
        """Start (or restart) the agent `name` and return its store."""
        if name not in self.names:
            self.ips.setdefault(name, self.ip(name))
            self.names.append(name)
            self.walls[name] = VirtualWall()
        ip = self.ips[name]
        index = self.names.index(name)
        self.net.down.discard(ip)
        first = self.ips[self.names[0]]
        settings = AgentSettings(
            name=name,
            bind=(ip, PORT),
            api=None,
            profile="local",
            core=self.core,
            join=() if name == self.names[0] else (f"{first}:{PORT}",),
            data_dir=None if self.tmp is None else self.tmp / name,
        )
        keyed = {} if secret is None else {"fingerprint_secret": secret}
        svc = StoreService(store or self.store, random.Random(index), connect=connect, **keyed)
        agent = Agent(
            settings,
            network=self.net.host(ip),
            rng=random.Random(index),
            clock=self.walls[name],
        )
        agent.add_service(svc)
        done = self._done[name] = trio.Event()
        await self.nursery.start(self._serve, agent, done)
        self.agents[name], self.stores[name] = agent, svc
        return svc

    async def add(
        self,
        i: int,
        *,
        store: StoreSettings | None = None,
        connect: Callable[[str], sqlite3.Connection] | None = None,
        secret: Callable[[], bytes | None] | None = None,
    ) -> StoreService:
        """Start agent n{i} at 10.0.0.{i+1} and return its store."""
        name = f"n{i}"
        self.ips.setdefault(name, self.ip(i))
        return await self.start(name, store=store, connect=connect, secret=secret)

    async def start_all(self, n: int) -> list[StoreService]:
        """Start agents n0 .. n{n-1} and wait until they all see each other."""
        stores = [await self.add(i) for i in range(n)]
        await self.settle()
        return stores

    async def _serve(
        self, agent: Agent, done: trio.Event, *, task_status: trio.TaskStatus[None]
    ) -> None:
        try:
            await agent.serve(task_status=task_status)
        finally:
            done.set()

    async def crash(self, name: str) -> None:
        """kill -9: nothing more in or out, the data dir as last committed."""
        self.net.down.add(self.ips[name])
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
            if a != b
        ) and all(set(self.stores[a].placement.members) == set(names) for a in names)

    def settled(self) -> bool:
        return self.see_each_other()

    async def settle(self, limit: float = 60.0) -> None:
        await wait_until(self.settled, limit)

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
            await trio.sleep(0.05)


@asynccontextmanager
async def running(
    store: StoreSettings,
    names: str = "",
    *,
    tmp: Path | None = None,
    core: Mapping[str, Any] | None = None,
    seed: int = 7,
) -> AsyncIterator[MemCluster]:
    """A cluster of the agents named by the letters of `names` (none: the test
    starts them), all seeing each other; every agent is stopped when the block ends."""
    async with trio.open_nursery() as nursery:
        c = MemCluster(nursery, store, tmp=tmp, core=core, seed=seed)
        for name in names:
            await c.start(name)
        if names:
            await c.settle()
        yield c
        nursery.cancel_scope.cancel()

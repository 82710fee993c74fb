"""Store agents on the in-memory network, for tests under trio's MockClock.

Each agent is the real Agent with the real StoreService; sqlite is in memory
unless a test passes its own `connect` (the disk-fault seam).
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import trio

from gossip.core.types import MemberState
from gossip.runtime.agent import Agent
from gossip.runtime.settings import AgentSettings
from gossip.runtime.store.service import StoreService
from gossip.runtime.store.settings import StoreSettings
from gossip.testing.memnet import MemoryNetwork

PORT = 7946


class MemCluster:
    def __init__(self, nursery: trio.Nursery, store: StoreSettings, seed: int = 1) -> None:
        self.nursery = nursery
        self.net = MemoryNetwork(random.Random(seed))
        self.store = store
        self.agents: dict[str, Agent] = {}
        self.stores: dict[str, StoreService] = {}

    @staticmethod
    def ip(i: int) -> str:
        return f"10.0.0.{i + 1}"

    async def add(
        self,
        i: int,
        *,
        store: StoreSettings | None = None,
        connect: Callable[[str], sqlite3.Connection] | None = None,
        secret: Callable[[], bytes | None] | None = None,
    ) -> StoreService:
        """Start agent n{i} (joining through n0) and return its store."""
        name = f"n{i}"
        settings = AgentSettings(
            name=name,
            bind=(self.ip(i), PORT),
            api=None,
            profile="local",
            join=() if i == 0 else (f"{self.ip(0)}:{PORT}",),
        )
        keyed = {} if secret is None else {"fingerprint_secret": secret}
        svc = StoreService(store or self.store, rng=random.Random(i), connect=connect, **keyed)
        agent = Agent(settings, network=self.net.host(self.ip(i)), rng=random.Random(i))
        agent.add_service(svc)
        self.net.down.discard(self.ip(i))
        await self.nursery.start(agent.serve)
        self.agents[name], self.stores[name] = agent, svc
        return svc

    async def start(self, n: int) -> list[StoreService]:
        stores = [await self.add(i) for i in range(n)]
        await self.settle()
        return stores

    def crash(self, name: str) -> None:
        agent = self.agents.pop(name)
        self.stores.pop(name)
        self.net.down.add(agent.address[0])
        agent.stop()

    def settled(self) -> bool:
        names = set(self.agents)
        return all(
            {m.name for m in a.members() if m.state == MemberState.ALIVE} >= names
            for a in self.agents.values()
        ) and all(set(s.placement.members) == names for s in self.stores.values())

    async def settle(self, limit: float = 60.0) -> None:
        await wait_until(self.settled, limit)


async def wait_until(check: Callable[[], bool], limit: float) -> None:
    with trio.fail_after(limit):
        while not check():  # noqa: ASYNC110 - virtual time: polling is free
            await trio.sleep(0.05)


@asynccontextmanager
async def running(store: StoreSettings) -> AsyncIterator[MemCluster]:
    """A MemCluster whose agents are all stopped when the block ends."""
    async with trio.open_nursery() as nursery:
        yield MemCluster(nursery, store)
        nursery.cancel_scope.cancel()

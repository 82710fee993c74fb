"""A network partition between two groups of agents, writes on both sides, then heal.

Each side declares the other dead, re-places partitions among its own members
and keeps accepting writes at consistency one. After the heal every replica
must hold the last writer's record for every key, deletes must stay deleted,
and partitions copied during the split must be handed back and dropped.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import replace

import trio

from gossip.core.store.record import Record, merge
from gossip.core.types import Address, MemberState
from gossip.runtime.embed import open_agent
from gossip.runtime.network import DatagramEndpoint, SocketNetwork, StreamServer
from gossip.runtime.store.service import StoreService
from gossip.runtime.store.settings import StoreSettings
from gossip.testing.hookedstream import HookedStream
from tests.unit.store.test_store_service import FAST, Cluster, agent_settings, wait_for

HEAL_FAST = {**FAST, "reconnect_interval": 0.5, "reconnect_max_backoff": 1.0}


class Cut:
    """Which ports may talk: None = everyone; else a list of port groups."""

    def __init__(self) -> None:
        self.groups: list[set[int]] | None = None

    def blocked(self, a: int, b: int) -> bool:
        if self.groups is None:
            return False
        return not any(a in g and b in g for g in self.groups)


class CutEndpoint:
    def __init__(self, inner: DatagramEndpoint, cut: Cut) -> None:
        self.inner, self.cut = inner, cut

    @property
    def local_address(self) -> Address:
        return self.inner.local_address

    async def send(self, to: Address, data: bytes) -> bool:
        if self.cut.blocked(self.local_address[1], to[1]):
            return True  # lost on the way
        return await self.inner.send(to, data)

    async def receive(self) -> tuple[bytes, Address]:
        while True:
            data, src = await self.inner.receive()
            if not self.cut.blocked(src[1], self.local_address[1]):
                return data, src

    def close(self) -> None:
        self.inner.close()


class CutNetwork:
    def __init__(self, cut: Cut) -> None:
        self.inner = SocketNetwork()
        self.cut = cut
        self.port = 0

    async def open_datagram(self, bind: Address) -> DatagramEndpoint:
        endpoint = await self.inner.open_datagram(bind)
        self.port = endpoint.local_address[1]
        return CutEndpoint(endpoint, self.cut)

    async def serve_streams(
        self,
        bind: Address,
        handler: StreamServer,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        await self.inner.serve_streams(bind, handler, task_status=task_status)

    async def connect(self, to: Address) -> trio.abc.Stream:
        if self.cut.blocked(self.port, to[1]):
            raise OSError("network cut")
        here, there = self.port, to[1]
        inner = await self.inner.connect(to)

        async def break_when_cut() -> None:
            # A kept connection must not carry requests across a cut that began later.
            if self.cut.blocked(here, there):
                await trio.aclose_forcefully(inner)
                raise trio.BrokenResourceError("network cut")

        return HookedStream(inner, break_when_cut)


def sees(c: Cluster, observer: int, names: list[str], state: MemberState) -> bool:
    view = {m.name: m.state for m in c.agents[observer].members()}
    return all(view.get(n) == state for n in names)


async def test_writes_on_both_sides_of_a_partition_merge_after_the_heal() -> None:
    cut = Cut()
    settings = StoreSettings(sync_interval=0.2, partitions=16, replicas=3)
    async with AsyncExitStack() as stack:
        c = Cluster(stack, settings)
        for i in range(4):
            svc = StoreService(settings)
            seed = c.agents[0].address if c.agents else None
            s = replace(agent_settings(f"s{i}", seed), core=HEAL_FAST)
            agent = await stack.enter_async_context(
                open_agent(s, services=[svc], network=CutNetwork(cut))
            )
            c.agents.append(agent)
            c.stores.append(svc)
        await wait_for(c.all_alive)
        latest: dict[str, Record | None] = {}

        def note(r: Record) -> None:
            latest[r.key] = merge(latest.get(r.key), r)

        for i in range(60):
            note(await c.stores[i % 4].put(f"k{i}", b"before", "all"))

        ports = [a.address[1] for a in c.agents]
        cut.groups = [set(ports[:2]), set(ports[2:])]
        await wait_for(lambda: sees(c, 0, ["s2", "s3"], MemberState.DEAD), limit=20)
        await wait_for(lambda: sees(c, 2, ["s0", "s1"], MemberState.DEAD), limit=20)
        await wait_for(lambda: all(len(s.placement.members) == 2 for s in c.stores))
        for i in range(0, 40):
            note(await c.stores[0].put(f"k{i}", b"left side", "one"))
        for i in range(20, 60):
            note(await c.stores[3].put(f"k{i}", b"right side", "one"))
        for i in range(0, 60, 7):
            note(await c.stores[i % 2].delete(f"k{i}", "one"))
        for i in range(3, 60, 11):
            note(await c.stores[2 + i % 2].delete(f"k{i}", "one"))

        cut.groups = None
        await wait_for(c.all_alive, limit=30)
        await wait_for(c.digests_agree, limit=30)
        # Each store doubts the members its exchanges failed with during the cut
        # until an exchange of its own succeeds (the majority rule): digests can
        # agree through the others' syncs first.
        await wait_for(lambda: all(s.view.majority.quorate for s in c.stores), limit=30)
        for key, record in latest.items():
            assert record is not None
            expected = None if record.deleted else record.value
            assert await c.stores[1].get(key, "all") == expected, key

        def placed_right() -> bool:
            return all(
                c.holders(k) == set(c.stores[0].placement.replicas_of_key(k)) for k in latest
            )

        await wait_for(placed_right, limit=20)

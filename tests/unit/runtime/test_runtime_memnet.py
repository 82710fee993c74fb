"""The real Agent shell on an in-memory network under trio's MockClock.

Minutes of virtual time run in about a second, so detection, loss tolerance and
partitions can be checked on the full shell (core task, channels, joiner) rather
than on the core alone.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import trio
import trio.testing

from gossip.core.types import MemberState
from gossip.runtime.agent import Agent
from gossip.runtime.service import MemberEvent
from gossip.runtime.settings import AgentSettings
from gossip.testing.memnet import MemoryNetwork


class Cluster:
    def __init__(self, nursery: trio.Nursery, net: MemoryNetwork) -> None:
        self.nursery = nursery
        self.net = net
        self.agents: dict[str, Agent] = {}
        self.events: list[tuple[str, MemberEvent]] = []

    def ip(self, i: int) -> str:
        return f"10.0.0.{i + 1}"

    async def start(self, n: int, profile: str = "lan") -> list[str]:
        """Start n agents joining through the first; return once all see all alive."""
        for i in range(n):
            settings = AgentSettings(
                name=f"m{i}",
                bind=(self.ip(i), 7946),
                api=None,
                profile=profile,
                join=() if i == 0 else (f"{self.ip(0)}:7946",),
            )
            agent = Agent(settings, network=self.net.host(self.ip(i)), rng=random.Random(i))
            await self.nursery.start(agent.serve)
            self.agents[agent.name] = agent
            self.nursery.start_soon(self._collect, agent)
        names = list(self.agents)
        await wait_until(lambda: self.all_see(names, MemberState.ALIVE), 60)
        return names

    async def _collect(self, agent: Agent) -> None:
        async with agent.subscribe(maxsize=10_000) as sub:
            async for event in sub:
                self.events.append((agent.name, event))

    def crash(self, name: str) -> None:
        agent = self.agents.pop(name)
        self.net.down.add(agent.address[0])
        agent.stop()

    def all_see(self, names: list[str], state: MemberState) -> bool:
        return all(
            (m := a.member(n)) is not None and m.state == state
            for a in self.agents.values()
            for n in names
        )

    def failed(self) -> set[tuple[str, str]]:
        return {(obs, e.name) for obs, e in self.events if e.kind == "failed"}


async def wait_until(check: Callable[[], bool], limit: float) -> float:
    start = trio.current_time()
    with trio.fail_after(limit):
        while not check():  # noqa: ASYNC110 - virtual time: polling is free
            await trio.sleep(0.1)
    return trio.current_time() - start


async def test_eight_agents_detect_a_crash_and_nobody_else_fails(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery, MemoryNetwork(random.Random(1)))
        await c.start(8)
        c.crash("m5")
        took = await wait_until(lambda: c.all_see(["m5"], MemberState.DEAD), 120)
        assert took < 60  # lan: probe 1 s, suspicion timeout well under a minute at N=8
        assert {name for _, name in c.failed()} == {"m5"}
        assert {obs for obs, _ in c.failed()} == set(c.agents)
        nursery.cancel_scope.cancel()


async def test_ten_percent_loss_for_five_minutes_gives_no_false_failures(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = MemoryNetwork(random.Random(2))
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery, net)
        names = await c.start(6)
        net.faults.loss = 0.10
        await trio.sleep(300)
        assert net.dropped > 100
        assert c.failed() == set()
        assert c.all_see(names, MemberState.ALIVE)
        nursery.cancel_scope.cancel()


async def test_a_healed_partition_merges_back_without_an_operator(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = MemoryNetwork(random.Random(3))
    async with trio.open_nursery() as nursery:
        c = Cluster(nursery, net)
        names = await c.start(5)
        net.partition([c.ip(0), c.ip(1)], [c.ip(2), c.ip(3), c.ip(4)])
        await wait_until(lambda: ("m0", "m4") in c.failed() and ("m4", "m0") in c.failed(), 120)
        net.heal()
        took = await wait_until(lambda: c.all_see(names, MemberState.ALIVE), 600)
        print(f"partition healed in {took:.0f} virtual seconds")
        nursery.cancel_scope.cancel()

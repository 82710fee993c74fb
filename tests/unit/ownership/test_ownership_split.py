"""Ownership agents split and healed on the in-memory network under MockClock: fencing tokens
after the heal and the majority quorum."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from gossip.core.ownership.assignment import ItemAcquired, ItemReleased
from gossip.core.types import MemberState
from gossip.runtime.agent import Agent
from gossip.runtime.http import ApiRequest
from gossip.runtime.ownership.service import OwnershipService
from gossip.runtime.settings import AgentSettings
from gossip.testing.memnet import MemoryNetwork

ITEMS = [f"job-{i}" for i in range(30)]
EPOCH_MS = 1_800_000_000_000


class VirtualWallClock:
    """Wall time that follows trio's (virtual) clock, so tokens do not depend on the host."""

    def wall_ms(self) -> int:
        return EPOCH_MS + int(trio.current_time() * 1000)


class Split:
    def __init__(self, net: MemoryNetwork) -> None:
        self.net = net
        self.agents: list[Agent] = []
        self.services: list[OwnershipService] = []
        self.events: list[tuple[str, ItemAcquired | ItemReleased]] = []

    @staticmethod
    def ip(i: int) -> str:
        return f"10.0.2.{i + 1}"

    def cut(self, *groups: list[int]) -> None:
        self.net.partition(*([self.ip(i) for i in g] for g in groups))

    def holders(self, item: str) -> list[int]:
        return [i for i, s in enumerate(self.services) if item in s.held()]

    def issued(self, item: str) -> int:
        """The highest token any node acquired the item with."""
        return max(
            e.token for _, e in self.events if isinstance(e, ItemAcquired) and e.item == item
        )

    def sees(self, i: int, others: list[int], state: MemberState) -> bool:
        return all(
            (m := self.agents[i].member(f"o{j}")) is not None and m.state == state for j in others
        )

    def settled(self, members: list[int]) -> bool:
        names = {f"o{i}" for i in members}
        return all(set(self.services[i].ownership.table.members) == names for i in members)

    def held_by(self, nodes: list[int]) -> bool:
        """Every item is held by exactly one of `nodes`."""
        return all(len([i for i in self.holders(item) if i in nodes]) == 1 for item in ITEMS)

    def one_owner_each(self) -> bool:
        return all(len(self.holders(item)) == 1 for item in ITEMS)


@asynccontextmanager
async def split_cluster(n: int, *, quorum: bool, seed: int) -> AsyncIterator[Split]:
    c = Split(MemoryNetwork(random.Random(seed)))
    async with trio.open_nursery() as nursery:
        for i in range(n):
            settings = AgentSettings(
                name=f"o{i}",
                bind=(c.ip(i), 7946),
                api=None,
                profile="lan",
                join=() if i == 0 else (f"{c.ip(0)}:7946",),
            )
            svc = OwnershipService(
                items=ITEMS, settle_time=2.0, coalesce_time=0.2, partitions=1 << 10, quorum=quorum
            )
            agent = Agent(
                settings,
                network=c.net.host(c.ip(i)),
                rng=random.Random(seed * 100 + i),
                clock=VirtualWallClock(),
            )
            agent.add_service(svc)
            svc.subscribe(lambda e, name=agent.name: c.events.append((name, e)))
            await nursery.start(agent.serve)
            c.agents.append(agent)
            c.services.append(svc)
        everyone = list(range(n))
        await wait_until(lambda: c.settled(everyone) and c.one_owner_each(), 60)
        yield c
        nursery.cancel_scope.cancel()


async def wait_until(check: Callable[[], bool], limit: float) -> None:
    with trio.fail_after(limit):
        while not check():  # noqa: ASYNC110 - virtual time: polling is free
            await trio.sleep(0.1)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_after_a_heal_each_owner_holds_a_token_above_every_token_issued_meanwhile(
    autojump_clock: trio.testing.MockClock, seed: int
) -> None:
    async with split_cluster(3, quorum=False, seed=seed) as c:
        c.cut([0], [1, 2])
        await wait_until(lambda: c.sees(0, [1, 2], MemberState.DEAD), 120)
        await wait_until(lambda: c.sees(1, [0], MemberState.DEAD) and c.settled([1, 2]), 120)
        await wait_until(lambda: len(c.services[0].held()) == len(ITEMS), 10)
        both = [i for i in ITEMS if c.holders(i) != [0]]
        assert len(both) == len(ITEMS), "each side owns every item while apart"
        c.net.heal()
        await wait_until(lambda: c.settled([0, 1, 2]) and c.one_owner_each(), 300)
        await trio.sleep(10)  # hand-over notes and the re-acquisitions they cause
        assert c.one_owner_each()
        for item in ITEMS:
            (holder,) = c.holders(item)
            token = c.services[holder].held()[item]
            assert token == c.issued(item), f"{item}: o{holder} holds {token}, not the highest"
        raised = [e for _, e in c.events if e.reason == "token_raised"]
        assert raised, "the side that kept its items had to raise their tokens"


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_with_quorum_the_minority_releases_and_after_the_heal_each_item_has_one_owner(
    autojump_clock: trio.testing.MockClock, seed: int
) -> None:
    async with split_cluster(5, quorum=True, seed=seed) as c:
        overlaps: set[str] = set()

        async def watch() -> None:
            while True:
                for item in ITEMS:
                    sides = {h < 2 for h in c.holders(item)}
                    if len(sides) > 1:
                        overlaps.add(item)
                await trio.sleep(0.05)

        async with trio.open_nursery() as watcher:
            watcher.start_soon(watch)
            c.cut([0, 1], [2, 3, 4])
            await wait_until(lambda: c.sees(2, [0, 1], MemberState.DEAD), 120)
            await wait_until(lambda: c.settled([2, 3, 4]) and c.held_by([2, 3, 4]), 60)
            assert c.services[0].held() == {} and c.services[1].held() == {}
            status = await c.services[0]._http_status(
                ApiRequest("GET", "/v1/ownership", {}, {}, b"")
            )
            assert json.loads(status.body)["quorum"] == {
                "on": True,
                "quorate": False,
                "known": [f"o{i}" for i in range(5)],
            }
            assert "gossip_ownership_quorate 0" in c.agents[0].metrics.render()
            assert c.services[2].ownership.known_members == {"o2", "o3", "o4"}
            lost = [e for n, e in c.events if n in ("o0", "o1") and isinstance(e, ItemReleased)]
            assert lost and {e.reason for e in lost} == {"quorum_lost"}
            watcher.cancel_scope.cancel()
        assert overlaps == set(), "while apart, no item was held on both sides at once"
        c.net.heal()
        await wait_until(lambda: c.settled(list(range(5))) and c.one_owner_each(), 300)
        await trio.sleep(10)
        assert c.one_owner_each()
        for item in ITEMS:
            (holder,) = c.holders(item)
            assert c.services[holder].held()[item] == c.issued(item)
        back = [e for n, e in c.events if n in ("o0", "o1") and isinstance(e, ItemAcquired)]
        assert back and "quorum_regained" in {e.reason for e in back}

"""Ownership services inside real agents in one trio process, over loopback sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import trio

from gossip.core.ownership.assignment import ItemAcquired, ItemReleased
from gossip.core.types import Address
from gossip.runtime.agent import Agent
from gossip.runtime.embed import open_agent
from gossip.runtime.ownership.service import OwnershipService
from gossip.runtime.settings import AgentSettings

ITEMS = [f"task-{i}" for i in range(50)]
FAST = {"probe_interval": 0.2, "probe_timeout": 0.1, "gossip_interval": 0.05, "leave_timeout": 1.0}


def settings(name: str, seed: Address | None) -> AgentSettings:
    join = (f"{seed[0]}:{seed[1]}",) if seed else ()
    return AgentSettings(
        name=name, bind=("127.0.0.1", 0), api=None, profile="local", core=FAST, join=join
    )


@asynccontextmanager
async def cluster(n: int) -> AsyncIterator[list[tuple[Agent, OwnershipService]]]:
    async with AsyncExitStack() as stack:
        nodes: list[tuple[Agent, OwnershipService]] = []
        for i in range(n):
            svc = OwnershipService(
                items=ITEMS, settle_time=0.3, coalesce_time=0.05, partitions=1 << 12
            )
            seed = nodes[0][0].address if nodes else None
            agent = await stack.enter_async_context(
                open_agent(settings(f"o{i}", seed), services=[svc])
            )
            nodes.append((agent, svc))
        yield nodes


def agreed(services: list[OwnershipService], size: int) -> bool:
    tables = [s.ownership.table for s in services]
    if any(len(t.members) != size for t in tables):
        return False
    return all(s.owner(i) == services[0].owner(i) for s in services for i in ITEMS)


async def wait_until(check: Callable[[], bool], limit: float = 15.0) -> None:
    with trio.fail_after(limit):
        while not check():  # noqa: ASYNC110 - polling the state of other tasks
            await trio.sleep(0.05)


async def test_agents_split_the_items_and_take_over_a_leavers_items_once() -> None:
    async with cluster(3) as nodes:
        services = [svc for _, svc in nodes]
        await wait_until(lambda: agreed(services, 3))
        await wait_until(lambda: sum(len(s.held()) for s in services) == len(ITEMS))
        held = [set(s.held()) for s in services]
        assert set().union(*held) == set(ITEMS) and sum(map(len, held)) == len(ITEMS)

        seen: list[ItemAcquired | ItemReleased] = []
        for svc in services[:2]:
            svc.subscribe(seen.append)
        leaver_agent, leaver = nodes[2]
        leaving_items = set(leaver.held())
        await leaver_agent.leave()
        assert leaver.held() == {}
        await wait_until(lambda: agreed(services[:2], 2))
        await wait_until(lambda: sum(len(s.held()) for s in services[:2]) == len(ITEMS))
        taken = [e for e in seen if isinstance(e, ItemAcquired)]
        assert sorted(e.item for e in taken) == sorted(leaving_items), "each exactly once"
        assert {e.reason for e in taken} == {"owner_left"}
        assert not any(isinstance(e, ItemReleased) for e in seen)

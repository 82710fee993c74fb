"""Items sourced from the replicated store: every key under the prefix, page by page."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import cbor2
import pytest
import trio
import trio.testing

from gossip.core.store.replica_ops import KvOp, KvOpError, decode_op, encode_op
from gossip.core.types import MemberState
from gossip.runtime.agent import Agent
from gossip.runtime.ownership.service import store_prefix_source
from gossip.runtime.settings import AgentSettings
from gossip.runtime.store.service import StoreService
from gossip.runtime.store.settings import StoreSettings
from gossip.testing.memnet import MemoryNetwork


def test_a_scan_carries_its_page_start_and_a_bad_one_is_refused() -> None:
    op = KvOp("scan", key="work/", limit=5, after="work/job-07")
    assert decode_op(encode_op(op)) == op
    for bad in (7, "k" * 5000):
        with pytest.raises(KvOpError):
            decode_op(cbor2.dumps({"op": "scan", "k": "work/", "n": 5, "a": bad}))


KEYS = [f"work/job-{i:02}" for i in range(30)]


async def wait_until(check: Callable[[], bool], limit: float) -> None:
    with trio.fail_after(limit):
        while not check():  # noqa: ASYNC110 - virtual time: polling is free
            await trio.sleep(0.1)


@asynccontextmanager
async def stores(n: int) -> AsyncIterator[list[StoreService]]:
    """n agents with a store of one replica per partition, so each holds only some keys."""
    net = MemoryNetwork(random.Random(5))
    services: list[StoreService] = []
    agents: list[Agent] = []
    async with trio.open_nursery() as nursery:
        for i in range(n):
            settings = AgentSettings(
                name=f"s{i}",
                bind=(f"10.0.1.{i + 1}", 7946),
                api=None,
                profile="lan",
                join=() if i == 0 else ("10.0.1.1:7946",),
            )
            svc = StoreService(StoreSettings(replicas=1, partitions=64))
            agent = Agent(settings, network=net.host(f"10.0.1.{i + 1}"), rng=random.Random(i))
            agent.add_service(svc)
            await nursery.start(agent.serve)
            services.append(svc)
            agents.append(agent)
        await wait_until(
            lambda: (
                all(sum(m.state == MemberState.ALIVE for m in a.members()) == n for a in agents)
                and all(len(s.placement.members) == n for s in services)
            ),
            60,
        )
        yield services
        nursery.cancel_scope.cancel()


async def filled(services: list[StoreService]) -> None:
    for key in [*KEYS, "other/x", "work/gone", "work/"]:
        await services[0].put(key, b"v", "one")
    await services[0].delete("work/gone", "one")
    held = [{k for k in KEYS if s.get_local(k) is not None} for s in services]
    assert all(0 < len(h) < len(KEYS) for h in held), "each agent holds only some keys"


async def test_a_store_source_lists_the_keys_of_every_agent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with stores(3) as services:
        await filled(services)
        names = await store_prefix_source(services[1], "work/")()
        assert sorted(names) == sorted(k.removeprefix("work/") for k in KEYS)


async def test_a_store_source_pages_through_more_keys_than_one_page(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with stores(3) as services:
        await filled(services)
        for page in (1, 4, 7, 29):
            names = await store_prefix_source(services[2], "work/", page=page)()
            assert sorted(names) == sorted(k.removeprefix("work/") for k in KEYS), page

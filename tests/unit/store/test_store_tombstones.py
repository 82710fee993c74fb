"""Tombstone GC is safe: a replica away longer than the horizon does not bring
a deleted key back, even though its own disk still holds the old value."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path

import trio

from gossip.runtime.agent import Agent
from gossip.runtime.embed import open_agent
from gossip.runtime.store.service import DB_FILE, StoreService
from gossip.runtime.store.settings import StoreSettings
from gossip.runtime.store.storage import KVStorage
from tests.unit.store.test_store_service import Cluster, agent_settings, wait_for

HORIZON = 1.5


async def test_a_replica_back_after_the_horizon_does_not_resurrect_deletes(
    tmp_path: Path,
) -> None:
    store = StoreSettings(
        sync_interval=0.2, partitions=8, replicas=3, tombstone_horizon=HORIZON, gc_interval=0.2
    )
    async with AsyncExitStack() as stack:
        c = Cluster(stack, store)
        await c.add()
        await c.add()

        async def start_victim(victim_stack: AsyncExitStack) -> tuple[Agent, StoreService]:
            svc = StoreService(store)
            settings = replace(agent_settings("s2", c.agents[0].address), data_dir=tmp_path / "s2")
            agent = await victim_stack.enter_async_context(
                open_agent(settings, services=[svc], leave_on_exit=False)
            )
            return agent, svc

        async with AsyncExitStack() as first_life:
            agent, victim = await start_victim(first_life)
            c.agents.append(agent)
            c.stores.append(victim)
            await wait_for(c.all_alive)
            await c.stores[0].put("doomed", b"old", "all")
            await c.stores[0].put("kept", b"old", "all")
            agent.stop()  # a crash: no leave
        c.agents.pop()
        c.stores.pop()

        await c.stores[1].delete("doomed", "quorum")
        await wait_for(lambda: all(s.get_local("doomed") is None for s in c.stores), limit=10)

        disk = KVStorage(tmp_path / "s2" / DB_FILE, c.stores[0].placement.partition_of)
        assert disk.get("doomed") is not None  # the victim's disk still has the old value
        disk.close()

        async with AsyncExitStack() as second_life:
            agent, victim = await start_victim(second_life)
            c.agents.append(agent)
            c.stores.append(victim)
            await wait_for(c.all_alive)
            await wait_for(c.digests_agree)
            await trio.sleep(0.5)  # a few more sync rounds: nothing may come back
            # its stale copy is gone, answered with the purged tombstone again at most,
            # and that tombstone is purged like any other
            came_back = victim.get_local("doomed")
            assert came_back is None or came_back.deleted
            await wait_for(lambda: all(s.get_local("doomed") is None for s in c.stores), 20)
            for s in c.stores:
                assert await s.get("doomed", "all") is None
                assert await s.get("kept", "all") == b"old"
            agent.stop()

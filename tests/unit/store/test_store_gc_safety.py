"""No acknowledged write lost and no acknowledged delete undone, across whole-
cluster outages, isolation past the reap time, restarts while cut off and wall-
clock steps (store agents on the in-memory network, in virtual time)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import trio
import trio.testing

from gossip.runtime.store.settings import StoreSettings
from tests.unit.store.memcluster import CORE, MemCluster, running, wait_until

HORIZON = 3.0
STORE = StoreSettings(
    partitions=8, replicas=3, sync_interval=0.5, tombstone_horizon=HORIZON, gc_interval=0.5
)


async def doomed_and_kept(c: MemCluster) -> None:
    await c.stores["a"].put("doomed", b"old", "all")
    await c.stores["a"].put("kept", b"old", "all")


def live_holders(c: MemCluster, key: str) -> set[str]:
    return {n for n, s in c.stores.items() if (r := s.get_local(key)) and not r.deleted}


async def no_resurrection(c: MemCluster) -> None:
    await wait_until(c.see_each_other, 120)
    await wait_until(c.digests_agree, 60)
    await trio.sleep(5)  # more rounds: nothing may come back
    # A stale copy that came back may be answered with the purged tombstone again,
    # which is then purged like any other.
    assert live_holders(c, "doomed") == set()
    await purged_on(c, "abc")
    await trio.sleep(5)
    assert c.holders("doomed") == set()
    for s in c.stores.values():
        assert await s.get("doomed", "all") is None
        assert await s.get("kept", "all") == b"old"


async def purged_on(c: MemCluster, names: str) -> None:
    await wait_until(lambda: not c.holders("doomed") & set(names), 60)


async def test_every_agent_down_longer_than_the_horizon_loses_nothing(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with running(STORE, "abc", tmp=tmp_path, core=CORE) as c:
        for i in range(20):
            await c.stores["abc"[i % 3]].put(f"k{i}", b"v%d" % i, "quorum")
        await trio.sleep(2)
        for name in "abc":
            await c.crash(name)
        await trio.sleep(20 * HORIZON)
        for name in "abc":
            await c.start(name)
        await wait_until(c.see_each_other, 60)
        await trio.sleep(5)
        for i in range(20):
            assert await c.stores["b"].get(f"k{i}", "all") == b"v%d" % i


async def test_an_agent_cut_off_past_the_reap_time_does_not_bring_back_purged_deletes(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    # A horizon above the reap time (10 s): the cut-off agent is alone before it is away
    # for a horizon, and being alone must not count as being in touch.
    async with running(replace(STORE, tombstone_horizon=20.0), "abc", tmp=tmp_path, core=CORE) as c:
        await doomed_and_kept(c)
        c.net.partition([c.ip("a"), c.ip("b")], [c.ip("c")])
        agents = c.agents
        await wait_until(
            lambda: agents["a"].member("c") is None and agents["c"].member("a") is None, 120
        )
        await c.stores["a"].delete("doomed", "quorum")
        await purged_on(c, "ab")
        c.net.heal()
        await no_resurrection(c)


async def test_a_stale_agent_restarted_while_cut_off_and_again_does_not_bring_back_deletes(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with running(STORE, "abc", tmp=tmp_path, core=CORE) as c:
        await doomed_and_kept(c)
        await c.crash("c")
        await c.stores["a"].delete("doomed", "quorum")
        await purged_on(c, "ab")
        c.net.partition([c.ip("a"), c.ip("b")], [c.ip("c")])
        await c.start("c")  # it can reach nobody
        await trio.sleep(4 * HORIZON)
        await c.crash("c")
        c.net.heal()
        await c.start("c")
        await no_resurrection(c)


async def test_a_wall_clock_step_past_the_horizon_on_running_agents_loses_nothing(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with running(STORE, "abc", tmp=tmp_path, core=CORE) as c:
        for i in range(20):
            await c.stores["a"].put(f"k{i}", b"v%d" % i, "all")
        for wall in c.walls.values():
            wall.offset_ms += int(10 * HORIZON * 1000)
        await trio.sleep(4 * HORIZON)
        for i in range(20):
            assert c.holders(f"k{i}") == {"a", "b", "c"}
            assert await c.stores["c"].get(f"k{i}", "all") == b"v%d" % i


async def test_a_new_replica_is_filled_with_records_older_than_purged_deletes(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with running(STORE, "abc", tmp=tmp_path, core=CORE) as c:
        for i in range(30):
            await c.stores["a"].put(f"old{i}", b"v", "all")
        await doomed_and_kept(c)
        await c.stores["b"].delete("doomed", "all")
        await purged_on(c, "abc")
        assert all(
            s.storage.watermark(s.placement.partition_of("doomed")) for s in c.stores.values()
        )
        await c.start("d")
        await wait_until(c.see_each_other, 60)
        await wait_until(c.digests_agree, 60)
        await trio.sleep(5)
        for i in range(30):
            assert len(c.holders(f"old{i}")) == 3
            assert await c.stores["d"].get(f"old{i}", "all") == b"v"
        assert c.holders("doomed") == set()


async def test_after_a_split_heals_both_sides_keep_their_writes_and_the_majority_its_deletes(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    # Only the majority side takes quorum writes and purges; the minority side still
    # takes writes at `one`, and those written after the majority's purges must flow.
    async with running(
        replace(STORE, tombstone_horizon=20.0), "abcdef", tmp=tmp_path, core=CORE
    ) as c:
        big, small = "abcd", "ef"
        c.net.partition([c.ip(n) for n in big], [c.ip(n) for n in small])
        await wait_until(
            lambda: all(c.agents[x].member(y) is None for x in big for y in small), 120
        )
        for i in range(20):  # older than the majority's purged deletes
            await c.stores["a"].put(f"a-kept{i}", b"v", "quorum")
        for i in range(5):
            await c.stores["a"].put(f"a-gone{i}", b"v", "quorum")
            await c.stores["a"].delete(f"a-gone{i}", "quorum")
        gone = [f"a-gone{i}" for i in range(5)]
        await wait_until(lambda: not any(c.holders(k) for k in gone), 120)
        for i in range(20):  # written on the small side after the purges
            await c.stores["e"].put(f"e-kept{i}", b"v", "one")
        c.net.heal()
        await wait_until(c.see_each_other, 120)
        await wait_until(c.digests_agree, 60)
        for i in range(20):
            for writer in "ae":
                assert await c.stores["b"].get(f"{writer}-kept{i}", "all") == b"v"
        assert not any(c.holders(k) for k in gone)


async def test_a_partition_being_filled_here_or_at_a_fellow_replica_purges_nothing(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with running(replace(STORE, gc_interval=3600.0), "abc", tmp=tmp_path, core=CORE) as c:
        await doomed_and_kept(c)
        a = c.stores["a"]
        await a.delete("doomed", "all")
        await trio.sleep(1)
        assert a.sync.collect_garbage() == 0  # too young; takes an age checkpoint after it
        await trio.sleep(4 * HORIZON)  # past the horizon, with proofs from every replica
        part = a.placement.partition_of("doomed")
        assert not a.is_pending(part)
        a.sync.peer_pending.add((part, "b"))  # as if b's last roots reply said so
        assert a.sync.collect_garbage() == 0
        assert "a" in c.holders("doomed")
        a.sync.peer_pending.discard((part, "b"))
        a.fill.entered(frozenset({part}))  # being filled here
        assert a.sync.collect_garbage() == 0
        a.fill.filled(part)
        assert a.sync.collect_garbage() >= 1
        assert "a" not in c.holders("doomed")

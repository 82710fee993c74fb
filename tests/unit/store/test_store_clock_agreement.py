"""The store clock: wall clocks minutes to an hour apart, or stepped while an agent
runs, neither hide writes nor keep replicas apart (store agents on the in-memory
network, in virtual time)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from gossip.runtime.store.settings import StoreSettings
from gossip.runtime.store.storeclock import ClockDisagrees
from tests.unit.store.memcluster import CORE, MemCluster, running, wait_until

STORE = StoreSettings(partitions=8, replicas=3, sync_interval=0.5)
MINUTE_MS = 60_000


def key_replicated_by(c: MemCluster, name: str) -> str:
    placement = c.stores[name].placement
    return next(f"k{i}" for i in range(100) if name in placement.replicas_of_key(f"k{i}"))


def values(c: MemCluster, key: str) -> set[bytes | None]:
    """The value each replica of `key` holds (None for a missing or deleted record)."""
    out: set[bytes | None] = set()
    for name in c.stores["a"].placement.replicas_of_key(key):
        got = c.stores[name].get_local(key)
        out.add(None if got is None else got.value)
    return out


async def restart_with_offset(c: MemCluster, name: str, offset_ms: int) -> None:
    await c.crash(name)
    c.walls[name].offset_ms = offset_ms
    await c.start(name)
    await wait_until(c.see_each_other, 60)
    await wait_until(lambda: c.stores[name].stamps.store_clock.refusal() is None, 30)


async def test_a_node_half_an_hour_fast_writes_at_one_and_every_replica_converges(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with running(STORE, "abcd", tmp=tmp_path, core=CORE) as c:
        await restart_with_offset(c, "c", 30 * MINUTE_MS)
        key = key_replicated_by(c, "c")
        written = await c.stores["c"].put(key, b"fast", "one")
        assert written.version.wall < c.walls["a"].wall_ms() + MINUTE_MS  # in agreement
        await wait_until(lambda: values(c, key) == {b"fast"}, 30)
        await c.stores["a"].put(key, b"later", "quorum")
        await wait_until(lambda: values(c, key) == {b"later"}, 30)
        for name in c.up():
            assert await c.stores[name].get(key, "all") == b"later"
        await wait_until(c.digests_agree, 30)


async def test_a_node_forty_minutes_slow_still_takes_the_others_writes(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with running(STORE, "abcd", tmp=tmp_path, core=CORE) as c:
        await restart_with_offset(c, "d", -40 * MINUTE_MS)
        key = key_replicated_by(c, "d")
        await c.stores["a"].put(key, b"from a", "all")
        assert c.stores["d"].get_local(key) is not None
        written = await c.stores["d"].put(key, b"from d", "all")
        assert await c.stores["b"].get(key, "all") == b"from d"
        assert written.version.wall > c.walls["a"].wall_ms() - MINUTE_MS
        await wait_until(c.digests_agree, 30)


async def test_a_wall_clock_step_on_a_running_agent_changes_no_stamp(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with running(STORE, "abc", tmp=tmp_path, core=CORE) as c:
        c.walls["b"].offset_ms = 60 * MINUTE_MS
        c.walls["c"].offset_ms = -60 * MINUTE_MS
        for name in "bc":
            written = await c.stores[name].put(f"from-{name}", b"v", "all")
            assert abs(written.version.wall - c.walls["a"].wall_ms()) < MINUTE_MS


async def test_a_node_that_has_not_measured_its_peers_refuses_to_stamp(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with running(STORE, "ab", tmp=tmp_path, core=CORE) as c:
        store = c.stores["b"]
        store.stamps.store_clock.agreement.offsets(
            trio.current_time() + 10**6, set()
        )  # all stale now
        with pytest.raises(ClockDisagrees, match="not yet checked"):
            store.stamp()
        await store.put("k", b"v", "one")  # waits for the next roots check


async def test_a_node_restarted_an_hour_fast_stamps_only_after_it_has_measured_a_peer(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with running(STORE, "abcd", tmp=tmp_path, core=CORE) as c:
        for name in "ac":  # a first agent (no seeds) and a joining one
            key = key_replicated_by(c, name)
            await c.crash(name)
            c.walls[name].offset_ms = 60 * MINUTE_MS
            await c.start(name)  # not yet joined: it knows no live peer
            with pytest.raises(ClockDisagrees, match="no peer clock reading yet"):
                c.stores[name].stamp()
            await wait_until(c.see_each_other, 60)
            written = await c.stores[name].put(key, b"early", "one")
            assert written.version.wall < c.walls["b"].wall_ms() + MINUTE_MS
            await wait_until(lambda: values(c, key) == {b"early"}, 30)  # noqa: B023
        await wait_until(c.digests_agree, 30)


async def test_with_one_replica_per_partition_every_node_still_measures_its_peers(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with running(
        StoreSettings(partitions=2, replicas=1, sync_interval=0.5), "abcd", tmp=tmp_path, core=CORE
    ) as c:
        for name in "abcd":
            await wait_until(lambda: c.stores[name].stamps.store_clock.refusal() is None, 30)  # noqa: B023
            await c.stores[name].put(f"from-{name}", b"v", "one")

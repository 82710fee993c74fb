"""Clock rules of the store: a record stamped too far ahead is refused and counted,
a write is never acknowledged behind a newer version, and a restarted clock starts
past everything stored (store agents on the in-memory network, in virtual time)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import trio
import trio.testing

from gossip.core.store.hlc import Timestamp
from gossip.core.store.record import Record
from gossip.core.store.replica_ops import KvOp
from gossip.runtime.metrics import Counter
from gossip.runtime.store.settings import StoreSettings
from tests.unit.store.memcluster import CORE, MemCluster, running, wait_until

STORE = StoreSettings(partitions=8, replicas=3, sync_interval=0.5)
HOUR_MS = 3_600_000


def refused(c: MemCluster, name: str, reason: str) -> float:
    metric = c.agents[name].metrics.get("kv_records_refused_total")
    return metric.value({"reason": reason}) if isinstance(metric, Counter) else 0.0


def ahead_of(c: MemCluster, ms: int) -> Timestamp:
    return Timestamp(c.walls["a"].wall_ms() + ms, 0, "fast")


def plant(c: MemCluster, record: Record) -> None:
    """Write `record` on every replica of its key directly, as a coordinator would."""
    for name in c.stores["a"].placement.replicas_of_key(record.key):
        c.stores[name].replica_side.handle_op(KvOp("put", record=record))


async def test_an_hour_fast_clock_cannot_hide_later_writes(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with running(STORE, "abc", tmp=tmp_path, core=CORE) as c:
        # A running agent's store clock ignores wall steps, so the fast clock comes
        # with a restart; the store clock then follows the other two.
        await c.crash("c")
        c.walls["c"].offset_ms = HOUR_MS
        await c.start("c")
        await wait_until(c.see_each_other, 60)
        await wait_until(lambda: c.stores["c"].stamps.store_clock.refusal() is None, 30)
        await c.stores["c"].put("k", b"future", "one")
        await trio.sleep(3)  # the fast node's sync rounds offer it too
        await c.stores["a"].put("k", b"now", "quorum")
        # A record stamped by an uncorrected hour-fast clock is refused and counted.
        ahead = Record("k", b"ahead", Timestamp(c.walls["a"].wall_ms() + HOUR_MS, 0, "c"))
        for name in "ab":
            c.stores[name].replica_side.handle_op(KvOp("put", record=ahead))
        for name in "ab":
            assert await c.stores[name].get("k", "quorum") == b"now"
            local = c.stores[name].get_local("k")
            assert local is not None and local.value == b"now"
        assert refused(c, "a", "clock_ahead") + refused(c, "b", "clock_ahead") >= 2


async def test_a_restarted_clock_starts_past_stored_versions_far_ahead_of_it(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with running(STORE, "a", tmp=tmp_path, core=CORE) as c:
        await c.stores["a"].put("k", b"before", "quorum")
        await c.crash("a")
        c.walls["a"].offset_ms = -120_000  # two minutes behind: beyond the 60 s max offset
        await c.start("a")
        written = await c.stores["a"].put("k", b"after", "quorum")
        assert await c.stores["a"].get("k", "quorum") == b"after"
        assert written.version.wall > c.walls["a"].wall_ms()


async def test_a_coordinator_behind_stamps_its_write_above_the_replicas_newer_version(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with running(STORE, "abcd", tmp=tmp_path, core=CORE) as c:
        placement = c.stores["a"].placement
        key = next(f"k{i}" for i in range(100) if "d" not in placement.replicas_of_key(f"k{i}"))
        writer = placement.replicas_of_key(key)[0]
        # The store clocks agree, so "first" comes from a clock 30 s fast (within the
        # max offset), as if stamped by a node whose correction has not caught up:
        # d's own stamp is behind it.
        plant(c, Record(key, b"first", ahead_of(c, 30_000)))
        second = await c.stores["d"].put(key, b"second", "quorum")
        assert await c.stores["a"].get(key, "all") == b"second"
        first = c.stores[writer].get_local(key)
        assert first is not None and first.version == second.version


async def test_a_write_stamped_below_the_purge_watermark_is_stamped_above_it(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with running(
        replace(STORE, tombstone_horizon=3.0, gc_interval=0.5), "abcd", tmp=tmp_path, core=CORE
    ) as c:
        placement = c.stores["a"].placement
        keys = [f"k{i}" for i in range(400) if "d" not in placement.replicas_of_key(f"k{i}")]
        part = placement.partition_of(keys[0])
        doomed, fresh = [k for k in keys if placement.partition_of(k) == part][:2]
        writer = placement.replicas_of_key(doomed)[0]
        await c.stores[writer].put(doomed, b"old", "all")
        # A tombstone from a clock 50 s fast (within the max offset): once it is
        # purged, d's stamps fall below the watermark.
        plant(c, Record(doomed, None, ahead_of(c, 50_000)))
        await wait_until(lambda: not c.holders(doomed), 60)
        mark = c.stores[writer].storage.watermark(part)
        assert c.stores["d"].stamp().packed < mark
        written = await c.stores["d"].put(fresh, b"new", "quorum")
        assert written.version.packed > mark
        assert await c.stores[writer].get(fresh, "all") == b"new"

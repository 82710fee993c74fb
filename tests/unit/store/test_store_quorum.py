"""The coordinator's quorum rules, against in-memory replicas behind its Cluster protocol.

Each replica is a dict with flags: reachable, pending (not yet filled with its
partition) and leaving. The coordinator is the real one; only the transport is faked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
import trio

from gossip.core.store.hlc import HybridClock, Timestamp
from gossip.core.store.majority import Majority
from gossip.core.store.record import Record
from gossip.core.store.replica_ops import KvOp, KvOpError, encode_result
from gossip.runtime.store.coordinator import Coordinator, NoMajority, NotEnoughReplicas
from gossip.runtime.store.fanout import Outcome


@dataclass
class FakeReplica:
    records: dict[str, Record] = field(default_factory=dict)
    reachable: bool = True
    pending: bool = False
    leaving: bool = False
    put_delay: float = 0.001
    get_delay: float = 0.001

    def handle(self, op: KvOp) -> bytes:
        if not self.reachable:
            raise KvOpError("unreachable")
        if op.op == "put":
            assert op.record is not None
            if self.leaving:
                return encode_result(err="leaving")
            cur = self.records.get(op.record.key)
            if cur is None or op.record.order_key() > cur.order_key():
                self.records[op.record.key] = op.record
            return encode_result(ok=True, changed=True)
        pend = self.pending or self.leaving
        return encode_result(r=self.records.get(op.key), pend=pend, lv=self.leaving)


class FakeCluster:
    def __init__(self, nursery: trio.Nursery, names: Sequence[str], r: int) -> None:
        self.nursery = nursery
        self.replicas = {n: FakeReplica() for n in names}
        self.order = list(names)
        self.r = r
        self.clock = HybridClock("c")
        self.wall = 1_000_000
        self.fills_asked = 0
        self.earlier: list[str] = []
        self.ignore_majority = True
        self.outcomes: list[tuple[str, bool]] = []

    def replicas_of_key(self, key: str) -> Sequence[str]:
        live = [n for n in self.order if self.replicas[n].reachable]
        return live[: self.r]

    def replication(self) -> int:
        return min(self.r, len(self.replicas))

    def reached(self, name: str, ok: bool) -> None:
        self.outcomes.append((name, ok))

    def majority(self) -> Majority:
        seen = 1 + sum(1 for r in self.replicas.values() if r.reachable)
        known = 1 + len(self.replicas)  # the coordinator and the replicas
        return Majority(seen, known, 2 * seen > known or self.ignore_majority)

    def replacements(self, key: str, gone: Collection[str]) -> Sequence[str]:
        return [n for n in self.order if n not in gone][: self.r]

    def earlier_replicas(self, key: str) -> Sequence[str]:
        return self.earlier

    def fill_soon(self) -> None:
        self.fills_asked += 1

    def stamp(self) -> Timestamp:
        self.wall += 1
        return self.clock.now(self.wall)

    def stamp_after(self, newer: tuple[int, int]) -> Timestamp:
        self.wall += 1
        return self.clock.now_after(self.wall, Timestamp(*newer, "c"))

    def plausible(self, wall_ms: int) -> bool:
        return wall_ms <= self.wall + self.clock.max_offset_ms

    def local(self, replica: str, op: KvOp) -> bytes | None:
        return None  # every fake replica is a peer, with its own delays

    def send(self, replica: str, op: KvOp, outcome: Outcome) -> None:
        rep = self.replicas[replica]

        async def answer() -> None:
            await trio.sleep(rep.put_delay if op.op == "put" else rep.get_delay)
            try:
                reply = rep.handle(op)
            except Exception as exc:
                outcome(None, exc)
            else:
                outcome(reply, None)

        self.nursery.start_soon(answer)

    def after(self, when: float, fn: Callable[[], None]) -> None:
        async def wait() -> None:
            await trio.sleep_until(when)
            fn()

        self.nursery.start_soon(wait)

    def record(self, key: str, value: bytes) -> Record:
        return Record(key, value, self.stamp())


@asynccontextmanager
async def fake(names: Sequence[str], r: int) -> AsyncIterator[tuple[FakeCluster, Coordinator]]:
    async with trio.open_nursery() as nursery:
        cluster = FakeCluster(nursery, names, r)
        yield cluster, Coordinator(cluster, timeout=1.0)
        nursery.cancel_scope.cancel()


async def test_an_empty_pending_replica_does_not_count_toward_a_read_quorum(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # a and b acknowledged the write; b was then replaced by an empty c, and a is cut off:
    # what is left is c (empty, pending) and d (missed the write), which must not be a quorum.
    async with fake(["a", "c", "d"], r=3) as (cluster, coord):
        written = cluster.record("k", b"v")
        cluster.replicas["a"].records["k"] = written
        cluster.replicas["c"].pending = True
        cluster.replicas["a"].reachable = False
        cluster.order = ["c", "d", "a"]
        with pytest.raises(NotEnoughReplicas) as info:
            await coord.read("k", "quorum")
        assert (info.value.needed, info.value.acks) == (2, 1)
        assert cluster.fills_asked > 0  # it nudged anti-entropy while it waited


async def test_a_read_waits_for_a_pending_replica_to_be_filled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with fake(["a", "b", "c"], r=3) as (cluster, coord):
        written = cluster.record("k", b"v")
        cluster.replicas["a"].records["k"] = written
        cluster.replicas["b"].pending = True
        cluster.replicas["c"].reachable = False
        cluster.order = ["b", "c", "a"]

        async def fill_b() -> None:
            await trio.sleep(0.3)
            cluster.replicas["b"].records["k"] = written
            cluster.replicas["b"].pending = False

        cluster.nursery.start_soon(fill_b)
        cluster.replicas["a"].reachable = True
        assert await coord.read("k", "quorum") == written


async def test_a_minority_side_answers_an_error_naming_needed_and_reachable() -> None:
    async with fake(["a", "b", "c"], r=3) as (cluster, coord):
        cluster.replicas["b"].reachable = False
        cluster.replicas["c"].reachable = False
        for level, needed in (("quorum", 2), ("all", 3)):
            with pytest.raises(NotEnoughReplicas) as info:
                await coord.write("k", b"v", level)
            assert (info.value.needed, info.value.reachable, info.value.replicas) == (needed, 1, 3)
            assert f"1 of 3 replicas reachable, {needed} needed" in str(info.value)
            with pytest.raises(NotEnoughReplicas):
                await coord.read("k", level)
        assert cluster.replicas["a"].records == {}  # nothing was written alone


async def test_read_repair_completes_before_the_answer() -> None:
    async with fake(["a", "b", "c"], r=3) as (cluster, coord):
        old, new = cluster.record("k", b"old"), cluster.record("k", b"new")
        cluster.replicas["a"].records["k"] = new
        cluster.replicas["b"].records["k"] = old
        cluster.replicas["c"].records["k"] = old
        assert await coord.read("k", "all") == new
        # no checkpoint in between: the repair is already done
        assert all(rep.records["k"] == new for rep in cluster.replicas.values())


async def test_successive_quorum_reads_never_go_back(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with fake(["a", "b", "c"], r=3) as (cluster, coord):
        old, new = cluster.record("k", b"old"), cluster.record("k", b"new")
        cluster.replicas["a"].records["k"] = new
        cluster.replicas["b"].records["k"] = old
        cluster.replicas["b"].put_delay = 0.5  # a slow disk: the repair takes a while
        cluster.replicas["c"].records["k"] = old
        cluster.replicas["c"].reachable = False
        assert await coord.read("k", "quorum") == new  # a and b answered
        cluster.replicas["c"].reachable = True
        cluster.replicas["a"].reachable = False  # the next read sees only b and c
        assert await coord.read("k", "quorum") == new


async def test_a_write_refused_by_a_leaving_replica_goes_to_its_successor() -> None:
    async with fake(["a", "b"], r=1) as (cluster, coord):
        cluster.replicas["a"].leaving = True
        written = await coord.write("k", b"v", "quorum")
        assert "k" not in cluster.replicas["a"].records
        assert cluster.replicas["b"].records["k"] == written
        assert await coord.read("k", "quorum") == written  # asks the successor too


async def test_after_a_placement_change_a_read_also_asks_the_earlier_replicas() -> None:
    # The set moved from {a, b, c} to {c, d, e}; only a and b hold the write, and
    # their hand-off has not reached d and e yet.
    async with fake(["c", "d", "e", "a", "b"], r=3) as (cluster, coord):
        written = cluster.record("k", b"v")
        cluster.replicas["a"].records["k"] = written
        cluster.replicas["b"].records["k"] = written
        cluster.earlier = ["a", "b"]
        assert await coord.read("k", "quorum") == written
        repaired = [n for n in "cde" if cluster.replicas[n].records.get("k") == written]
        assert len(repaired) >= 2  # a quorum of the new set holds it before the answer


async def test_a_read_waits_briefly_for_the_replicas_after_the_first_quorum(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A coordinator whose view of the members differs from the writer's may find the
    # newest version only at the third replica: it answers a moment after the first two.
    async with fake(["a", "b", "c"], r=3) as (cluster, coord):
        old, new = cluster.record("k", b"old"), cluster.record("k", b"new")
        for name in "ab":
            cluster.replicas[name].records["k"] = old
        cluster.replicas["c"].records["k"] = new
        cluster.replicas["c"].get_delay = 0.005
        assert await coord.read("k", "quorum") == new
        # One much slower than the first answers is not waited for.
        cluster.replicas["a"].records["k"] = cluster.replicas["b"].records["k"] = new
        newest = cluster.record("k", b"newest")
        cluster.replicas["c"].records["k"] = newest
        cluster.replicas["c"].get_delay = 0.5
        started = trio.current_time()
        assert await coord.read("k", "quorum") == new
        assert trio.current_time() - started < 0.1


async def test_no_quorum_operation_without_a_majority_of_the_known_members() -> None:
    async with fake(["a", "b", "c", "d"], r=3) as (cluster, coord):
        cluster.ignore_majority = False
        for name in "bcd":
            cluster.replicas[name].reachable = False
        for level in ("quorum", "all"):
            with pytest.raises(NoMajority, match="sees 2 of the 5 members it knows, 3 needed"):
                await coord.write("k", b"v", level)
            with pytest.raises(NoMajority):
                await coord.read("k", level)
        assert (await coord.write("k", b"v", "one")).value == b"v"


async def test_the_coordinator_reports_which_replicas_answered(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with fake(["a", "b", "c"], r=3) as (cluster, coord):
        cluster.replicas["c"].put_delay = 5.0  # never answers within the timeout
        await coord.write("k", b"v", "quorum")
        await trio.sleep(2)  # the slow call gives up in the background
        assert ("a", True) in cluster.outcomes and ("c", False) in cluster.outcomes


async def test_a_replica_answering_after_the_caller_returned_is_still_reported(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with fake(["a", "b", "c"], r=3) as (cluster, coord):
        cluster.replicas["c"].put_delay = 0.5  # within the timeout (1 s)
        await coord.write("k", b"v", "quorum")
        assert ("c", True) not in cluster.outcomes
        await trio.sleep(0.6)
        assert ("c", True) in cluster.outcomes and ("c", False) not in cluster.outcomes


async def test_a_replica_silent_past_the_timeout_fails_at_the_timeout_and_only_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with fake(["a", "b", "c"], r=3) as (cluster, coord):
        cluster.replicas["c"].put_delay = 5.0
        started = trio.current_time()
        await coord.write("k", b"v", "quorum")
        await trio.sleep_until(started + 0.95)
        assert [ok for name, ok in cluster.outcomes if name == "c"] == []
        await trio.sleep_until(started + 1.05)
        assert [ok for name, ok in cluster.outcomes if name == "c"] == [False]
        await trio.sleep(6)  # its answer comes at 5 s: too late, not reported
        assert [ok for name, ok in cluster.outcomes if name == "c"] == [False]

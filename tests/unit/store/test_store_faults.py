"""The store on real agents under faults: a full disk, a graceful leave with R = 1,
agents with different placement settings, and peers naming partitions not held here.
All on the in-memory network in virtual time."""

from __future__ import annotations

import sqlite3
from typing import Any, cast

import trio
import trio.testing

from gossip.core.store import syncwire
from gossip.core.store.merkle import MerkleTree
from gossip.core.store.placement import Placement
from gossip.core.store.syncwire import RootInfo, SyncMessage, decode, encode, encode_roots
from gossip.core.types import MemberState
from gossip.runtime.http import ApiRequest
from gossip.runtime.metrics import Counter
from gossip.runtime.store.coordinator import NotEnoughReplicas
from gossip.runtime.store.routes import store_routes
from gossip.runtime.store.service import StoreService
from gossip.runtime.store.settings import StoreSettings
from tests.unit.store.memcluster import running, wait_until

STORE = StoreSettings(partitions=16, sync_interval=0.5)


class FullDisk(sqlite3.Connection):
    """A connection whose writes fail like a full disk while `full` is set: sqlite
    has already rolled the transaction back when COMMIT reports it."""

    full = False

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if FullDisk.full and sql.lstrip().upper().startswith(("COMMIT", "INSERT")):
            if self.in_transaction:
                super().execute("ROLLBACK")
            raise sqlite3.OperationalError("database or disk is full")
        return super().execute(sql, *args)


def full_disk(path: str) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None, factory=FullDisk)


def trees_match_database(svc: StoreService) -> bool:
    storage = svc.storage
    for part in range(svc.settings.partitions):
        fresh = MerkleTree.from_entries(storage.entries(part, 0, (1 << 64) - 1))
        if storage.root(part) != fresh.root:
            return False
    return True


async def test_a_full_disk_is_a_507_the_agent_keeps_running_and_writes_resume(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(STORE) as c:
        a = await c.add(0)
        full = await c.add(1, connect=full_disk)
        await c.add(2)
        await c.settle()
        await a.put("before", b"1", "all")
        FullDisk.full = True
        try:
            routes = store_routes(full)
            resp = await routes[("PUT", "/v1/kv/*")](
                ApiRequest("PUT", "/v1/kv/k", {"consistency": "all"}, {}, b"v")
            )
            assert resp.status == 507 and b"no_space" in resp.body
            await a.put("during", b"2", "quorum")  # the other two still take writes
            await trio.sleep(5)  # anti-entropy keeps trying to push into the full disk
            assert trees_match_database(full)
        finally:
            FullDisk.full = False
        errors = full.host.metrics.get("kv_storage_errors_total")
        assert isinstance(errors, Counter) and errors.value({"reason": "no_space"}) >= 1
        # still a member everywhere, and writes resume
        assert all(ag.member("n1").state == MemberState.ALIVE for ag in c.agents.values())  # type: ignore[union-attr]
        await full.put("after", b"3", "all")
        await wait_until(lambda: full.get_local("during") is not None, 10)
        assert trees_match_database(full)


async def test_writes_acknowledged_while_a_single_replica_leaves_are_kept(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(StoreSettings(partitions=16, replicas=1, sync_interval=3600.0)) as c:
        a, _, leaver = await c.start_all(3)
        acked: list[str] = []
        stop = trio.Event()

        async def writer() -> None:
            i = 0
            while not stop.is_set():
                key = f"k{i}"
                i += 1
                try:
                    await a.put(key, key.encode(), "quorum")
                    acked.append(key)
                except NotEnoughReplicas:
                    pass
                await trio.sleep(0.002)

        c.nursery.start_soon(writer)
        await trio.sleep(0.2)
        await c.agents["n2"].leave()
        await wait_until(lambda: len(a.placement.members) == 2, 30)
        await trio.sleep(0.2)
        stop.set()
        await c.crash("n2")
        assert any(leaver.placement.replicas_of_key(k) == ("n2",) for k in acked)
        lost = [k for k in acked if await a.get(k, "quorum") != k.encode()]
        assert lost == [], f"{len(lost)} of {len(acked)} acknowledged writes lost"


async def test_an_agent_with_other_placement_settings_is_kept_out_of_placement(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(STORE) as c:
        a = await c.add(0)
        await c.add(1)
        odd = await c.add(2, store=StoreSettings(partitions=32, sync_interval=0.5))
        await wait_until(lambda: len(a.placement.members) == 2 and a.view.mismatched != {}, 30)
        await trio.sleep(3)
        assert a.placement.members == ("n0", "n1")
        assert odd.placement.members == ("n2",)
        gauge = a.host.metrics.render()
        assert "kv_settings_mismatched_members 1" in gauge
        # the odd agent cannot answer alone either: it knows of the others
        try:
            await odd.put("k", b"v", "quorum")
            raise AssertionError("a lone mismatched agent answered a quorum write")
        except NotEnoughReplicas as exc:
            assert exc.reachable == 1


async def test_a_peer_naming_partitions_not_held_here_gets_a_refusal_and_no_tree(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(StoreSettings(partitions=64, replicas=1, sync_interval=3600.0)) as c:
        a, _, _ = await c.start_all(3)
        # not replicated by n0 even if one member left (R + 1 = 2 deep), and empty there
        near = Placement(["n0", "n1", "n2"], partitions=64, replicas=2)
        far = [p for p in range(64) if "n0" not in near.replicas(p) and not a.storage.count(p)]
        assert far
        before = set(a.storage.trees)
        reply = await a.sync.on_request(encode(SyncMessage(far[0], root=(1, 1))))
        assert decode(reply).error == "not_replica"
        reply = await a.sync.on_request(encode(SyncMessage(5000, root=(1, 1))))
        assert decode(reply).error == "not_replica"
        answer = syncwire.decode_roots_reply(
            await a.sync.on_roots(
                encode_roots("x", {p: RootInfo((1, 1), 1, 0) for p in range(60_000)})
            )
        )
        assert set(far) <= set(answer.differ) & set(answer.pending)  # never taken as "in sync"
        assert set(a.storage.trees) == before  # nothing allocated for any of it


async def test_reads_right_after_new_empty_replicas_join_find_every_acknowledged_key(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(StoreSettings(partitions=16, replicas=2, sync_interval=3600.0)) as c:
        a, _, _ = await c.start_all(3)
        keys = [f"k{i}" for i in range(100)]
        for k in keys:
            await a.put(k, k.encode(), "quorum")
        # n1 and n2 cannot reach the newcomers (n0 reaches everyone), so what only
        # they hold cannot be handed over yet.
        c.net.partition([c.ip(1), c.ip(2)], [c.ip(3), c.ip(4)])
        await c.add(3)
        await c.add(4)
        await wait_until(lambda: len(a.placement.members) == 5, 30)
        moved = [k for k in keys if set(a.placement.replicas_of_key(k)) == {"n3", "n4"}]
        assert moved  # some keys now live only on the two new members
        absent = []
        for k in keys:
            try:
                if await a.get(k, "quorum") != k.encode():
                    absent.append(k)
            except NotEnoughReplicas:
                pass  # a replica that cannot be filled yet: unavailable, not wrong
        assert absent == [], f"{len(absent)} of {len(keys)} acknowledged keys read as absent"
        c.net.heal()
        await c.settle()
        # A few sync rounds fill the replicas that were cut off (each from a quorum of
        # sources); until then a read may be refused, never answered wrong.
        for k in keys:
            with trio.fail_after(60):
                while True:
                    try:
                        assert await a.get(k, "quorum") == k.encode()
                        break
                    except NotEnoughReplicas:
                        await trio.sleep(1)


async def test_the_settings_tag_comes_back_after_the_tags_are_replaced(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(STORE) as c:
        a, _ = [await c.add(i) for i in range(2)]
        await c.settle()
        agent = c.agents["n0"]
        await agent.set_tags({"role": "web"})
        await trio.sleep(3)  # a few sync rounds
        me = agent.self_info()
        assert me is not None and me.tags.get("role") == "web"
        assert me.tags.get("kv") == a.view.hash


async def test_storage_errors_are_named_and_reach_the_client_as_507_or_500() -> None:
    from gossip.runtime.store.storage import StorageError

    assert StorageError.of(sqlite3.OperationalError("database or disk is full")).reason == (
        "no_space"
    )
    assert StorageError.of(sqlite3.OperationalError("disk I/O error")).reason == "io_error"

    class Refusing:
        def __init__(self, reason: str) -> None:
            self.reason = reason

        async def put(self, key: str, value: bytes, consistency: str, after: object) -> None:
            raise NotEnoughReplicas("put", consistency, 1, 2, 3, reasons=[self.reason])

    for reason, status in (("no_space: full", 507), ("io_error: bad", 500), ("timeout", 503)):
        routes = store_routes(cast(StoreService, Refusing(reason)))
        resp = await routes[("PUT", "/v1/kv/*")](ApiRequest("PUT", "/v1/kv/k", {}, {}, b"v"))
        assert resp.status == status and reason.encode() in resp.body


async def test_an_isolated_agent_answers_503_instead_of_alone(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(STORE) as c:
        _, _, lone = await c.start_all(3)
        c.net.partition([c.ip(0), c.ip(1)], [c.ip(2)])
        await wait_until(lambda: lone.placement.members == ("n2",), 120)
        for level in ("quorum", "all"):
            try:
                await lone.put("k", b"v", level)
                raise AssertionError(f"an isolated agent acknowledged a write at {level}")
            except NotEnoughReplicas as exc:
                assert (exc.reachable, exc.replicas) == (1, 3)
        assert lone.get_local("k") is None

"""Client sessions: a write passed `after` (the greatest version its client has seen) is
stamped above it, so a client's later write outranks its earlier one whatever the clocks.

The cluster case is a fault run's (seed 41): a client deleted its key at `one` through an
agent cut off alone, whose clock ran ahead, then wrote it at `quorum` through another
agent; the delete carried the greater version and hid the write after the heal.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from gossip.core.store.hlc import MAX_COUNTER, MAX_WALL_MS, Timestamp
from gossip.core.store.record import Record
from gossip.core.store.replica_ops import KvOp
from gossip.runtime.http import ApiError, ApiRequest
from gossip.runtime.store.routes import store_routes
from gossip.runtime.store.session import (
    MAX_AFTER_CHARS,
    AfterAhead,
    SessionError,
    after_text,
    parse_after,
)
from gossip.runtime.store.settings import StoreSettings
from tests.unit.store.memcluster import CORE, MemCluster, running, wait_until

STORE = StoreSettings(partitions=8, replicas=3, sync_interval=0.5)
AHEAD_MS = 40
"""How far the cut-off agent's clock runs ahead: more than the gap between the writes."""


def test_after_reads_the_version_text_of_a_write_answer() -> None:
    assert parse_after(None) is None
    assert parse_after("1760000000123.7@n2") == (1760000000123, 7)
    assert parse_after("1760000000123.7") == (1760000000123, 7)
    assert parse_after(f"{MAX_WALL_MS}.{MAX_COUNTER}@x") == (MAX_WALL_MS, MAX_COUNTER)
    assert parse_after(after_text((5, 3))) == (5, 3)


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "12",
        "abc.1",
        "1.x",
        "-1.0",
        "1.-0",
        " 1.0",
        "1.2.3",
        "١٢.٣",  # non-ASCII digits
        f"{MAX_WALL_MS + 1}.0",
        f"1.{MAX_COUNTER + 1}",
        "9" * 5000 + ".1",
        "1.1@" + "n" * MAX_AFTER_CHARS,
    ],
)
def test_a_garbled_after_is_refused(garbage: str) -> None:
    with pytest.raises(SessionError):
        parse_after(garbage)


def record_on(c: MemCluster, node: str, key: str, wall_ms: int) -> None:
    """A record of `key` on `node` alone, stamped by a clock `wall_ms` fast."""
    record = Record(key, b"from a fast clock", Timestamp(wall_ms, 0, "fast"))
    c.stores[node].replica_side.handle_op(KvOp("put", record=record))


async def test_a_clients_later_write_outranks_its_delete_through_a_cut_off_agent_ahead(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(STORE, "abcd", core=CORE) as c:
        placement = c.stores["a"].placement
        keys = [f"k{i}" for i in range(400) if "a" in placement.replicas_of_key(f"k{i}")]
        plain, session, other = keys[:3]
        coordinator = next(n for n in "bcd" if n in placement.replicas_of_key(session))
        for key in (plain, session):
            await c.stores[coordinator].put(key, b"before", "all")
        # a's hybrid clock runs AHEAD_MS ahead: it kept a record stamped that far ahead.
        record_on(c, "a", other, c.walls["a"].wall_ms() + AHEAD_MS)
        c.net.partition([c.ips["a"]], [c.ips[n] for n in "bcd"])
        deletes = {key: await c.stores["a"].delete(key, "one") for key in (plain, session)}
        await trio.sleep(0.01)
        await c.stores[coordinator].put(plain, b"later", "quorum")
        seen = deletes[session].version
        written = await c.stores[coordinator].put(
            session, b"later", "quorum", after=(seen.wall, seen.counter)
        )
        assert written.version > seen
        c.net.heal()
        await c.settle()
        await wait_until(c.digests_agree, 60)
        # Without the session rule the earlier delete wins (the documented limit) ...
        assert await c.stores["b"].get(plain, "all") is None
        # ... with it, the client's later write does.
        assert await c.stores["b"].get(session, "all") == b"later"


async def test_after_ahead_of_the_store_clock_is_refused_and_over_http_garbage_is_a_400(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(STORE, "abc", core=CORE) as c:
        store = c.stores["a"]
        beyond = c.walls["a"].wall_ms() + 2 * 60_000  # past the 60 s max offset
        with pytest.raises(AfterAhead):
            await store.put("k", b"v", "quorum", after=(beyond, 0))
        assert store.get_local("k") is None
        routes = store_routes(store)

        async def call(method: str, **query: str) -> int:
            req = ApiRequest(method, "/v1/kv/k", query, {}, b"v")
            try:
                return (await routes[(method, "/v1/kv/*")](req)).status
            except ApiError as exc:  # the API server turns these into answers
                return exc.status

        assert await call("PUT", after="soon") == 400
        assert await call("DELETE", after="1.2.3") == 400
        assert await call("PUT", after=f"{beyond}.0@x") == 503
        now = c.walls["a"].wall_ms()
        assert await call("PUT", after=f"{now + 30}.0@x") == 200
        assert await call("DELETE", after=f"{now + 30}.1") == 200
        local = store.get_local("k")
        assert local is not None and local.deleted and local.version.wall >= now + 30

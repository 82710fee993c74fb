"""Long-poll watches on the store routes, on real agents over loopback."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
import trio

from gossip.runtime.http import ApiError, ApiRequest, Handler, RouteKey
from gossip.runtime.store.routes import store_routes
from gossip.runtime.store.watch import ABSENT, WatchGate, wait_for_change
from tests.unit.store.test_store_service import cluster


async def call(
    routes: Mapping[RouteKey, Handler], path: str, **query: str
) -> tuple[int, dict[str, Any]]:
    route = path if ("GET", path) in routes else "/v1/kv/*"
    try:
        resp = await routes[("GET", route)](ApiRequest("GET", path, query, {}, b""))
    except ApiError as exc:
        return exc.status, {"error": exc.message}
    return resp.status, json.loads(resp.body)


async def test_a_key_watch_answers_with_the_write_made_on_another_agent() -> None:
    async with cluster(3) as c:
        routes = store_routes(c.stores[2])
        status, first = await call(routes, "/v1/kv/cfg", watch="x", wait="1")
        assert (status, first["version"], first["changed"]) == (200, ABSENT, True)
        answer: dict[str, Any] = {}

        async def watcher() -> None:
            answer.update((await call(routes, "/v1/kv/cfg", watch=ABSENT, wait="20"))[1])

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watcher)
            await trio.sleep(0.5)
            assert not answer  # still waiting: nothing changed yet
            await c.stores[0].put("cfg", b"on")
        assert answer["changed"] and answer["value_b64"] == "b24="
        assert answer["version"] != ABSENT


async def test_a_watch_with_the_current_version_times_out_unchanged() -> None:
    async with cluster(3) as c:
        routes = store_routes(c.stores[1])
        await c.stores[0].put("cfg", b"v1")
        _, now = await call(routes, "/v1/kv/cfg", watch=ABSENT, wait="1")
        status, same = await call(routes, "/v1/kv/cfg", watch=now["version"], wait="1")
        assert status == 200 and not same["changed"] and same["version"] == now["version"]


async def test_a_watcher_coming_back_with_an_old_version_gets_the_last_value_at_once() -> None:
    async with cluster(3) as c:
        routes = store_routes(c.stores[1])
        await c.stores[0].put("cfg", b"v1")
        _, seen = await call(routes, "/v1/kv/cfg", watch=ABSENT, wait="1")
        await c.stores[0].put("cfg", b"v2")
        await c.stores[2].put("cfg", b"v3")  # two changes while the watcher was away
        _, back = await call(routes, "/v1/kv/cfg", watch=seen["version"], wait="1")
        assert back["changed"] and back["value_b64"] == "djM="
        await c.stores[2].delete("cfg")
        _, gone = await call(routes, "/v1/kv/cfg", watch=back["version"], wait="1")
        assert gone["changed"] and gone["deleted"] and gone["value_b64"] is None


async def test_a_prefix_index_changes_with_every_put_and_delete_under_the_prefix() -> None:
    async with cluster(3) as c:
        routes = store_routes(c.stores[0])
        await c.stores[1].put("svc/a", b"1")
        _, one = await call(routes, "/v1/kv", prefix="svc/", watch="", wait="1")
        assert one["changed"] and [k["key"] for k in one["keys"]] == ["svc/a"]
        _, same = await call(routes, "/v1/kv", prefix="svc/", watch=one["index"], wait="1")
        assert not same["changed"] and same["index"] == one["index"]
        await c.stores[2].put("other", b"x")  # outside the prefix: no change
        _, still = await call(routes, "/v1/kv", prefix="svc/", watch=one["index"], wait="1")
        assert not still["changed"]
        await c.stores[2].put("svc/b", b"2")
        _, two = await call(routes, "/v1/kv", prefix="svc/", watch=one["index"], wait="5")
        assert two["changed"] and [k["key"] for k in two["keys"]] == ["svc/a", "svc/b"]
        await c.stores[2].delete("svc/a")
        _, three = await call(routes, "/v1/kv", prefix="svc/", watch=two["index"], wait="5")
        assert three["changed"] and [k["key"] for k in three["keys"]] == ["svc/b"]


@pytest.mark.parametrize("wait", ["0", "301", "soon", "nan"])
async def test_a_wait_out_of_range_is_a_400(wait: str) -> None:
    async with cluster(1) as c:
        status, body = await call(store_routes(c.stores[0]), "/v1/kv/k", watch=ABSENT, wait=wait)
        assert status == 400 and "wait" in body["error"]


async def test_watches_above_the_bound_are_refused_with_429_and_long_prefixes_with_400() -> None:
    async with cluster(1) as c:
        gate = WatchGate(limit=1)
        routes = store_routes(c.stores[0], gate)
        with gate.admit():
            status, body = await call(routes, "/v1/kv/k", watch=ABSENT, wait="1")
            assert status == 429 and "at most 1" in body["error"]
        assert gate.open == 0
        status, _ = await call(routes, "/v1/kv", prefix="p" * 600, watch="", wait="1")
        assert status == 400


async def test_wait_for_change_always_answers_with_a_fresh_read() -> None:
    reads = iter([1, 1, 1, 2])

    async def read() -> int:
        return next(reads)

    state, changed = await wait_for_change(read, str, "1", wait=10, poll=0.01)
    assert (state, changed) == (2, True)


async def test_the_library_watch_yields_the_current_state_then_each_change() -> None:
    async with cluster(3) as c:
        await c.stores[0].put("svc/a", b"1")
        await c.stores[0].put_ephemeral("svc/e", b"2")  # its index entry stays hidden
        states = c.stores[2].watch("svc/")
        first = await anext(states)
        assert [i.key for i in first] == ["svc/a", "svc/e"]
        await c.stores[1].delete("svc/a")
        second = await anext(states)
        assert [i.key for i in second] == ["svc/e"]
        await states.aclose()  # type: ignore[attr-defined]

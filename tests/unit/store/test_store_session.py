"""A client's session version: a write passed `after` is stamped above it, whatever the
clock of the agent it goes through (fault run seed 41: a delete at `one` through an agent
whose store clock ran 34 ms ahead hid the same client's later quorum put)."""

from __future__ import annotations

import json

import pytest

from gossip.core.store.hlc import Timestamp
from gossip.core.store.record import RecordError
from gossip.core.store.session import SessionError, greater, parse_version
from gossip.runtime.http import ApiError, ApiRequest
from gossip.runtime.store.routes import store_routes, version_text
from tests.unit.store.test_store_service import cluster


def test_a_version_text_parses_and_garbage_is_refused() -> None:
    assert parse_version("1767225601469.3@n1") == Timestamp(1767225601469, 3, "n1")
    assert parse_version("5.0@") == Timestamp(5, 0, "")
    for bad in ("", "5@n1", "x.1@n1", "5.1", "-5.1@n", "5.-1@n", "\u0665.1@n", "5.1@" + "n" * 400):
        with pytest.raises(SessionError):
            parse_version(bad)
    with pytest.raises(SessionError):
        parse_version(f"{1 << 64}.0@n")


def test_a_session_keeps_the_greatest_version_it_saw() -> None:
    assert greater(None, "5.0@a") == "5.0@a"
    assert greater("5.0@a", "4.9@b") == "5.0@a"
    assert greater("5.0@a", "5.1@a") == "5.1@a"
    assert greater("5.0@a", "garbage") == "5.0@a"


async def test_a_write_after_a_version_ahead_of_this_agents_clock_is_stamped_above_it() -> None:
    async with cluster(3) as c:
        first = await c.stores[0].put("k", b"early", "quorum")
        ahead = Timestamp(first.version.wall + 30_000, 7, "zz")  # another agent 30 s ahead
        later = await c.stores[1].put("k", b"later", "quorum", after=ahead)
        assert later.version > ahead
        gone = await c.stores[2].delete("k", "quorum", after=later.version)
        assert gone.version > later.version
        with pytest.raises(RecordError):  # not a version any agent stamped: an hour ahead
            await c.stores[0].put(
                "k", b"x", "quorum", after=Timestamp(ahead.wall + 3_600_000, 0, "a")
            )


async def test_the_http_routes_take_after_and_refuse_garbage() -> None:
    async with cluster(2) as c:
        routes = store_routes(c.stores[0])
        put, delete = routes[("PUT", "/v1/kv/*")], routes[("DELETE", "/v1/kv/*")]
        first = await c.stores[0].put("k", b"v", "quorum")
        ahead = Timestamp(first.version.wall + 20_000, 0, "n9")
        resp = await put(ApiRequest("PUT", "/v1/kv/k", {"after": version_text(ahead)}, {}, b"w"))
        assert resp.status == 200 and parse_version(_version(resp.body)) > ahead
        with pytest.raises(ApiError) as bad:
            await delete(ApiRequest("DELETE", "/v1/kv/k", {"after": "yesterday"}, {}, b""))
        assert bad.value.status == 400 and "after" in bad.value.message
        far = Timestamp(first.version.wall + 3_600_000, 0, "n9")
        with pytest.raises(ApiError) as refused:
            await put(ApiRequest("PUT", "/v1/kv/k", {"after": version_text(far)}, {}, b"w"))
        assert refused.value.status == 400


def _version(body: bytes) -> str:
    text: str = json.loads(body)["version"]
    return text

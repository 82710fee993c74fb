"""The member hygiene routes on an agent in process: force-leave, filtered members, tag changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio

from gossip.core.types import Address
from gossip.runtime.api import control_routes
from gossip.runtime.embed import open_agent
from gossip.runtime.http import ApiError, ApiRequest
from gossip.runtime.settings import AgentSettings

FAST = {"probe_interval": 0.2, "probe_timeout": 0.1, "gossip_interval": 0.05}


def settings(
    name: str,
    data_dir: Path | None = None,
    tags: dict[str, str] | None = None,
    seed: Address | None = None,
) -> Any:
    return AgentSettings(
        join=(f"{seed[0]}:{seed[1]}",) if seed else (),
        name=name,
        bind=("127.0.0.1", 0),
        api=None,
        profile="local",
        core=FAST,
        data_dir=data_dir,
        tags=tags or {},
    )


async def call(agent: Any, method: str, path: str, body: object = None, **query: str) -> Any:
    routes = control_routes(agent)
    raw = b"" if body is None else json.dumps(body).encode()
    resp = await routes[(method, path)](ApiRequest(method, path, query, {}, raw))
    return json.loads(resp.body)


async def test_tag_changes_apply_live_and_a_restart_keeps_them(tmp_path: Path) -> None:
    flags = {"role": "web", "zone": "a", "rack": "r1"}
    async with open_agent(settings("a", tmp_path, flags)) as agent:
        answer = await call(agent, "POST", "/v1/tags", {"set": {"role": "db"}, "delete": ["zone"]})
        assert answer == {"tags": {"role": "db", "rack": "r1"}}
        assert dict(agent.self_info().tags) == {"role": "db", "rack": "r1"}  # type: ignore[union-attr]
        before = agent.incarnation
        with pytest.raises(ApiError) as refused:
            await call(agent, "POST", "/v1/tags", {"set": {"big": "x" * 500}})
        assert refused.value.status == 400 and "limit" in refused.value.message
        assert agent.incarnation == before  # refused: nothing was announced
        assert dict(agent.self_info().tags) == {"role": "db", "rack": "r1"}  # type: ignore[union-attr]
    flags["rack"] = "r2"  # a flag the operator never changed live still follows the flags
    async with open_agent(settings("a", tmp_path, flags)) as agent:
        assert dict(agent.self_info().tags) == {"role": "db", "rack": "r2"}  # type: ignore[union-attr]


async def test_force_leave_refuses_a_live_member_and_a_bad_body() -> None:
    async with (
        open_agent(settings("a")) as first,
        open_agent(settings("b", seed=first.address)) as second,
    ):
        with trio.fail_after(10):
            while first.member("b") is None:  # noqa: ASYNC110
                await trio.sleep(0.05)
        with pytest.raises(ApiError) as alive:
            await call(first, "POST", "/v1/force-leave", {"name": "b"})
        assert alive.value.status == 409 and "only a failed member" in alive.value.message
        with pytest.raises(ApiError) as bad:
            await call(first, "POST", "/v1/force-leave", {"name": "b", "prune": "yes"})
        assert bad.value.status == 400 and bad.value.message.startswith("prune:")
        with pytest.raises(ApiError) as empty:
            await call(first, "POST", "/v1/force-leave", {})
        assert empty.value.status == 400 and empty.value.message.startswith("name:")
        listed = await call(first, "GET", "/v1/members", name="b|c")
        assert [m["name"] for m in listed["members"]] == ["b"]
        with pytest.raises(ApiError) as regex:
            await call(first, "GET", "/v1/members", name="(")
        assert regex.value.status == 400 and regex.value.message.startswith("name:")
        assert second.member("a") is not None

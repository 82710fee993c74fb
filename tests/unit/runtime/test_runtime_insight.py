"""The insight routes on real agents over the in-memory network (virtual time):
coordinates and estimated round trips, reachability, and `why`."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
import trio
import trio.testing

from gossip.core.types import MemberState
from gossip.runtime.agent import Agent
from gossip.runtime.http import ApiError, ApiRequest
from gossip.runtime.settings import AgentSettings
from gossip.testing.memnet import MemoryNetwork


async def start_agents(
    nursery: trio.Nursery, net: MemoryNetwork, n: int, coordinates: bool = True
) -> list[Agent]:
    agents = []
    for i in range(n):
        settings = AgentSettings(
            name=f"m{i}",
            bind=(f"10.0.0.{i + 1}", 7946),
            api=None,
            join=() if i == 0 else ("10.0.0.1:7946",),
            core={"coordinates": coordinates},
        )
        agent = Agent(settings, network=net.host(f"10.0.0.{i + 1}"), rng=random.Random(i))
        await nursery.start(agent.serve)
        agents.append(agent)
    with trio.fail_after(60):
        while not all(len(a.members()) == n for a in agents):  # noqa: ASYNC110 - virtual time
            await trio.sleep(0.1)
    return agents


async def get(agent: Agent, path: str, **query: str) -> Any:
    handler = agent.routes[("GET", path)]
    response = await handler(ApiRequest("GET", path, query, {}, b""))
    assert response.status == 200
    return json.loads(response.body)


async def test_reachability_lists_who_answers_a_direct_ping_now_with_round_trips(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = MemoryNetwork(random.Random(1))
    net.faults.latency = 0.010
    async with trio.open_nursery() as nursery:
        nursery.start_soon(net.run)
        agents = await start_agents(nursery, net, 3, coordinates=False)
        answer = await get(agents[0], "/v1/reachability", timeout="0.5")
        rows = {r["name"]: r for r in answer["members"]}
        assert set(rows) == {"m1", "m2"} and all(r["answered"] for r in rows.values())
        assert all(r["rtt_ms"] == pytest.approx(20.0, abs=5.0) for r in rows.values())
        net.faults.down.add("10.0.0.3")
        answer = await get(agents[0], "/v1/reachability", timeout="0.5")
        rows = {r["name"]: r for r in answer["members"]}
        assert rows["m1"]["answered"] and not rows["m2"]["answered"]
        assert rows["m2"]["rtt_ms"] is None
        assert agents[0].member("m2") is not None  # a check never changes state
        nursery.cancel_scope.cancel()


async def test_agents_estimate_the_round_trip_between_members_from_coordinates(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = MemoryNetwork(random.Random(2))
    net.faults.latency = 0.010
    async with trio.open_nursery() as nursery:
        nursery.start_soon(net.run)
        agents = await start_agents(nursery, net, 4)
        await trio.sleep(90)
        estimate = await get(agents[0], "/v1/rtt", a="m1", b="m2")
        assert estimate["rtt_ms"] == pytest.approx(20.0, rel=0.25)
        mine = await get(agents[0], "/v1/coordinate")
        assert mine["node"] == "m0" and mine["samples"] > 20 and len(mine["coordinate"]["vec"]) == 8
        near = await get(agents[0], "/v1/nearest", n="2")
        assert [r["node"] for r in near["nearest"]] == [name for name, _ in agents[0].nearest(2)]
        assert len(near["nearest"]) == 2 and "m0" not in str(near)
        nursery.cancel_scope.cancel()


async def test_why_merges_what_every_live_agent_saw_of_a_failed_member(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = MemoryNetwork(random.Random(3))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(net.run)
        agents = await start_agents(nursery, net, 4, coordinates=False)
        net.faults.down.add("10.0.0.4")
        agents[3].stop()
        with trio.fail_after(120):
            while not all(  # noqa: ASYNC110 - virtual time
                (m := a.member("m3")) is not None and m.state == MemberState.DEAD
                for a in agents[:3]
            ):
                await trio.sleep(0.5)
        answer = await get(agents[0], "/v1/why", member="m3")
        story = answer["story"]
        assert answer["observers"] == {"m0": "ok", "m1": "ok", "m2": "ok"}
        failed = [r for r in story if r["event"] == "failed"]
        assert {r["observer"] for r in failed} == {"m0", "m1", "m2"}
        assert all({"accuser", "confirmations", "observer_health"} <= set(r) for r in failed)
        assert [r["time_ms"] for r in story] == sorted(r["time_ms"] for r in story)
        first = [r["event"] for r in story if r["observer"] == "m1"]
        assert first[0] == "joined" and first.index("suspected") < first.index("failed")
        nursery.cancel_scope.cancel()


async def test_bad_queries_and_coordinates_off_are_clear_errors(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = MemoryNetwork(random.Random(4))
    async with trio.open_nursery() as nursery:
        agents = await start_agents(nursery, net, 1, coordinates=False)
        routes = agents[0].routes
        cases = [
            ("/v1/rtt", {"a": "m0"}, 409),
            ("/v1/reachability", {"timeout": "nan"}, 400),
            ("/v1/reachability", {"timeout": "99"}, 400),
            ("/v1/why", {}, 400),
            ("/v1/history", {"member": "x" * 300}, 400),
        ]
        for path, query, status in cases:
            with pytest.raises(ApiError) as err:
                await routes[("GET", path)](ApiRequest("GET", path, query, {}, b""))
            assert err.value.status == status, path
        nursery.cancel_scope.cancel()

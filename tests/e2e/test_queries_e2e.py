"""Queries between whole agents on the in-memory network (virtual time),
through the control API's POST /v1/query: replies relayed around a one-way
cut, an answer too large for a datagram delivered over a stream (and one
over the limit refused), the 429 of an agent over its query bounds, and the
clear empty answer of a filter that matches nobody."""

from __future__ import annotations

import base64
import json
import random
from typing import Any

import pytest
import trio
import trio.testing

from gossip.runtime.agent import Agent
from gossip.runtime.api import control_routes
from gossip.runtime.http import ApiError, ApiRequest
from gossip.runtime.queries import MAX_CONCURRENT, RATE_BURST, RATE_PER_S
from gossip.runtime.queryanswers import MAX_ANSWER_BYTES
from gossip.runtime.settings import AgentSettings
from gossip.testing.memnet import MemoryNetwork

pytestmark = pytest.mark.e2e


def _ip(i: int) -> str:
    return f"10.0.1.{i + 1}"


async def _answering(agent: Agent, answers: dict[str, bytes], refusals: list[str]) -> None:
    """An embedded service: answer every query with answers[agent name]."""
    async with agent.subscribe() as events:
        async for event in events:
            if event.kind == "query":
                try:
                    await agent.respond_query(event, answers.get(agent.name, b"up"))
                except ValueError as exc:
                    refusals.append(str(exc))


async def _cluster(
    nursery: trio.Nursery,
    net: MemoryNetwork,
    n: int,
    answers: dict[str, bytes],
    refusals: list[str],
) -> list[Agent]:
    agents = []
    for i in range(n):
        settings = AgentSettings(
            name=f"q{i}",
            bind=(_ip(i), 7946),
            api=None,
            join=() if i == 0 else (f"{_ip(0)}:7946",),
            profile="local",
        )
        agent = Agent(settings, network=net.host(_ip(i)), rng=random.Random(i))
        await nursery.start(agent.serve)
        nursery.start_soon(_answering, agent, answers, refusals)
        agents.append(agent)
    with trio.fail_after(60):
        while not all(len(a.members()) == n for a in agents):  # noqa: ASYNC110 - virtual time
            await trio.sleep(0.1)
    return agents


async def _query(agent: Agent, **body: Any) -> list[dict[str, Any]]:
    """POST /v1/query on `agent`: the streamed lines."""
    handler = control_routes(agent)[("POST", "/v1/query")]
    request = ApiRequest("POST", "/v1/query", {}, {}, json.dumps(body).encode())
    response = await handler(request)
    assert response.status == 200 and response.stream is not None
    return [json.loads(line) async for line in response.stream]


async def test_replies_reach_the_origin_through_relays_when_the_direct_path_is_cut(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = MemoryNetwork(random.Random(1))
    async with trio.open_nursery() as nursery:
        agents = await _cluster(nursery, net, 4, {}, [])
        net.cut(_ip(1), _ip(0))  # q1's datagrams never reach q0
        direct = await _query(agents[0], name="uptime", node="q1", timeout=2)
        assert (direct[-1]["acks"], direct[-1]["responses"]) == ([], [])
        assert direct[-1]["no_response"] == ["q1"]
        relayed = await _query(agents[0], name="uptime", node="q1", timeout=2, relay=2)
        assert [(x["event"], x.get("from")) for x in relayed[1:]] == [
            ("ack", "q1"),
            ("response", "q1"),
            ("done", None),
        ]  # each once, though two relays passed each on
        assert relayed[-1]["no_response"] == []
        nursery.cancel_scope.cancel()


async def test_a_large_answer_comes_over_a_stream_and_one_over_the_limit_is_refused(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = MemoryNetwork(random.Random(2))
    large = bytes(range(256)) * 40  # 10 KiB: far more than a datagram holds
    answers = {"q1": large, "q2": b"x" * (MAX_ANSWER_BYTES + 1)}
    refusals: list[str] = []
    async with trio.open_nursery() as nursery:
        agents = await _cluster(nursery, net, 3, answers, refusals)
        lines = await _query(agents[0], name="dump", timeout=2)
        got = {x["from"]: x for x in lines if x["event"] == "response"}
        assert set(got) == {"q0", "q1"}
        assert got["q1"]["payload_base64"] == base64.b64encode(large).decode()
        assert lines[-1]["no_response"] == ["q2"]
        assert refusals == [f"a query response takes 65537 bytes; the limit is {MAX_ANSWER_BYTES}"]
        metrics = agents[0].metrics.render()
        assert 'gossip_query_stream_answers_total{direction="in",result="ok"} 1' in metrics
        nursery.cancel_scope.cancel()


async def test_a_filter_that_matches_nobody_gets_a_clear_empty_answer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = MemoryNetwork(random.Random(3))
    async with trio.open_nursery() as nursery:
        agents = await _cluster(nursery, net, 2, {}, [])
        nobody = await _query(agents[0], name="uptime", node="nobody-*", timeout=0.5)
        assert nobody[0]["expected"] == []
        assert {k: nobody[-1][k] for k in ("acks", "responses", "no_ack", "no_response")} == {
            "acks": [],
            "responses": [],
            "no_ack": [],
            "no_response": [],
        }
        nursery.cancel_scope.cancel()


async def test_an_agent_over_its_query_bounds_answers_429_then_admits_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = MemoryNetwork(random.Random(4))
    async with trio.open_nursery() as nursery:
        agents = await _cluster(nursery, net, 2, {}, [])

        async def ask() -> None:
            body = json.dumps({"name": "uptime", "timeout": 30}).encode()
            await control_routes(agents[0])[("POST", "/v1/query")](
                ApiRequest("POST", "/v1/query", {}, {}, body)
            )  # its lines never read: the query stays open until its deadline

        async def refused() -> str:
            with pytest.raises(ApiError) as refusal:
                await ask()
            assert refusal.value.status == 429
            return refusal.value.message

        for _ in range(RATE_BURST):
            await ask()
        assert "rate of 5 queries a second (bursts of 10); try again in" in await refused()
        await trio.sleep(RATE_BURST / RATE_PER_S)
        for _ in range(MAX_CONCURRENT - RATE_BURST):
            await ask()
        assert "16 queries of this agent are open" in await refused()
        await trio.sleep(31)  # past their deadline, they no longer count
        await ask()
        metrics = agents[0].metrics.render()
        assert 'gossip_queries_refused_total{reason="rate"} 1' in metrics
        assert 'gossip_queries_refused_total{reason="concurrency"} 1' in metrics
        nursery.cancel_scope.cancel()

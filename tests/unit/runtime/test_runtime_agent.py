"""Agents in one trio process over real loopback sockets: join, services, sealing, leave."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest
import trio

from gossip.client.localcluster import find_free_base
from gossip.core.types import Address, MemberState
from gossip.runtime.agent import Agent
from gossip.runtime.api import control_routes
from gossip.runtime.embed import open_agent
from gossip.runtime.http import ApiError, ApiRequest, ApiResponse, Handler, RouteKey
from gossip.runtime.logconfig import configure_logging
from gossip.runtime.service import DatagramHandler, MemberEvent, Service, StreamHandler
from gossip.runtime.settings import AgentSettings
from gossip.security.sealing import SealRejected

FAST = {
    "probe_interval": 0.2,
    "probe_timeout": 0.1,
    "gossip_interval": 0.05,
    "push_pull_interval": 5.0,
    "leave_timeout": 1.0,
}


def settings(name: str, seed: Address | None = None, **kw: object) -> AgentSettings:
    join = (f"{seed[0]}:{seed[1]}",) if seed else ()
    return AgentSettings(
        name=name, bind=("127.0.0.1", 0), api=None, profile="local", core=FAST, join=join, **kw
    )  # type: ignore[arg-type]


def states(agent: Agent) -> dict[str, MemberState]:
    return {m.name: m.state for m in agent.members()}


async def wait_for(check: Callable[[], bool], limit: float = 10.0) -> None:
    """Poll `check` (state lives in other agents' tasks; no event to wait on)."""
    with trio.fail_after(limit):
        while not check():  # noqa: ASYNC110
            await trio.sleep(0.05)


@asynccontextmanager
async def cluster(n: int, **kw: object) -> AsyncIterator[list[Agent]]:
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(open_agent(settings("a0"), **kw))  # type: ignore[arg-type]
        agents = [first]
        for i in range(1, n):
            agents.append(
                await stack.enter_async_context(open_agent(settings(f"a{i}", first.address), **kw))  # type: ignore[arg-type]
            )
        yield agents


async def test_agents_join_through_one_seed_and_see_each_other_alive() -> None:
    async with cluster(3) as agents:
        names = {"a0", "a1", "a2"}
        await wait_for(
            lambda: all(
                set(states(a)) == names and set(states(a).values()) == {MemberState.ALIVE}
                for a in agents
            )
        )
        assert all(a.joined.is_set() for a in agents[1:])
        metrics = agents[1].metrics.render()
        assert 'gossip_members{state="alive"} 3' in metrics
        assert "gossip_udp_packets_sent_total" in metrics


async def test_an_agent_whose_seed_starts_later_joins_it_on_a_retry() -> None:
    # Below the ephemeral range, so no outgoing connection takes the port meanwhile.
    seed = ("127.0.0.1", find_free_base(1))
    async with open_agent(settings("a1", seed)) as late:
        await trio.sleep(0.3)
        assert not late.joined.is_set()
        first = AgentSettings(name="a0", bind=seed, api=None, profile="local", core=FAST)
        async with open_agent(first) as a0:
            # The core's retries come 1, 2, 4, 8, 16 s (x 1-1.5) apart: a generous
            # bound, since a0 may start slowly on a loaded machine.
            await wait_for(late.joined.is_set, limit=60.0)
            await wait_for(lambda: "a1" in states(a0))


async def test_a_graceful_leave_is_seen_as_left_and_reported_to_subscribers() -> None:
    async with cluster(3) as agents:
        await wait_for(lambda: all(len(states(a)) == 3 for a in agents))
        seen: list[MemberEvent] = []
        sub = agents[0].subscribe()

        async def collect() -> None:
            async for event in sub:
                seen.append(event)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(collect)
            await agents[2].leave()
            await wait_for(lambda: states(agents[0]).get("a2") == MemberState.LEFT)
            await wait_for(lambda: any(e.kind == "left" for e in seen), 2)
            sub.close()
        left = [e for e in seen if e.kind == "left"]
        assert left[0].name == "a2"
        assert left[0].to_json()["event"] == "member_left"
        # a1 hears of the leave by gossip, which may reach it after a0.
        await wait_for(lambda: states(agents[1]).get("a2") == MemberState.LEFT)


class EchoService(Service):
    name = "echo"

    def __init__(self) -> None:
        self.events: list[str] = []
        self.datagrams: list[bytes] = []
        self.left = False
        self.running = False

    def routes(self) -> Mapping[RouteKey, Handler]:
        async def hello(req: ApiRequest) -> ApiResponse:
            return ApiResponse.json({"hello": req.query.get("who", "")})

        return {("GET", "/v1/hello"): hello}

    def stream_channels(self) -> Mapping[str, StreamHandler]:
        async def echo(src: Address, body: bytes) -> bytes | None:
            return None if body == b"silence" else body[::-1]

        return {"echo": echo}

    def datagram_channels(self) -> Mapping[str, DatagramHandler]:
        return {"echo-d": lambda src, body: self.datagrams.append(body)}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.running = True
        task_status.started()
        await trio.sleep_forever()

    def member_event(self, event: MemberEvent) -> None:
        self.events.append(f"{event.kind}:{event.name}")

    async def before_leave(self) -> None:
        self.left = True


async def test_services_get_channels_routes_events_and_a_leave_hook() -> None:
    services = [EchoService(), EchoService()]
    async with open_agent(settings("s0"), services=[services[0]]) as a0:
        async with open_agent(settings("s1", a0.address), services=[services[1]]) as a1:
            await wait_for(lambda: len(states(a0)) == 2)
            assert await a1.request(a0.address, "echo", b"abc") == b"cba"
            assert await a1.request(a0.address, "echo", b"silence") is None
            await a1.send_datagram(a0.address, "echo-d", b"ping")
            await wait_for(lambda: services[0].datagrams == [b"ping"], 2)
            response = await a0.routes[("GET", "/v1/hello")](
                ApiRequest("GET", "/v1/hello", {"who": "me"}, {}, b"")
            )
            assert json.loads(response.body) == {"hello": "me"}
            assert "joined:s1" in services[0].events
            assert services[0].running
        assert services[1].left
        await wait_for(lambda: "left:s1" in services[0].events, 3)


class XorSealer:
    """A toy sealer for the seam test: flips bits and checks a one-byte marker."""

    def __init__(self, key: int) -> None:
        self.key = key

    @property
    def overhead(self) -> int:
        return 1

    def seal(self, plaintext: bytes, peer: Address | None = None) -> bytes:
        return bytes([self.key]) + bytes(b ^ self.key for b in plaintext)

    def open(self, sealed: bytes, peer: Address | None = None) -> bytes:
        if not sealed or sealed[0] != self.key:
            raise SealRejected("wrong_key")
        return bytes(b ^ self.key for b in sealed[1:])


async def test_the_sealer_seam_wraps_datagrams_and_streams_and_counts_rejections() -> None:
    async with open_agent(settings("k0"), sealer=XorSealer(7)) as k0:
        async with open_agent(settings("k1", k0.address), sealer=XorSealer(7)) as k1:
            await wait_for(lambda: len(states(k0)) == 2 and len(states(k1)) == 2)
        async with open_agent(settings("z", k0.address), sealer=XorSealer(9)) as z:
            await trio.sleep(1.0)
            assert set(states(z)) == {"z"}
            assert "z" not in states(k0)
            text = k0.metrics.render()
            assert 'gossip_streams_rejected_total{reason="wrong_key"}' in text


async def test_every_log_line_names_the_agent_that_wrote_it(tmp_path: Path) -> None:
    log_file = tmp_path / "log.jsonl"
    configure_logging("info", "json", log_file)
    try:
        async with cluster(2):
            await trio.sleep(0.3)
    finally:
        configure_logging("warning", "json")
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    started = {line["node"] for line in lines if line["event"] == "agent_started"}
    assert started == {"a0", "a1"}
    assert all("node" in line and line["timestamp"].endswith("Z") for line in lines)
    joined = [line for line in lines if line["event"] == "member_joined"]
    assert {(line["node"], line["member"]) for line in joined} >= {("a0", "a1"), ("a1", "a0")}


def test_the_library_api_is_exported_from_the_package() -> None:
    import gossip

    assert gossip.open_agent is open_agent
    assert gossip.AgentSettings is AgentSettings
    assert gossip.Agent is Agent


async def test_control_routes_validate_bodies_and_change_tags() -> None:
    async with cluster(1) as (agent,):
        routes = control_routes(agent)

        async def post(path: str, body: bytes) -> tuple[int, object]:
            resp = await routes[("POST", path)](ApiRequest("POST", path, {}, {}, body))
            return resp.status, json.loads(resp.body)

        with pytest.raises(ApiError) as info:
            await post("/v1/join", b'{"addresses": "x"}')
        assert info.value.status == 400 and "addresses" in info.value.message
        with pytest.raises(ApiError):
            await post("/v1/tags", b'{"tags": {"a": 1}}')
        assert await post("/v1/tags", b'{"tags": {"role": "db"}}') == (
            200,
            {"tags": {"role": "db"}},
        )
        await wait_for(lambda: dict(agent.self_info().tags) == {"role": "db"})  # type: ignore[union-attr]
        resp = await routes[("GET", "/v1/members")](ApiRequest("GET", "/v1/members", {}, {}, b""))
        assert json.loads(resp.body)["members"][0]["tags"] == {"role": "db"}


class BlockingService(Service):
    """Blocks the event loop once, as a careless synchronous call would."""

    name = "blocker"

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.sleep(0.1)
        time.sleep(1.0)  # noqa: ASYNC251 - the point of the test


async def test_a_blocked_event_loop_is_measured_and_reported(tmp_path: Path) -> None:
    log_file = tmp_path / "log.jsonl"
    configure_logging("info", "json", log_file)
    try:
        async with open_agent(settings("lag"), services=[BlockingService()]) as agent:
            await trio.sleep(1.8)
            text = agent.metrics.render()
    finally:
        configure_logging("warning", "json")
    slow = [line for line in text.splitlines() if line.startswith("gossip_event_loop_lag")]
    assert 'gossip_event_loop_lag_seconds_bucket{le="0.25"}' in "\n".join(slow)
    count = next(float(x.split()[1]) for x in slow if "lag_seconds_count" in x)
    under = next(float(x.split()[1]) for x in slow if 'le="0.25"' in x)
    assert count > under  # one sample above 0.25 s
    stalls = [json.loads(x) for x in log_file.read_text().splitlines() if "event_loop_stalled" in x]
    assert stalls and stalls[0]["lag_s"] >= 0.2 and stalls[0]["node"] == "lag"

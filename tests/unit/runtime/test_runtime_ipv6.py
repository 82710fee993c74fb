"""IPv6 and dual stack on loopback: real sockets on ::1, and a cluster mixing families."""

from __future__ import annotations

import socket
from contextlib import AsyncExitStack

import pytest
import trio

from gossip.client.api import ApiClient
from gossip.core.types import Address, MemberState
from gossip.hostport import format_hostport
from gossip.runtime.agent import Agent
from gossip.runtime.embed import open_agent
from gossip.runtime.settings import AgentSettings, load_settings

FAST = {"probe_interval": 0.2, "probe_timeout": 0.1, "gossip_interval": 0.05}


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


pytestmark = pytest.mark.skipif(
    not _has_ipv6_loopback(), reason="this host has no IPv6 loopback address (::1)"
)


def v6_settings(name: str, bind: Address, **kw: object) -> AgentSettings:
    return AgentSettings(name=name, bind=bind, profile="local", core=FAST, **kw)  # type: ignore[arg-type]


async def wait_until_all_alive(agents: list[Agent], limit: float = 10.0) -> None:
    with trio.fail_after(limit):
        while not all_alive(agents):  # noqa: ASYNC110 - state lives in other tasks
            await trio.sleep(0.05)


def all_alive(agents: list[Agent]) -> bool:
    names = {a.name for a in agents}
    return all(
        {m.name for m in a.members() if m.state == MemberState.ALIVE} == names for a in agents
    )


def test_ipv6_addresses_are_accepted_in_brackets_by_every_setting() -> None:
    s = load_settings(
        {
            "bind": "[::]:7946",
            "advertise": "[fd00::7]:0",
            "join": ["[fd00::1]:7946", "srv:_g._udp.x"],
            "api": "[::1]:7947",
        },
        env={},
    )
    assert s.bind == ("::", 7946) and s.advertise == ("fd00::7", 0) and s.api == ("::1", 7947)
    assert s.join == ("[fd00::1]:7946", "srv:_g._udp.x")


async def test_agents_on_ipv6_loopback_join_gossip_and_serve_the_api() -> None:
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(
            open_agent(v6_settings("v0", ("::1", 0), api=("::1", 0)))
        )
        host, port = first.address
        assert host == "::1"
        agents = [first]
        for i in (1, 2):
            seed = (f"[::1]:{port}",)
            agents.append(
                await stack.enter_async_context(
                    open_agent(v6_settings(f"v{i}", ("::1", 0), join=seed, api=None))
                )
            )
        await wait_until_all_alive(agents)
        assert first.api_address is not None and first.api_address[0] == "::1"
        client = ApiClient(f"[::1]:{first.api_address[1]}")
        answer = await trio.to_thread.run_sync(client.call, "GET", "/v1/members")
        addresses = {m["name"]: m["address"] for m in answer["members"]}
        assert addresses["v0"] == f"[::1]:{port}"
        assert all(a.startswith("[::1]:") for a in addresses.values())


async def test_dual_stack_agents_reach_members_of_either_family_as_advertised() -> None:
    """Bound to [::], each advertises one family; every pair still talks, UDP and TCP."""
    async with AsyncExitStack() as stack:
        agents: list[Agent] = []
        for i, advertise in enumerate([("127.0.0.1", 0), ("::1", 0), ("127.0.0.1", 0)]):
            join = (format_hostport(*agents[-1].address),) if agents else ()
            agents.append(
                await stack.enter_async_context(
                    open_agent(
                        v6_settings(f"d{i}", ("::", 0), advertise=advertise, join=join, api=None)
                    )
                )
            )
        await wait_until_all_alive(agents)
        seen = {m.name: m.address[0] for m in agents[0].members()}
        assert seen == {"d0": "127.0.0.1", "d1": "::1", "d2": "127.0.0.1"}
        # Every agent probed both others (one of each family) and got its acks.
        with trio.fail_after(10):
            while min(probe_acks(a) for a in agents) < 2:  # noqa: ASYNC110
                await trio.sleep(0.05)


def probe_acks(agent: Agent) -> float:
    """How many probe round trips `agent` has measured (each one an ack received)."""
    for line in agent.metrics.render().splitlines():
        if line.startswith("gossip_probe_rtt_seconds_count"):
            return float(line.split()[1])
    return 0.0

"""Seeds: parsing, every A/AAAA record, SRV records re-resolved, families, failures skipped."""

from __future__ import annotations

import random
import socket
import sys
from contextlib import AsyncExitStack

import pytest
import trio
import trio.testing

from gossip.core.types import Address
from gossip.runtime.agent import Agent
from gossip.runtime.dnsresolver import SystemResolver
from gossip.runtime.embed import open_agent
from gossip.runtime.seeds import (
    MAX_ADDRESSES_PER_SEED,
    HostSeed,
    ResolveError,
    SrvRecord,
    SrvSeed,
    parse_seed,
    resolve_seeds,
)
from gossip.runtime.settings import AgentSettings
from gossip.testing.memnet import MemoryNetwork


class FakeResolver:
    """Answers from tables; counts the lookups it was asked."""

    def __init__(
        self,
        hosts: dict[str, list[str]],
        srv: dict[str, list[SrvRecord]] | None = None,
    ) -> None:
        self.hosts = hosts
        self.srv_records = srv or {}
        self.lookups: list[str] = []

    async def addresses(self, host: str, port: int) -> list[Address]:
        self.lookups.append(host)
        if host not in self.hosts:
            raise ResolveError(f"no such name {host}")
        return [(ip, port) for ip in self.hosts[host]]

    async def srv(self, name: str) -> list[SrvRecord]:
        self.lookups.append("srv:" + name)
        if name not in self.srv_records:
            raise ResolveError(f"no SRV records for {name}")
        return self.srv_records[name]


def test_seeds_parse_as_host_port_or_srv_name() -> None:
    assert parse_seed("10.0.0.1:7000") == HostSeed("10.0.0.1", 7000)
    assert parse_seed("[::1]:7000") == HostSeed("::1", 7000)
    assert parse_seed("seeds.example") == HostSeed("seeds.example", 7946)
    assert parse_seed("srv:_gossip._udp.example.") == SrvSeed("_gossip._udp.example")
    assert parse_seed("SRV:_gossip._tcp.cluster.local") == SrvSeed("_gossip._tcp.cluster.local")


@pytest.mark.parametrize(
    "text", ["srv:", "srv:bad name", "srv:a..b", "srv:" + "a" * 64 + ".x", ":7946", "::1"]
)
def test_bad_seeds_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_seed(text)


async def test_a_name_joins_every_a_and_aaaa_record() -> None:
    resolver = FakeResolver({"seeds.test": ["10.0.0.1", "10.0.0.2", "10.0.0.3", "fd00::4"]})
    found = await resolve_seeds(["seeds.test:7946"], resolver)
    assert found == [("10.0.0.1", 7946), ("10.0.0.2", 7946), ("10.0.0.3", 7946), ("fd00::4", 7946)]


async def test_only_the_families_our_socket_reaches_are_kept() -> None:
    resolver = FakeResolver({"seeds.test": ["10.0.0.1", "fd00::1", "fd00::2"]})
    assert await resolve_seeds(["seeds.test:1"], resolver, {6}) == [("fd00::1", 1), ("fd00::2", 1)]
    assert await resolve_seeds(["seeds.test:1"], resolver, {4}) == [("10.0.0.1", 1)]


async def test_srv_seeds_join_every_target_at_its_port_lowest_priority_first() -> None:
    records = [
        SrvRecord(20, 0, 7002, "c.test"),
        SrvRecord(10, 1, 7001, "b.test."),
        SrvRecord(10, 5, 7000, "a.test"),
    ]
    resolver = FakeResolver(
        {"a.test": ["10.0.0.1"], "b.test": ["10.0.0.2", "fd00::2"], "c.test": ["10.0.0.3"]},
        {"_gossip._udp.test": records},
    )
    found = await resolve_seeds(["srv:_gossip._udp.test"], resolver)
    assert found == [("10.0.0.1", 7000), ("10.0.0.2", 7001), ("fd00::2", 7001), ("10.0.0.3", 7002)]


async def test_bad_srv_targets_are_skipped_and_the_rest_joined() -> None:
    records = [
        SrvRecord(0, 0, 7000, "."),  # "service not offered here"
        SrvRecord(0, 0, 0, "a.test"),  # port 0
        SrvRecord(0, 0, 7000, "bad target!"),
        SrvRecord(0, 0, 7000, "gone.test"),  # no A records
        SrvRecord(1, 0, 7001, "b.test"),
    ]
    resolver = FakeResolver({"a.test": ["10.0.0.1"], "b.test": ["10.0.0.2"]}, {"s.test": records})
    assert await resolve_seeds(["srv:s.test"], resolver) == [("10.0.0.2", 7001)]
    assert "bad target!" not in resolver.lookups and "a.test" not in resolver.lookups


async def test_unresolvable_seeds_are_skipped_and_repeats_dropped() -> None:
    resolver = FakeResolver({"a.test": ["10.0.0.1"], "b.test": ["10.0.0.1"]})
    seeds = ["nowhere.test:1", "srv:nothing.test", "a.test:1", "b.test:1", "10.0.0.9:2"]
    assert await resolve_seeds(seeds, resolver) == [("10.0.0.1", 1)]


async def test_a_seed_contributes_a_bounded_number_of_addresses() -> None:
    many = [f"10.0.{i // 250}.{i % 250 + 1}" for i in range(500)]
    resolver = FakeResolver({"big.test": many})
    assert len(await resolve_seeds(["big.test:1"], resolver)) == MAX_ADDRESSES_PER_SEED


async def test_the_system_resolver_reads_literals_and_localhost_without_a_network() -> None:
    resolver = SystemResolver()
    assert await resolver.addresses("127.0.0.1", 5) == [("127.0.0.1", 5)]
    assert await resolver.addresses("::1", 5) == [("::1", 5)]
    assert ("127.0.0.1", 7) in await resolver.addresses("localhost", 7)


async def test_srv_seeds_are_resolved_again_on_every_join_attempt(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The records appear only after a while (a service registering late): the
    joiner keeps asking and joins once they do."""
    net = MemoryNetwork(random.Random(3))
    resolver = FakeResolver({"seed.cluster.test": ["10.0.0.1"]})
    srv_name = "_gossip._udp.cluster.test"
    seed = AgentSettings(name="seed", bind=("10.0.0.1", 7946), api=None)
    late = AgentSettings(name="late", bind=("10.0.0.2", 7946), api=None, join=(f"srv:{srv_name}",))
    async with trio.open_nursery() as nursery:
        first = Agent(seed, network=net.host("10.0.0.1"), rng=random.Random(1))
        await nursery.start(first.serve)
        joiner = Agent(late, network=net.host("10.0.0.2"), rng=random.Random(2), resolver=resolver)
        await nursery.start(joiner.serve)
        await trio.sleep(20)
        assert not joiner.joined.is_set()
        resolver.srv_records[srv_name] = [SrvRecord(0, 0, 7946, "seed.cluster.test")]
        with trio.fail_after(60):
            await joiner.joined.wait()
        asked = resolver.lookups.count("srv:" + srv_name)
        assert asked >= 3  # at start, then on each retry until the records appeared
        assert {m.name for m in first.members()} == {"seed", "late"}
        nursery.cancel_scope.cancel()


async def test_a_name_with_three_records_joins_all_three_and_merges_their_clusters(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Three agents that know nothing of each other stand behind one name: only a
    newcomer that joins every record brings them into one cluster."""
    net = MemoryNetwork(random.Random(4))
    ips = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    resolver = FakeResolver({"seeds.cluster.test": ips})
    async with trio.open_nursery() as nursery:
        agents = []
        for i, ip in enumerate(ips):
            alone = AgentSettings(name=f"s{i}", bind=(ip, 7946), api=None)
            agents.append(Agent(alone, network=net.host(ip), rng=random.Random(i)))
        newcomer = AgentSettings(
            name="new", bind=("10.0.0.9", 7946), api=None, join=("seeds.cluster.test:7946",)
        )
        agents.append(
            Agent(newcomer, network=net.host("10.0.0.9"), rng=random.Random(9), resolver=resolver)
        )
        for agent in agents:
            await nursery.start(agent.serve)
        names = {a.name for a in agents}
        with trio.fail_after(30):
            while not all({m.name for m in a.members()} == names for a in agents):  # noqa: ASYNC110
                await trio.sleep(0.1)
        nursery.cancel_scope.cancel()


QUICK = {"gossip_interval": 0.05, "leave_timeout": 0.5}


async def _serve_srv(sock: trio.socket.SocketType, records: list[str]) -> None:
    """A one-zone DNS server: every SRV question gets `records` (SRV rdata text)."""
    import dns.message
    import dns.rdataclass
    import dns.rdatatype
    import dns.rrset

    while True:
        wire, peer = await sock.recvfrom(4096)
        query = dns.message.from_wire(wire)
        reply = dns.message.make_response(query)
        question = query.question[0]
        if question.rdtype == dns.rdatatype.SRV:
            reply.answer.append(
                dns.rrset.from_text_list(question.name, 60, dns.rdataclass.IN, "SRV", records)
            )
        await sock.sendto(reply.to_wire(), peer)


async def test_srv_records_from_a_real_dns_answer_join_every_target() -> None:
    """Three separate agents on loopback, named by three SRV records that a DNS
    server on loopback serves: a newcomer joins all three, over the real wire."""
    dns_sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    await dns_sock.bind(("127.0.0.1", 0))
    async with AsyncExitStack() as stack:
        seeds = []
        for i in range(3):
            alone = AgentSettings(
                name=f"s{i}", bind=("127.0.0.1", 0), api=None, profile="local", core=QUICK
            )
            seeds.append(await stack.enter_async_context(open_agent(alone)))
        records = [f"{i} 0 {a.address[1]} localhost." for i, a in enumerate(seeds)]
        nursery = await stack.enter_async_context(trio.open_nursery())
        nursery.start_soon(_serve_srv, dns_sock, records)
        resolver = SystemResolver(nameserver=dns_sock.getsockname())
        answer = await resolver.srv("_gossip._udp.cluster.test")
        assert sorted((r.port, r.target) for r in answer) == sorted(
            (a.address[1], "localhost") for a in seeds
        )
        newcomer = AgentSettings(
            name="new",
            bind=("127.0.0.1", 0),
            api=None,
            profile="local",
            core=QUICK,
            join=("srv:_gossip._udp.cluster.test",),
        )
        agent = await stack.enter_async_context(open_agent(newcomer, resolver=resolver))
        everyone = [*seeds, agent]
        names = {a.name for a in everyone}
        with trio.fail_after(20):
            while not all({m.name for m in a.members()} == names for a in everyone):  # noqa: ASYNC110
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    dns_sock.close()


async def test_the_bound_applies_to_the_addresses_our_socket_can_reach() -> None:
    many_v6 = [f"fd00::{i + 1:x}" for i in range(100)]
    resolver = FakeResolver({"mixed.test": [*many_v6, "10.0.0.1"]})
    assert await resolve_seeds(["mixed.test:1"], resolver, {4}) == [("10.0.0.1", 1)]


async def test_without_a_usable_dnspython_an_srv_seed_fails_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "dns.asyncresolver", None)  # as if not installed
    with pytest.raises(ResolveError, match="dnspython"):
        await SystemResolver().srv("_gossip._udp.example")
    assert await resolve_seeds(["srv:_gossip._udp.example", "127.0.0.1:5"], SystemResolver()) == [
        ("127.0.0.1", 5)
    ]

"""The emulator on IPv6: namespace addresses, filter rules and agent command lines."""

from __future__ import annotations

from pathlib import Path

from gossip.emulate.agents import AgentSpec
from gossip.emulate.netns import Topology
from gossip.emulate.plan import NetState
from gossip.emulate.rules import bridge_ruleset, input_ruleset


def test_an_ipv6_topology_gives_each_host_a_unique_local_address() -> None:
    topo = Topology(["n1", "n2"], owner=1, ipv6=True)
    assert topo.addresses == {"n1": "fd00:213::b", "n2": "fd00:213::c"}
    assert Topology(["n1"], owner=1).addresses == {"n1": "10.213.0.11"}


def test_ipv6_rules_match_ip6_and_spare_neighbour_discovery() -> None:
    addresses = {"n1": "fd00::1", "n2": "fd00::2"}
    bridge = bridge_ruleset(NetState(loss={"n2": 10.0}), addresses)
    assert (
        "ip6 saddr fd00::1 ip6 daddr fd00::2 meta l4proto != ipv6-icmp"
        " numgen random mod 10000 < 1000 drop" in bridge
    )
    assert "ip saddr" not in bridge
    own = input_ruleset(NetState(groups=(("n1",), ("n2",))), addresses, "n2")
    assert "ip6 saddr fd00::1 meta l4proto != ipv6-icmp drop" in own


def test_agent_command_lines_put_ipv6_addresses_in_brackets(tmp_path: Path) -> None:
    spec = AgentSpec("n2", "fd00::2", ["fd00::1"], "local", tmp_path, prefix=[], command=["g"])
    argv = spec.argv()
    assert argv[argv.index("--bind") + 1] == "[fd00::2]:7946"
    assert argv[argv.index("--advertise") + 1] == "[fd00::2]:7946"
    assert argv[argv.index("--join") + 1] == "[fd00::1]:7946"

"""Protocol versions: advertised ranges, the version a cluster speaks, refusals."""

from __future__ import annotations

import random

import pytest

from gossip.core.membership import outputs as out
from gossip.core.membership.config import Config, ConfigError
from gossip.core.membership.messages import Ack, Ping
from gossip.core.membership.node import Node
from gossip.core.membership.versions import VersionChooser, member_range, parse_range
from gossip.core.membership.wire import Codec, wrap
from gossip.core.membership.wireschema import VersionRefused, WireError
from gossip.core.types import MemberInfo, MemberState
from gossip.testing.corenet import Net, addr

V1 = Config.for_profile("lan")
V12 = V1.replace(protocol_max=2)
V2 = V1.replace(protocol_min=2, protocol_max=2)


def mixed_net(configs: list[Config], seed: int = 1) -> Net:
    """A corenet whose node i runs configs[i]."""
    net = Net(len(configs), seed=seed)
    net.nodes = [
        Node(f"n{i}", addr(i), cfg, rng=random.Random(seed * 1000 + i))
        for i, cfg in enumerate(configs)
    ]
    net.by_addr = {node.address: node for node in net.nodes}
    return net


def restart(net: Net, i: int, cfg: Config) -> None:
    """Replace node i by a fresh process of the same name with `cfg`, which
    joins through node 0 (or 1 when it is node 0)."""
    old = net.nodes[i]
    # The old process is gone: its pending timer events must not run it on.
    old.handle_timeout = lambda now: None  # type: ignore[method-assign]
    old.next_deadline = lambda: None  # type: ignore[method-assign]
    node = Node(old.name, old.address, cfg, rng=random.Random(i + 77), incarnation=old.incarnation)
    net.nodes[i] = node
    net.by_addr[node.address] = node
    node.start(net.now, [net.nodes[1 if i == 0 else 0].address])
    net.drain(node)


def failures(net: Net) -> list[out.MemberFailed]:
    return [o for _, o in net.log if isinstance(o, out.MemberFailed)]


# ---- the range and its tag ---------------------------------------------------


def test_a_node_of_the_base_range_advertises_no_tag_and_a_wider_one_does() -> None:
    base = Node("a", addr(1), V1, rng=random.Random(1), tags={"role": "db"})
    wide = Node("b", addr(2), V12, rng=random.Random(1), tags={"role": "db"})
    assert dict(base.tags) == {"role": "db"}
    assert dict(wide.tags) == {"role": "db", "pv": "1-2"}
    wide.set_tags(0.0, {"role": "web", "pv": "9-9"})
    assert dict(wide.tags) == {"role": "web", "pv": "1-2"}


@pytest.mark.parametrize("text", ["", "1", "2-1", "0-1", "a-2", "1-2-3", "1-" + "9" * 20, "-1-2"])
def test_a_malformed_range_tag_reads_as_no_range(text: str) -> None:
    assert parse_range(text) is None


def test_a_member_without_the_tag_speaks_only_version_one() -> None:
    assert member_range({}) == (1, 1)
    assert member_range({"pv": "1-2"}) == (1, 2)


def test_a_range_outside_the_versions_this_build_knows_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="protocol_max"):
        V1.replace(protocol_max=3)
    with pytest.raises(ConfigError, match="protocol_max"):
        V1.replace(protocol_min=2)


# ---- the codec -----------------------------------------------------------------


def test_version_two_pings_carry_their_version_and_decode_only_where_it_is_spoken() -> None:
    sender, wide, old = Codec(V12), Codec(V12), Codec(V1)
    v1_packet = sender.packet([wrap(sender.encode(Ping(7, "b")))])
    sender.speak(2)
    v2_packet = sender.packet([wrap(sender.encode(Ping(7, "b")))])
    assert v1_packet != v2_packet
    assert wide.decode_packet(v1_packet) == [Ping(7, "b")]
    assert wide.decode_packet(v2_packet) == [Ping(7, "b")]
    assert old.decode_packet(v1_packet) == [Ping(7, "b")]
    with pytest.raises(VersionRefused) as refused:
        old.decode_packet(v2_packet)
    assert refused.value.reason == "bad_version" and refused.value.version == 2


def test_a_ping_laid_out_for_another_version_than_its_envelope_is_refused() -> None:
    v1_ping = Codec(V12).encode(Ping(7, "b"))
    sender = Codec(V12)
    sender.speak(2)
    v2_ping = sender.encode(Ping(7, "b"))
    as_v2, as_v1 = Codec(V12), Codec(V12)
    as_v2.speak(2)
    for codec, raw in ((as_v2, v1_ping), (as_v1, v2_ping)):
        with pytest.raises(WireError, match="bad_field"):
            codec.decode_packet(codec.packet([wrap(raw)]))


def test_a_stream_reply_is_framed_in_the_version_of_its_request() -> None:
    old, wide = Codec(V1), Codec(V12)
    wide.speak(2)
    request = old.frame(Ping(3, "b"))
    assert wide.decode_frame(request) == Ping(3, "b")
    assert old.decode_frame(wide.reply_frame(Ack(3))) == Ack(3)
    assert wide.version == 2


# ---- the version a cluster speaks ---------------------------------------------------


def test_a_cluster_of_wide_nodes_speaks_two_and_one_base_member_holds_it_at_one() -> None:
    net = mixed_net([V12, V12, V12, V1])
    net.start_all()
    net.run_until(10)
    assert [n.protocol_version for n in net.nodes] == [1, 1, 1, 1]
    restart(net, 3, V12)
    net.run_until(25)
    assert [n.protocol_version for n in net.nodes] == [2, 2, 2, 2]
    assert all(net.view(n) == {f"n{i}": MemberState.ALIVE for i in range(4)} for n in net.nodes)
    assert not failures(net)


def test_a_lone_node_speaks_its_lowest_version_so_an_old_cluster_understands_its_join() -> None:
    net = mixed_net([V1, V1, V12])
    assert net.nodes[2].protocol_version == 1
    net.start_all()
    net.run_until(10)
    assert all(len(net.view(n)) == 3 for n in net.nodes)
    assert not net.outputs_of("n0", out.DatagramRejected)


def test_a_rolling_upgrade_of_the_core_passes_without_a_failure() -> None:
    net = mixed_net([V1] * 5, seed=3)
    net.start_all()
    net.run_until(10)
    for i in range(5):
        restart(net, i, V12)
        net.run_until(net.now + 8)
        if i < 4:  # an old member remains: everyone speaks down to it
            assert [n.protocol_version for n in net.nodes] == [1] * 5
    net.run_until(net.now + 10)
    assert [n.protocol_version for n in net.nodes] == [2] * 5
    assert not failures(net)
    assert not [o for _, o in net.log if isinstance(o, out.DatagramRejected)]


def test_nodes_with_no_version_in_common_refuse_each_other_and_both_say_so() -> None:
    net = mixed_net([V1, V2])
    net.start_all()
    net.run_until(5)
    assert net.view(net.nodes[0]) == {"n0": MemberState.ALIVE}
    assert net.view(net.nodes[1]) == {"n1": MemberState.ALIVE}
    old_side = net.outputs_of("n0", out.ProtocolRefused)
    new_side = net.outputs_of("n1", out.ProtocolRefused)
    assert old_side and old_side[0].theirs == (2, 2) and old_side[0].ours == (1, 1)
    assert new_side and new_side[0].theirs == (1, 1) and new_side[0].ours == (2, 2)
    assert not net.outputs_of("n1", out.Joined)


def test_a_member_advertising_a_range_that_misses_ours_is_refused_once_and_left_out() -> None:
    chooser = VersionChooser("me", (1, 2))
    far = MemberInfo("far", addr(9), MemberState.ALIVE, 1, {"pv": "3-4"}, 0.0)
    near = MemberInfo("near", addr(8), MemberState.ALIVE, 1, {"pv": "2-2"}, 0.0)
    outbox: list[out.Output] = [out.MemberJoined(far), out.MemberJoined(near)]
    assert chooser.observe(outbox)
    assert chooser.speaking == 2
    refusals = [o for o in outbox if isinstance(o, out.ProtocolRefused)]
    assert refusals == [out.ProtocolRefused("far", addr(9), (3, 4), (1, 2))]
    again: list[out.Output] = [out.MemberUpdated(far)]
    chooser.observe(again)
    assert len(again) == 1
    gone: list[out.Output] = [out.MemberFailed(near, "me", 0, 0)]
    assert chooser.observe(gone)
    assert chooser.speaking == 1


def test_a_member_rolled_back_to_version_one_brings_the_cluster_back_down_without_a_failure() -> (
    None
):
    net = mixed_net([V12, V12, V12, V12], seed=5)
    net.start_all()
    net.run_until(15)
    assert [n.protocol_version for n in net.nodes] == [2] * 4
    restart(net, 2, V1)
    net.run_until(35)
    assert [n.protocol_version for n in net.nodes] == [1] * 4
    assert all(len(net.view(n)) == 4 for n in net.nodes)
    assert not failures(net)

"""Force-leave and prune: a failed member marked left, or forgotten everywhere."""

from __future__ import annotations

from gossip.core.membership import outputs as out
from gossip.core.membership.config import Config
from gossip.core.membership.messages import Prune
from gossip.core.membership.wire import Codec, encode_message, wrap
from gossip.core.types import MemberState
from gossip.testing.corenet import Net, addr

ALIVE, DEAD, LEFT = MemberState.ALIVE, MemberState.DEAD, MemberState.LEFT


def _crashed(net: Net, name: str) -> None:
    net.start_all()
    net.run_until(3.0)
    net.down.add(name)
    net.run_until(40.0)
    assert all(net.view(n)[name] == DEAD for n in net.nodes if n.name != name)


def test_a_failed_member_forced_out_is_seen_as_left_by_everyone() -> None:
    net = Net(5)
    _crashed(net, "n4")
    inc = net.nodes[0].member("n4").incarnation  # type: ignore[union-attr]
    assert net.nodes[0].force_leave(net.now, "n4") is None
    net.run_until(net.now + 3.0)
    for node in net.nodes[:4]:
        held = node.member("n4")
        assert held is not None and held.state == LEFT and held.incarnation == inc
    assert net.outputs_of("n2", out.MemberLeft)


def test_only_a_failed_member_may_be_forced_and_never_the_agent_itself() -> None:
    net = Net(3)
    net.start_all()
    net.run_until(3.0)
    node = net.nodes[0]
    assert "only a failed member" in (node.force_leave(net.now, "n1") or "")
    assert "itself" in (node.force_leave(net.now, "n0") or "")
    assert "no member" in (node.force_leave(net.now, "nobody", prune=True) or "")
    assert net.view(node)["n1"] == ALIVE


def test_prune_forgets_the_member_in_every_table_before_the_reap_time() -> None:
    net = Net(5)
    _crashed(net, "n4")
    assert net.nodes[1].force_leave(net.now, "n4", prune=True) is None
    assert net.nodes[1].member("n4") is None
    net.run_until(net.now + 3.0)
    assert net.now < 40.0 + Config().dead_reap_time
    for node in net.nodes[:4]:
        assert node.member("n4") is None
        assert out.MemberReaped("n4") in [o for who, o in net.log if who == node.name]


def test_a_live_member_forced_out_refutes_and_comes_back_alive() -> None:
    net = Net(4)
    net.start_all()
    net.run_until(3.0)
    target = net.nodes[3]
    before = target.incarnation
    prune = Codec(net.cfg).packet([wrap(encode_message(Prune("n3", before)))])
    target.receive_datagram(net.now, addr(0), prune)
    net.drain(target)
    assert target.incarnation == before + 1
    net.run_until(net.now + 3.0)
    assert all(net.view(n)["n3"] == ALIVE for n in net.nodes)


def test_a_prune_older_than_what_is_known_keeps_the_member() -> None:
    net = Net(3)
    net.start_all()
    net.run_until(3.0)
    node = net.nodes[0]
    inc = node.member("n2").incarnation  # type: ignore[union-attr]
    stale = Codec(net.cfg).packet([wrap(encode_message(Prune("n2", inc - 1)))])
    node.receive_datagram(net.now, addr(1), stale)
    net.drain(node)
    assert net.view(node)["n2"] == ALIVE

"""The Node state machine: join, probe, suspect, refute, die, leave, restart."""

from __future__ import annotations

import random

import pytest

from gossip.core.membership import outputs as out
from gossip.core.membership.config import Config
from gossip.core.membership.messages import Ack, Alive, Dead, Suspect
from gossip.core.membership.node import Node
from gossip.core.membership.wire import Codec, encode_message, wrap
from gossip.core.types import MemberState
from gossip.testing.corenet import Net, addr

ALIVE, SUSPECT, DEAD, LEFT = (
    MemberState.ALIVE,
    MemberState.SUSPECT,
    MemberState.DEAD,
    MemberState.LEFT,
)


def _packet(cfg: Config, *msgs: object) -> bytes:
    return Codec(cfg).packet([wrap(encode_message(m)) for m in msgs])  # type: ignore[arg-type]


def test_construction_has_no_side_effects() -> None:
    node = Node("a", addr(1), Config(), rng=random.Random(1))
    assert node.take_outputs() == []
    assert node.next_deadline() is None
    assert node.members() == []


def test_all_nodes_see_each_other_alive_after_joining_through_one_seed() -> None:
    net = Net(6)
    net.start_all()
    net.run_until(3.0)
    for node in net.nodes:
        assert net.view(node) == {f"n{i}": ALIVE for i in range(6)}
    assert net.outputs_of("n5", out.Joined) == [out.Joined(addr(0))]


def test_start_raises_the_incarnation_and_reports_it_for_persistence() -> None:
    node = Node("a", addr(1), Config(), rng=random.Random(1), incarnation=7)
    node.start(0.0, [])
    assert node.incarnation == 8
    assert out.IncarnationChanged(8) in node.take_outputs()


def test_a_crashed_node_is_suspected_then_declared_dead_by_everyone() -> None:
    net = Net(6)
    net.start_all()
    net.run_until(3.0)
    net.down.add("n4")
    net.run_until(40.0)
    for node in net.nodes:
        if node.name != "n4":
            assert net.view(node)["n4"] == DEAD
            assert net.view(node)["n1"] == ALIVE
    failed = [o for who, o in net.log if isinstance(o, out.MemberFailed)]
    assert {o.member.name for o in failed} == {"n4"}
    assert net.outputs_of("n0", out.MemberSuspected)


def test_a_suspected_node_refutes_with_a_higher_incarnation() -> None:
    net = Net(4)
    net.start_all()
    net.run_until(3.0)
    victim = net.nodes[2]
    before = victim.incarnation
    accuse = _packet(net.cfg, Suspect("n2", before, "n1"))
    victim.receive_datagram(net.now, addr(1), accuse)
    net.drain(victim)
    assert victim.incarnation == before + 1
    refuted = net.outputs_of("n2", out.SelfRefuted)
    assert refuted == [out.SelfRefuted("suspect", "n1", before + 1)]
    net.run_until(6.0)
    for node in net.nodes:
        info = node.member("n2")
        assert info is not None and info.state == ALIVE and info.incarnation == before + 1


def test_a_suspect_that_stays_silent_dies_but_a_stale_suspicion_is_ignored() -> None:
    cfg = Config()
    node = Node("a", addr(1), cfg, rng=random.Random(3))
    node.start(0.0, [])
    node.receive_datagram(0.1, addr(2), _packet(cfg, Alive("b", 5, addr(2), {})))
    node.receive_datagram(0.2, addr(3), _packet(cfg, Suspect("b", 4, "c")))
    assert node.member("b").state == ALIVE  # type: ignore[union-attr]
    node.receive_datagram(0.3, addr(3), _packet(cfg, Suspect("b", 5, "c")))
    assert node.member("b").state == SUSPECT  # type: ignore[union-attr]
    suspected = [o for o in node.take_outputs() if isinstance(o, out.MemberSuspected)]
    assert suspected[0].accuser == "c"
    # Two members: no confirmations expected, so the minimum timeout applies.
    assert suspected[0].timeout == cfg.suspicion_mult * cfg.probe_interval
    node.handle_timeout(0.3 + suspected[0].timeout)
    assert node.member("b").state == DEAD  # type: ignore[union-attr]


def test_dead_beats_alive_at_equal_incarnation_and_a_higher_alive_revives() -> None:
    cfg = Config()
    node = Node("a", addr(1), cfg, rng=random.Random(3))
    node.start(0.0, [])
    node.receive_datagram(0.1, addr(2), _packet(cfg, Alive("b", 2, addr(2), {})))
    node.receive_datagram(0.2, addr(2), _packet(cfg, Dead("b", 2, "c")))
    node.receive_datagram(0.3, addr(2), _packet(cfg, Alive("b", 2, addr(2), {})))
    assert node.member("b").state == DEAD  # type: ignore[union-attr]
    node.receive_datagram(0.4, addr(2), _packet(cfg, Alive("b", 3, addr(2), {})))
    assert node.member("b").state == ALIVE  # type: ignore[union-attr]
    joined = [o for o in node.take_outputs() if isinstance(o, out.MemberJoined)]
    assert len(joined) == 2  # first sighting, then the rejoin


def test_a_node_hearing_itself_dead_refutes() -> None:
    cfg = Config()
    node = Node("a", addr(1), cfg, rng=random.Random(3))
    node.start(0.0, [])
    node.take_outputs()
    node.receive_datagram(0.1, addr(2), _packet(cfg, Dead("a", node.incarnation, "b")))
    outs = node.take_outputs()
    assert out.SelfRefuted("dead", "b", 2) in outs
    assert out.IncarnationChanged(2) in outs
    assert out.HealthChanged(1, "refuted") in outs


def test_a_leaving_node_is_seen_as_left_and_reports_completion() -> None:
    net = Net(4)
    net.start_all()
    net.run_until(3.0)
    net.nodes[3].leave(net.now)
    net.drain(net.nodes[3])
    net.run_until(6.0)
    assert net.outputs_of("n3", out.LeaveCompleted) == [out.LeaveCompleted()]
    for node in net.nodes[:3]:
        assert net.view(node)["n3"] == LEFT
    assert not [o for _, o in net.log if isinstance(o, out.MemberFailed)]


def test_a_restarted_node_rejoins_above_the_incarnation_the_cluster_remembers() -> None:
    net = Net(4)
    net.start_all()
    net.run_until(3.0)
    net.down.add("n3")
    net.run_until(40.0)
    assert net.view(net.nodes[0])["n3"] == DEAD
    old_inc = net.nodes[0].member("n3").incarnation  # type: ignore[union-attr]
    net.down.discard("n3")
    fresh = Node("n3", addr(3), net.cfg, rng=random.Random(99), incarnation=old_inc)
    net.nodes[3] = fresh
    net.by_addr[addr(3)] = fresh
    fresh.start(net.now, [addr(0)])
    net.drain(fresh)
    net.run_until(45.0)
    for node in net.nodes:
        info = node.member("n3")
        assert info is not None and info.state == ALIVE and info.incarnation > old_inc


def test_tags_travel_with_alive_updates() -> None:
    net = Net(3)
    net.start_all()
    net.run_until(2.0)
    net.nodes[1].set_tags(net.now, {"role": "db"})
    net.drain(net.nodes[1])
    net.run_until(4.0)
    info = net.nodes[2].member("n1")
    assert info is not None and dict(info.tags) == {"role": "db"}
    assert net.outputs_of("n2", out.MemberUpdated)


def test_garbage_becomes_a_counted_rejection_not_an_exception() -> None:
    node = Node("a", addr(1), Config(), rng=random.Random(1))
    node.start(0.0, [])
    for junk in (b"", b"\xff\xfe", b"\x83\x01", b"hello world"):
        node.receive_datagram(0.1, addr(2), junk)
    rejected = [o for o in node.take_outputs() if isinstance(o, out.DatagramRejected)]
    assert len(rejected) == 4
    node.handle_timeout(5.0)
    metrics = {m.name: m for m in node.take_outputs() if isinstance(m, out.Metric)}
    assert metrics["datagrams_rejected"].value >= 1


def test_a_packet_from_another_cluster_is_rejected() -> None:
    node = Node("a", addr(1), Config(cluster_name="blue"), rng=random.Random(1))
    node.start(0.0, [])
    node.take_outputs()
    node.receive_datagram(0.1, addr(2), _packet(Config(cluster_name="red"), Dead("a", 1, "b")))
    assert node.take_outputs() == [out.DatagramRejected(addr(2), "wrong_cluster")]
    assert node.incarnation == 1


def test_datagrams_never_exceed_the_udp_budget_minus_overhead() -> None:
    cfg = Config(udp_buffer_size=600, packet_overhead=40, max_tags_bytes=200)
    net = Net(30, cfg)
    net.start_all()
    net.run_until(10.0)
    sizes = [len(o.payload) for _, o in net.log if isinstance(o, out.Send)]
    assert max(sizes) <= 560
    assert max(sizes) > 400  # the join burst filled packets


def test_probing_visits_every_member_once_per_round_in_a_fresh_order() -> None:
    cfg = Config(tcp_fallback_ping=False)
    node = Node("a", addr(1), cfg, rng=random.Random(11))
    node.start(0.0, [])
    for i in range(2, 8):
        node.receive_datagram(0.0, addr(i), _packet(cfg, Alive(f"m{i}", 1, addr(i), {})))
    node.take_outputs()
    codec = Codec(cfg)
    targets: list[str] = []
    now = 0.0
    while len(targets) < 12:
        deadline = node.next_deadline()
        assert deadline is not None
        now = deadline
        node.handle_timeout(now)
        for o in node.take_outputs():
            if isinstance(o, out.Send):
                for m in codec.decode_packet(o.payload):
                    if type(m).__name__ == "Ping":
                        targets.append(m.target)  # type: ignore[attr-defined]
                        # answer, so nobody is suspected
                        node.receive_datagram(now, o.to, _packet(cfg, Ack(m.seq)))  # type: ignore[attr-defined]
                        node.take_outputs()
    first, second = targets[:6], targets[6:12]
    assert sorted(first) == sorted(second) == [f"m{i}" for i in range(2, 8)]
    assert first != second  # reshuffled between rounds


def test_dead_members_are_reaped_after_the_reap_time() -> None:
    cfg = Config(dead_reap_time=60.0)
    node = Node("a", addr(1), cfg, rng=random.Random(3))
    node.start(0.0, [])
    node.receive_datagram(0.1, addr(2), _packet(cfg, Alive("b", 1, addr(2), {})))
    node.receive_datagram(1.0, addr(2), _packet(cfg, Dead("b", 1, "c")))
    node.take_outputs()
    node.handle_timeout(60.5)
    assert node.member("b") is not None
    node.handle_timeout(61.5)
    assert node.member("b") is None
    assert out.MemberReaped("b") in node.take_outputs()


def test_tags_over_the_size_limit_are_refused() -> None:
    cfg = Config()
    with pytest.raises(ValueError, match="limit"):
        Node("a", addr(1), cfg, rng=random.Random(1), tags={"k": "v" * 600})
    node = Node("a", addr(1), cfg, rng=random.Random(1))
    with pytest.raises(ValueError):
        node.set_tags(0.0, {"k": "v" * 600})


def test_an_unreachable_seed_is_retried_until_the_join_succeeds() -> None:
    net = Net(3)
    net.down.add("n0")
    net.start_all()
    net.run_until(2.0)
    assert not net.outputs_of("n1", out.Joined)
    net.down.discard("n0")
    net.nodes[0].start(net.now, [])
    net.drain(net.nodes[0])
    net.run_until(12.0)
    assert net.outputs_of("n1", out.Joined) == [out.Joined(addr(0))]
    assert net.view(net.nodes[1]) == {"n0": ALIVE, "n1": ALIVE, "n2": ALIVE}


def _suspected_b(cfg: Config) -> tuple[Node, out.MemberSuspected]:
    """Node a with members b..e, having heard one (unconfirmed) suspicion of b."""
    node = Node("a", addr(1), cfg, rng=random.Random(3))
    node.start(0.0, [])
    for i, name in enumerate("bcde", start=2):
        node.receive_datagram(0.1, addr(i), _packet(cfg, Alive(name, 5, addr(i), {})))
    node.receive_datagram(0.2, addr(3), _packet(cfg, Suspect("b", 5, "c")))
    suspected = [o for o in node.take_outputs() if isinstance(o, out.MemberSuspected)]
    return node, suspected[0]


def test_an_unconfirmed_suspicion_gets_a_last_call_that_a_correction_can_answer() -> None:
    cfg = Config()
    node, suspected = _suspected_b(cfg)
    deadline = 0.2 + suspected.timeout
    node.handle_timeout(deadline)
    assert node.member("b").state == SUSPECT  # type: ignore[union-attr]
    # the suspicion is gossiped again, so holders of a newer alive can answer
    node.handle_timeout(deadline + cfg.gossip_interval)
    again = encode_message(Suspect("b", 5, "c"))
    sent = [o for o in node.take_outputs() if isinstance(o, out.Send)]
    assert any(again in o.payload for o in sent)
    node.receive_datagram(deadline + 0.3, addr(4), _packet(cfg, Alive("b", 6, addr(2), {})))
    node.handle_timeout(deadline + 5 * cfg.probe_interval)
    assert node.member("b").state == ALIVE  # type: ignore[union-attr]
    assert not [o for o in node.take_outputs() if isinstance(o, out.MemberFailed)]


def test_an_unconfirmed_suspicion_dies_one_probe_interval_after_its_last_call() -> None:
    cfg = Config()
    node, suspected = _suspected_b(cfg)
    deadline = 0.2 + suspected.timeout
    node.handle_timeout(deadline)
    node.handle_timeout(deadline + cfg.probe_interval * 0.9)
    assert node.member("b").state == SUSPECT  # type: ignore[union-attr]
    node.handle_timeout(deadline + cfg.probe_interval)
    assert node.member("b").state == DEAD  # type: ignore[union-attr]

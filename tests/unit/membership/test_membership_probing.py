"""Probing details: indirect probes, nacks, Lifeguard health, the stream
fallback, the buddy system, stale-accusation corrections, name conflicts."""

from __future__ import annotations

import random

from gossip.core.membership import outputs as out
from gossip.core.membership.config import Config
from gossip.core.membership.messages import Ack, Alive, Message, Nack, Ping, PingReq, Suspect
from gossip.core.membership.node import Node
from gossip.core.membership.wire import Codec, encode_message, wrap
from gossip.core.types import MemberState

CFG = Config(tcp_fallback_ping=False)
ME = ("10.0.0.1", 7946)


def _addr(i: int) -> tuple[str, int]:
    return (f"10.0.0.{i}", 7946)


def _packet(*msgs: Message, cfg: Config = CFG) -> bytes:
    return Codec(cfg).packet([wrap(encode_message(m)) for m in msgs])


def _node(peers: int, cfg: Config = CFG) -> Node:
    node = Node("me", ME, cfg, rng=random.Random(5))
    node.start(0.0, [])
    for i in range(2, 2 + peers):
        node.receive_datagram(0.0, _addr(i), _packet(Alive(f"p{i}", 1, _addr(i), {}), cfg=cfg))
    node.take_outputs()
    return node


def _sent(outputs: list[object]) -> list[tuple[tuple[str, int], list[Message]]]:
    codec = Codec(CFG)
    return [(o.to, codec.decode_packet(o.payload)) for o in outputs if isinstance(o, out.Send)]


def _run_to_first_ping(node: Node) -> tuple[tuple[str, int], Ping, list[object], float]:
    """Fire timers until the node sends a ping: (target, ping, outputs, time)."""
    while True:
        deadline = node.next_deadline()
        assert deadline is not None
        node.handle_timeout(deadline)
        outs = node.take_outputs()
        for to, msgs in _sent(outs):
            pings = [m for m in msgs if isinstance(m, Ping)]
            if pings:
                return to, pings[0], outs, deadline


def test_an_unanswered_probe_goes_indirect_then_suspects_and_raises_health() -> None:
    node = _node(5)
    target, ping, _, start = _run_to_first_ping(node)
    node.handle_timeout(start + CFG.probe_timeout)  # direct timeout
    outs = node.take_outputs()
    reqs = [(to, m) for to, msgs in _sent(outs) for m in msgs if isinstance(m, PingReq)]
    assert len(reqs) == CFG.indirect_checks
    assert all(m.target == ping.target and to != target for to, m in reqs)
    assert any(isinstance(o, out.ProbeTimedOut) for o in outs)
    # one helper answers with a nack: two nacks are missing
    node.receive_datagram(start + 0.7, reqs[0][0], _packet(Nack(ping.seq)))
    node.handle_timeout(start + CFG.probe_interval + 0.01)
    outs = node.take_outputs()
    assert node.health == 2
    suspected = [o for o in outs if isinstance(o, out.MemberSuspected)]
    assert [s.member.name for s in suspected] == [ping.target]
    assert suspected[0].accuser == "me"


def test_an_ack_lowers_health_and_cancels_the_probe() -> None:
    node = _node(3)
    node._health.apply(3)
    target, ping, _, start = _run_to_first_ping(node)
    node.receive_datagram(start + 0.01, target, _packet(Ack(ping.seq)))
    assert node.health == 2
    node.handle_timeout(start + 0.99)  # past this probe's timeout, before the next probe
    assert node.member(ping.target).state == MemberState.ALIVE  # type: ignore[union-attr]
    assert not [o for o in node.take_outputs() if isinstance(o, out.ProbeTimedOut)]


def test_the_stream_fallback_ping_saves_a_member_whose_udp_is_lost() -> None:
    cfg = Config()
    node = _node(4, cfg)
    target, ping, _, start = _run_to_first_ping(node)
    node.handle_timeout(start + cfg.probe_timeout)
    streams = [o for o in node.take_outputs() if isinstance(o, out.OpenStream)]
    assert [s.to for s in streams] == [target]
    # the stream outlives the probe interval; the verdict waits for it
    node.handle_timeout(100.0)
    assert node.member(ping.target).state == MemberState.ALIVE  # type: ignore[union-attr]
    node.receive_stream_response(100.1, streams[0].stream_id, Codec(cfg).frame(Ack(ping.seq)))
    outs = node.take_outputs()
    assert not [o for o in outs if isinstance(o, out.MemberSuspected)]


def test_a_helper_relays_the_ack_or_answers_with_a_nack() -> None:
    node = _node(3)
    requester, target = _addr(2), _addr(3)
    node.receive_datagram(1.0, requester, _packet(PingReq(77, "p3", target)))
    ((to, msgs),) = _sent(node.take_outputs())
    assert to == target and isinstance(msgs[0], Ping) and msgs[0].target == "p3"
    node.receive_datagram(1.1, target, _packet(Ack(msgs[0].seq)))
    relayed = _sent(node.take_outputs())
    assert relayed[0][0] == requester and relayed[0][1][0] == Ack(77)
    # a second request that is never answered gets a nack
    node.receive_datagram(2.0, requester, _packet(PingReq(78, "p4", _addr(4))))
    node.take_outputs()
    node.handle_timeout(2.0 + CFG.probe_timeout)
    nacks = [m for to, msgs in _sent(node.take_outputs()) for m in msgs if isinstance(m, Nack)]
    assert nacks == [Nack(78)]


def test_a_ping_for_another_name_is_not_acked() -> None:
    node = _node(1)
    node.receive_datagram(1.0, _addr(2), _packet(Ping(5, "someone-else")))
    assert _sent(node.take_outputs()) == []


def test_probing_a_suspect_tells_it_so() -> None:
    node = _node(1)
    node.receive_datagram(0.5, _addr(9), _packet(Suspect("p2", 1, "x")))
    node.take_outputs()
    _, _, outs, _ = _run_to_first_ping(node)
    msgs = _sent(outs)[0][1]
    assert Suspect("p2", 1, "me") in msgs


def test_a_stale_accusation_is_corrected_at_its_source() -> None:
    node = _node(2)
    node.receive_datagram(1.0, _addr(2), _packet(Alive("p3", 5, _addr(3), {})))
    node.take_outputs()
    gossiper = _addr(7)
    node.receive_datagram(2.0, gossiper, _packet(Suspect("p3", 4, "x")))
    sent = _sent(node.take_outputs())
    assert sent and sent[0][0] == gossiper
    assert Alive("p3", 5, _addr(3), {}) in sent[0][1]
    # the same stale bytes again (cached, not re-parsed) are corrected again
    node.receive_datagram(3.0, gossiper, _packet(Suspect("p3", 4, "x")))
    assert _sent(node.take_outputs())[0][0] == gossiper


def test_two_addresses_for_one_name_report_a_conflict_and_the_holder_keeps_it() -> None:
    node = _node(1)
    node.receive_datagram(1.0, _addr(8), _packet(Alive("p2", 1, _addr(8), {})))
    conflicts = [o for o in node.take_outputs() if isinstance(o, out.NameConflict)]
    assert conflicts == [out.NameConflict("p2", _addr(2), _addr(8), _addr(2))]
    assert node.member("p2").address == _addr(2)  # type: ignore[union-attr]
    node.receive_datagram(1.5, _addr(8), _packet(Alive("p2", 2, _addr(8), {})))
    conflicts = [o for o in node.take_outputs() if isinstance(o, out.NameConflict)]
    assert conflicts[0].winner == _addr(8)
    assert node.member("p2").address == _addr(8)  # type: ignore[union-attr]


def test_someone_else_claiming_our_name_is_reported_not_fought() -> None:
    node = _node(1)
    inc = node.incarnation
    node.receive_datagram(1.0, _addr(8), _packet(Alive("me", inc + 3, _addr(8), {})))
    outs = node.take_outputs()
    assert [o.winner for o in outs if isinstance(o, out.NameConflict)] == [_addr(8)]
    assert node.incarnation == inc


def test_counters_are_flushed_as_metrics() -> None:
    node = Node("me", ME, CFG, rng=random.Random(5))
    node.start(0.0, [])
    node.receive_datagram(0.0, _addr(2), _packet(Alive("p2", 1, _addr(2), {})))
    outs = []
    while (deadline := node.next_deadline()) is not None and deadline < 12.0:
        node.handle_timeout(deadline)
        outs += node.take_outputs()
    names = {o.name for o in outs if isinstance(o, out.Metric)}
    assert {"probes_sent", "packets_out", "bytes_out", "packets_in"} <= names

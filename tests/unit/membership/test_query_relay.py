"""Relayed query replies and the bounds on queries in the core: a reply
crosses a one-way cut through other members and is counted once, a relay
forwards only to a live member's own address, and a flood of incoming
queries is taken on only up to its budget."""

from __future__ import annotations

import random

import pytest

from gossip.core.membership import outputs as out
from gossip.core.membership.config import Config
from gossip.core.membership.messages import Query, QueryRelay, QueryReply
from gossip.core.membership.node import Node
from gossip.core.membership.queries import INCOMING_BURST, INCOMING_PER_S
from gossip.core.membership.queryrelay import forward_refusal
from gossip.core.membership.tokenbucket import TokenBucket
from gossip.core.membership.wire import Codec, encode_message, wrap
from gossip.core.membership.wireschema import WireError
from gossip.core.types import MemberInfo, MemberState
from gossip.testing.corenet import Net, addr


def _cut_net() -> Net:
    net = Net(5, Config.for_profile("local"))
    net.start_all()
    net.run_until(3.0)
    net.faults.cut("n1", "n0")  # n1's datagrams never reach n0 directly
    return net


def _ask_n1(net: Net, relay: int) -> list[tuple[str, bool, bytes]]:
    origin = net.nodes[0]
    origin.query(net.now, "uptime", b"", node="n1", timeout=5, relay=relay)
    net.drain(origin)
    net.run_until(net.now + 0.5)
    (q,) = net.outputs_of("n1", out.QueryReceived)
    responder = net.nodes[1]
    responder.respond(net.now, q.qid, q.address, b"up")
    net.drain(responder)
    net.run_until(net.now + 1.0)
    answers = net.outputs_of("n0", out.QueryAnswered)
    return sorted((a.responder, a.ack, a.payload) for a in answers)


def test_replies_cross_a_one_way_cut_through_relays_and_count_once() -> None:
    assert _ask_n1(_cut_net(), relay=2) == [("n1", False, b"up"), ("n1", True, b"")]


def test_without_relays_a_one_way_cut_loses_the_replies() -> None:
    assert _ask_n1(_cut_net(), relay=0) == []


def test_each_reply_goes_direct_and_once_through_each_relay() -> None:
    net = _cut_net()
    origin = net.nodes[0]
    origin.query(net.now, "q", b"", node="n1", ack=False, timeout=5, relay=3)
    net.drain(origin)
    net.run_until(net.now + 0.5)
    (q,) = net.outputs_of("n1", out.QueryReceived)
    responder = net.nodes[1]
    responder.respond(net.now, q.qid, q.address, b"x")
    sends = [o for o in responder.take_outputs() if isinstance(o, out.Send)]
    codec = Codec(net.cfg)
    relayed = {
        o.to for o in sends if any(type(m) is QueryRelay for m in codec.decode_packet(o.payload))
    }
    direct = [
        o.to for o in sends if any(type(m) is QueryReply for m in codec.decode_packet(o.payload))
    ]
    assert direct == [origin.address, origin.address]
    assert len(relayed) == 3 and not relayed & {origin.address, responder.address}


def _member(name: str, i: int, state: MemberState = MemberState.ALIVE) -> MemberInfo:
    return MemberInfo(name, addr(i), state, 1, {}, 0.0)


def test_a_relay_forwards_only_to_a_live_member_at_its_own_address() -> None:
    msg = QueryRelay(QueryReply(1, "r", True, b""), "o", addr(9))
    assert forward_refusal("me", msg, _member("o", 9)) == ""
    assert forward_refusal("me", msg, _member("o", 9, MemberState.SUSPECT)) == ""
    assert forward_refusal("me", msg, None) == "origin_not_live"
    assert forward_refusal("me", msg, _member("o", 9, MemberState.DEAD)) == "origin_not_live"
    assert forward_refusal("me", msg, _member("o", 8)) == "address_mismatch"
    assert forward_refusal("o", msg, _member("o", 9)) == "to_self"


def test_a_relay_aimed_at_a_stranger_sends_nothing() -> None:
    net = _cut_net()
    relay = net.nodes[2]
    relay.take_outputs()
    codec = Codec(net.cfg)
    stranger = QueryRelay(QueryReply(1, "n1", True, b""), "n0", ("192.0.2.1", 7946))
    relay.receive_datagram(net.now, addr(1), codec.packet([wrap(encode_message(stranger))]))
    assert not [o for o in relay.take_outputs() if isinstance(o, out.Send)]
    honest = QueryRelay(QueryReply(1, "n1", True, b""), "n0", addr(0))
    relay.receive_datagram(net.now, addr(1), codec.packet([wrap(encode_message(honest))]))
    (sent,) = [o for o in relay.take_outputs() if isinstance(o, out.Send)]
    assert sent.to == addr(0)
    assert type(codec.decode_packet(sent.payload)[0]) is QueryReply


def test_a_flood_of_queries_is_taken_on_only_up_to_the_budget() -> None:
    node = Node("a", addr(1), Config(), rng=random.Random(3))
    node.start(0.0, [])
    node.take_outputs()
    codec = Codec(Config())

    def flood(now: float, first: int, n: int) -> int:
        for i in range(first, first + n):
            q = Query(i, i, "q", b"", "o", addr(2), "*", {}, False)
            node.receive_datagram(now, addr(2), codec.packet([wrap(encode_message(q))]))
        return len([o for o in node.take_outputs() if isinstance(o, out.QueryReceived)])

    assert flood(1.0, 0, 100) == INCOMING_BURST
    assert flood(2.0, 100, 100) == int(INCOMING_PER_S)
    node.handle_timeout(10.0)
    dropped = [
        o for o in node.take_outputs() if isinstance(o, out.Metric) and o.name == "queries_dropped"
    ]
    assert sum(m.value for m in dropped) == 200 - INCOMING_BURST - int(INCOMING_PER_S)


def test_a_token_bucket_starts_full_and_refills_at_its_rate() -> None:
    bucket = TokenBucket(2.0, 3)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.wait_s(0.0) == pytest.approx(0.5)
    assert bucket.take(0.5) and not bucket.take(0.5)
    assert not bucket.take(0.4)  # a clock stepping back refills nothing
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]


def test_the_relay_factor_travels_only_when_asked_and_is_bounded() -> None:
    codec = Codec(Config())
    plain = Query(1, 2, "q", b"", "o", addr(0), "*", {}, True)
    assert len(plain.fields()) == 10  # the shape builds without relays read
    relayed = Query(1, 2, "q", b"", "o", addr(0), "*", {}, True, 5)
    assert codec.parse(encode_message(relayed)) == relayed
    with pytest.raises(WireError):
        codec.parse(encode_message(Query(1, 2, "q", b"", "o", addr(0), "*", {}, True, 6)))
    msg = QueryRelay(QueryReply(3, "r", False, b"answer"), "o", addr(4))
    assert codec.parse(encode_message(msg)) == msg
    node = Node("a", addr(1), Config(), rng=random.Random(2))
    node.start(0.0, [])
    with pytest.raises(ValueError, match="relay"):
        node.query(0.0, "q", b"", relay=6)


def test_a_stream_answer_round_trips_and_bad_bodies_are_refused() -> None:
    from gossip.core.membership.queryanswer import MAX_ANSWER_BYTES, decode_answer, encode_answer

    body = encode_answer(5, "r", b"x" * MAX_ANSWER_BYTES)
    assert decode_answer(body, 128) == QueryReply(5, "r", False, b"x" * MAX_ANSWER_BYTES)
    with pytest.raises(ValueError, match="limit is 65536"):
        encode_answer(5, "r", b"x" * (MAX_ANSWER_BYTES + 1))
    import cbor2

    for bad, reason in [
        (cbor2.dumps([5, "r", b"x" * (MAX_ANSWER_BYTES + 600)]), "oversized"),
        (cbor2.dumps([5, "r", b"x" * (MAX_ANSWER_BYTES + 1)]), "bad_field"),
        (cbor2.dumps([5, "r" * 129, b""]), "bad_field"),
        (cbor2.dumps([-1, "r", b""]), "bad_field"),
        (cbor2.dumps([5, "r"]), "bad_field"),
        (body + b"\x00", "non_canonical"),
        (b"", "truncated"),
    ]:
        with pytest.raises(WireError) as exc:
            decode_answer(bad, 128)
        assert exc.value.reason == reason

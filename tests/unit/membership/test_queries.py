"""Queries in the core: receivers check the filters, acks and answers come
straight back to the origin once each, and a filter that matches nobody
brings nothing back."""

from __future__ import annotations

import random

import pytest

from gossip.core.membership import outputs as out
from gossip.core.membership.config import Config
from gossip.core.membership.messages import Query
from gossip.core.membership.node import Node
from gossip.core.membership.queries import matches
from gossip.core.membership.wire import Codec, encode_message
from gossip.core.membership.wireschema import WireError
from gossip.testing.corenet import Net, addr


def _net() -> Net:
    net = Net(5, Config.for_profile("local"))
    for i, node in enumerate(net.nodes):
        node.set_tags(0.0, {"role": "web" if i % 2 else "db"})
    net.start_all()
    net.run_until(3.0)
    return net


def test_only_matching_members_receive_ack_and_answer_the_query() -> None:
    net = _net()
    origin = net.nodes[0]
    qid = origin.query(net.now, "uptime", b"?", node="n[1-4]", tags={"role": "w*"}, timeout=5)
    net.drain(origin)
    net.run_until(4.0)
    received = {who for who, o in net.log if isinstance(o, out.QueryReceived)}
    assert received == {"n1", "n3"}
    for name in ("n1", "n3"):
        node = net.nodes[int(name[1])]
        (q,) = net.outputs_of(name, out.QueryReceived)
        assert (q.qid, q.name, q.payload, q.origin) == (qid, "uptime", b"?", "n0")
        node.respond(net.now, q.qid, q.address, f"up {name}".encode())
        net.drain(node)
    net.run_until(5.0)
    answers = net.outputs_of("n0", out.QueryAnswered)
    assert sorted((a.responder, a.ack, a.payload) for a in answers) == [
        ("n1", False, b"up n1"),
        ("n1", True, b""),
        ("n3", False, b"up n3"),
        ("n3", True, b""),
    ]


def test_a_query_that_matches_nobody_brings_nothing_back() -> None:
    net = _net()
    origin = net.nodes[0]
    origin.query(net.now, "uptime", b"", node="nobody-*", timeout=5)
    net.drain(origin)
    net.run_until(6.0)
    assert not [o for _, o in net.log if isinstance(o, out.QueryReceived | out.QueryAnswered)]


def test_answers_after_the_deadline_or_twice_are_dropped() -> None:
    net = _net()
    origin = net.nodes[0]
    origin.query(net.now, "q", b"", node="n1", ack=False, timeout=0.5)
    net.drain(origin)
    net.run_until(3.5)
    (q,) = net.outputs_of("n1", out.QueryReceived)
    late = net.nodes[1]
    late.respond(net.now, q.qid, q.address, b"late")
    net.drain(late)
    net.run_until(4.0)
    assert net.outputs_of("n0", out.QueryAnswered) == []


def test_the_origin_answers_its_own_query_when_it_matches() -> None:
    node = Node("solo", addr(1), Config(), rng=random.Random(2))
    node.start(0.0, [])
    node.take_outputs()
    qid = node.query(0.0, "q", b"", timeout=1)
    (got,) = [o for o in node.take_outputs() if isinstance(o, out.QueryReceived)]
    node.respond(0.1, qid, got.address, b"me")
    answers = [o for o in node.take_outputs() if isinstance(o, out.QueryAnswered)]
    assert [(a.responder, a.payload) for a in answers] == [("solo", b"me")]


def test_globs_match_whole_names_and_a_missing_tag_fails() -> None:
    q = Query(0, 1, "q", b"", "o", addr(0), "web-*", {"dc": "eu-?"}, True)
    assert matches(q, "web-1", {"dc": "eu-1"})
    assert not matches(q, "xweb-1", {"dc": "eu-1"})
    assert not matches(q, "web-1", {})
    assert not matches(q, "web-1", {"dc": "eu-12"})


def test_oversized_queries_and_answers_are_refused() -> None:
    node = Node("a", addr(1), Config(), rng=random.Random(2))
    node.start(0.0, [])
    with pytest.raises(ValueError, match="limit"):
        node.query(0.0, "q", b"x" * 600)
    with pytest.raises(ValueError, match="limit"):
        node.respond(0.0, 1, addr(2), b"x" * 2000)
    codec = Codec(Config())
    big = Query(0, 1, "q", b"x" * 600, "o", addr(0), "*", {}, True)
    with pytest.raises(WireError):
        codec.parse(encode_message(big))

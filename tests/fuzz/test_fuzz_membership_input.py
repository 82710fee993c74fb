"""Hypothesis fuzzing of the membership core's entry points for untrusted bytes:
`Node.receive_datagram` and `Node.handle_stream_request`.

Garbage and mutated packets must never raise; input the wire decoder refuses
must produce exactly one DatagramRejected and change no member; whatever is
accepted may only produce the core's typed outputs, and a stream reply is
always a frame the decoder itself accepts (a request in a wire version the
node does not speak is answered with an empty state reply in its own).
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from gossip.core.membership import outputs as o
from gossip.core.membership.config import Config
from gossip.core.membership.messages import (
    Ack,
    Alive,
    Dead,
    Left,
    Message,
    Nack,
    Ping,
    PingReq,
    Prune,
    PushPull,
    Query,
    QueryRelay,
    QueryReply,
    StateEntry,
    Suspect,
    UserEvent,
)
from gossip.core.membership.node import Node
from gossip.core.membership.wire import Codec
from gossip.core.membership.wireschema import WireError
from gossip.core.types import MemberState

CFG = Config.for_profile("lan", cluster_name="fuzz")
CODEC = Codec(CFG)
ME, PEER = ("10.0.0.1", 7946), ("10.0.0.2", 7946)
OUTPUT_TYPES = tuple(
    v for v in vars(o).values() if isinstance(v, type) and v.__module__ == o.__name__
)

MESSAGES: list[Message] = [
    Ping(7, "me"),
    Ping(8, "someone-else"),
    Ack(7),
    Nack(9),
    PingReq(3, "peer", PEER),
    Alive("peer", 1, PEER, {"role": "db"}),
    Suspect("peer", 1, "me"),
    Suspect("me", 0, "peer"),
    Dead("peer", 2, "x"),
    Dead("me", 0, "peer"),
    Left("peer", 3),
    Prune("peer", 1),
    Prune("me", 0),
    PushPull(False, (StateEntry("peer", PEER, 1, MemberState.ALIVE, {}),)),
    UserEvent(4, "deploy", b"\x00payload", False),
    Query(5, 9, "uptime", b"", "peer", PEER, "m?", {"role": "d*"}, True),
    QueryReply(9, "peer", True, b""),
    Query(6, 10, "uptime", b"", "peer", PEER, "*", {}, True, 2),
    QueryRelay(QueryReply(10, "peer", False, b"up"), "me", ME),
]
PARTS = [CODEC.frame(m)[len(CODEC.prefix) + 1 :] for m in MESSAGES]


def started_node() -> Node:
    node = Node("me", ME, CFG, rng=random.Random(1))
    node.start(0.0, [])
    node.receive_datagram(0.1, PEER, CODEC.packet([PARTS[5]]))  # knows "peer"
    node.take_outputs()
    return node


@st.composite
def mutated_packets(draw: st.DrawFn) -> bytes:
    parts = draw(st.lists(st.sampled_from(PARTS), min_size=1, max_size=5))
    data = bytearray(CODEC.packet(parts))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.integers(0, 3))
        at = draw(st.integers(0, len(data)))
        if op == 0 and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == 1:
            del data[at:]
        elif op == 2:
            data[at:at] = draw(st.binary(min_size=1, max_size=9))
        elif op == 3 and at < len(data):
            data[at] = draw(st.sampled_from([0x1B, 0x3B, 0x5B, 0x7B, 0x9B, 0xBB, 0xFF, 0x00]))
    return bytes(data)


PAYLOADS = st.one_of(st.binary(max_size=400), mutated_packets())


def decodes(decode: object, payload: bytes) -> bool:
    try:
        decode(payload)  # type: ignore[operator]
    except WireError:
        return False
    return True


@settings(max_examples=500, deadline=None)
@given(PAYLOADS)
def test_a_datagram_never_raises_and_a_refused_one_changes_nothing(payload: bytes) -> None:
    node = started_node()
    before = node.members()
    node.receive_datagram(1.0, PEER, payload)
    node.handle_timeout(1.0)
    outputs = node.take_outputs()
    assert all(isinstance(x, OUTPUT_TYPES) for x in outputs)
    if not decodes(CODEC.decode_packet, payload):
        rejected = [x for x in outputs if isinstance(x, o.DatagramRejected)]
        assert len(rejected) == 1 and rejected[0].source == PEER
        assert node.members() == before


@settings(max_examples=300, deadline=None)
@given(PAYLOADS)
def test_a_stream_request_never_raises_and_any_reply_is_a_valid_frame(payload: bytes) -> None:
    node = started_node()
    reply = node.handle_stream_request(1.0, PEER, payload)
    outputs = node.take_outputs()
    assert all(isinstance(x, OUTPUT_TYPES) for x in outputs)
    if reply is not None:
        assert decodes(CODEC.decode_frame, reply)
    if not decodes(CODEC.decode_frame, payload):
        assert any(isinstance(x, o.DatagramRejected) for x in outputs)
        # A request in a version we do not speak gets an empty state reply in
        # ours, so the requester learns why; anything else refused gets none.
        refused_version = any(isinstance(x, o.ProtocolRefused) for x in outputs)
        assert reply == (CODEC.sync_frame(None, []) if refused_version else None)

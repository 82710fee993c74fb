"""Properties of the wire format and of update merging (hypothesis)."""

from __future__ import annotations

import random

import cbor2
from hypothesis import given, settings
from hypothesis import strategies as st

from gossip.core.membership import outputs as out
from gossip.core.membership import wirefast
from gossip.core.membership.config import Config
from gossip.core.membership.members import supersedes
from gossip.core.membership.messages import (
    Ack,
    Alive,
    Dead,
    Left,
    Message,
    Nack,
    Ping,
    PingReq,
    PushPull,
    StateEntry,
    Suspect,
)
from gossip.core.membership.node import Node
from gossip.core.membership.wire import Codec, encode_message, wrap
from gossip.core.membership.wireschema import WireError, loads_strict
from gossip.core.types import MemberState

CFG = Config()
CODEC = Codec(CFG)

names = st.text(min_size=1, max_size=20)
uints = st.integers(min_value=0, max_value=2**63 - 1)
addresses = st.tuples(st.text(min_size=1, max_size=40), st.integers(0, 65535))
tags = st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=5)
messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(Ping, uints, names),
    st.builds(PingReq, uints, names, addresses),
    st.builds(Ack, uints),
    st.builds(Nack, uints),
    st.builds(Alive, names, uints, addresses, tags),
    st.builds(Suspect, names, uints, names),
    st.builds(Dead, names, uints, names),
    st.builds(Left, names, uints),
)


@given(st.lists(messages, min_size=1, max_size=12))
def test_any_packet_of_valid_messages_round_trips(msgs: list[Message]) -> None:
    assert CODEC.decode_packet(CODEC.packet([wrap(encode_message(m)) for m in msgs])) == msgs


@given(st.lists(st.builds(StateEntry, names, addresses, uints, st.sampled_from(MemberState), tags)))
def test_push_pull_frames_round_trip(entries: list[StateEntry]) -> None:
    msg = PushPull(True, tuple(entries))
    assert CODEC.decode_frame(CODEC.frame(msg)) == msg


@given(st.binary(max_size=2000))
def test_random_bytes_are_rejected_with_a_reason_or_decoded(data: bytes) -> None:
    try:
        CODEC.decode_packet(data)
    except WireError as exc:
        assert exc.reason
    node = Node("me", ("10.0.0.1", 7946), CFG, rng=random.Random(1))
    node.start(0.0, [])
    node.take_outputs()
    node.receive_datagram(1.0, ("10.0.0.2", 7946), data)  # must not raise


@given(st.lists(messages, min_size=1, max_size=6), st.data())
@settings(max_examples=300)
def test_mutated_packets_never_escape_as_exceptions(
    msgs: list[Message], data: st.DataObject
) -> None:
    packet = bytearray(CODEC.packet([wrap(encode_message(m)) for m in msgs]))
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        pos = data.draw(st.integers(0, max(0, len(packet) - 1)))
        if op == "flip" and packet:
            packet[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "cut":
            del packet[pos:]
        else:
            packet[pos:pos] = data.draw(st.binary(min_size=1, max_size=4))
    node = Node("me", ("10.0.0.1", 7946), CFG, rng=random.Random(1))
    node.start(0.0, [])
    node.take_outputs()
    node.receive_datagram(1.0, ("10.0.0.2", 7946), bytes(packet))
    for o in node.take_outputs():
        if isinstance(o, out.DatagramRejected):
            assert o.reason


@given(st.recursive(st.integers() | st.text(), lambda c: st.lists(c, max_size=3), max_leaves=30))
def test_well_formed_cbor_of_the_wrong_shape_is_rejected(obj: object) -> None:
    try:
        CODEC.decode_packet(cbor2.dumps(obj))
    except WireError as exc:
        assert exc.reason in {"bad_envelope", "bad_version", "wrong_cluster", "too_many"}


# ---- merging: the table is a join over (incarnation, state) -------------------

updates = st.lists(
    st.tuples(st.integers(1, 4), st.sampled_from(["suspect", "dead", "left", "alive"])),
    min_size=1,
    max_size=8,
)


def _packet(kind: str, inc: int) -> bytes:
    msg: Message
    if kind == "alive":
        msg = Alive("m", inc, ("10.0.0.9", 7946), {})
    elif kind == "suspect":
        msg = Suspect("m", inc, "x")
    elif kind == "dead":
        msg = Dead("m", inc, "x")
    else:
        msg = Left("m", inc)
    return CODEC.packet([wrap(encode_message(msg))])


RANK = {"alive": 0, "suspect": 1, "dead": 2, "left": 3}


@given(updates, st.randoms(use_true_random=False))
def test_the_final_state_does_not_depend_on_arrival_order(
    ups: list[tuple[int, str]], rnd: random.Random
) -> None:
    results = []
    for order in (ups, rnd.sample(ups, len(ups))):
        node = Node("me", ("10.0.0.1", 7946), CFG, rng=random.Random(1))
        node.start(0.0, [])
        node.receive_datagram(0.1, ("10.0.0.9", 7946), _packet("alive", 0))
        for i, (inc, kind) in enumerate(order):
            node.receive_datagram(0.2 + i * 0.01, ("10.0.0.9", 7946), _packet(kind, inc))
        info = node.member("m")
        assert info is not None
        results.append((info.incarnation, info.state))
    best = max(ups, key=lambda u: (u[0], RANK[u[1]]))
    assert results[0] == results[1] == (best[0], MemberState(RANK[best[1]]))


@given(
    st.tuples(uints, st.sampled_from(MemberState)),
    st.tuples(uints, st.sampled_from(MemberState)),
)
def test_supersedes_is_a_strict_total_order(
    a: tuple[int, MemberState], b: tuple[int, MemberState]
) -> None:
    ab, ba = supersedes(*a, *b), supersedes(*b, *a)
    assert not (ab and ba)
    assert (ab or ba) == (a != b)


@given(uints, st.text(max_size=300))
def test_the_hand_rolled_ping_and_ack_encodings_are_cbor2s(seq: int, target: str) -> None:
    assert wirefast.encode_ack(seq) == cbor2.dumps([Ack.KIND, seq])
    assert wirefast.encode_ping(seq, target) == cbor2.dumps([Ping.KIND, seq, target])
    assert wirefast.uint_bytes(seq) == cbor2.dumps(seq)


def _generic(raw: bytes) -> object:
    try:
        return CODEC.schema.message(loads_strict(raw))
    except WireError as exc:
        return exc.reason


@given(st.one_of(st.builds(Ack, uints), st.builds(Ping, uints, names)), st.data())
@settings(max_examples=400)
def test_the_fast_decoders_agree_with_the_generic_one_or_decline(
    msg: Ack | Ping, data: st.DataObject
) -> None:
    raw = bytearray(encode_message(msg))
    for _ in range(data.draw(st.integers(0, 3))):  # mutate a few bytes, maybe
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw += data.draw(st.binary(max_size=3))
    raw_b = bytes(raw)
    fast: object = None
    if isinstance(msg, Ack):
        seq = wirefast.decode_ack(raw_b)
        fast = None if seq is None else Ack(seq)
    else:
        got = wirefast.decode_ping(raw_b)
        fast = None if got is None else Ping(*got)
    generic = _generic(raw_b)
    if fast is not None and generic != "bad_field":  # names are checked after
        assert fast == generic
    try:
        via_parse: object = CODEC.parse(raw_b)
    except WireError as exc:
        via_parse = exc.reason
    assert via_parse == generic


@given(st.lists(messages, min_size=1, max_size=6), st.data())
@settings(max_examples=300)
def test_the_fast_packet_split_agrees_with_the_generic_one_or_declines(
    msgs: list[Message], data: st.DataObject
) -> None:
    raw = bytearray(CODEC.packet([wrap(encode_message(m)) for m in msgs]))
    for _ in range(data.draw(st.integers(0, 2))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    payload = bytes(raw)
    try:
        generic: object = CODEC._split(payload, 1024)
    except WireError as exc:
        generic = exc.reason
    fast = wirefast.split_small(payload, CODEC.prefix)
    if fast is not None:
        assert fast == generic
    try:
        via_split: object = CODEC.split_packet(payload)
    except WireError as exc:
        via_split = exc.reason
    assert via_split == generic

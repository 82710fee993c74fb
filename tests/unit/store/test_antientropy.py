"""The anti-entropy protocol: cheap when in sync, precise when not, strict on input."""

import contextlib

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gossip.core.store.antientropy import SyncSession, answer
from gossip.core.store.hlc import Timestamp
from gossip.core.store.memory_replica import MemoryReplica
from gossip.core.store.record import NO_FP, Record
from gossip.core.store.syncwire import (
    RootInfo,
    RootsCheck,
    SyncMessage,
    SyncWireError,
    decode,
    decode_differ,
    decode_roots,
    decode_roots_reply,
    encode,
    encode_differ,
    encode_roots,
)
from gossip.core.store.tombstone_gc import PeerCopy


def filled(n: int, node: str = "a") -> MemoryReplica:
    rep = MemoryReplica()
    rep.load(Record(f"key-{i}", b"value-%d" % i, Timestamp(1000 + i, 0, node)) for i in range(n))
    return rep


def run(a: MemoryReplica, b: MemoryReplica | None, partition: int = 3) -> SyncSession:
    session = SyncSession(a, partition)
    request: bytes | None = session.start()
    while request is not None:
        response, _ = answer(lambda p: b, request)
        request = session.receive(response)
    return session


def test_replicas_in_sync_learn_it_in_one_small_round_trip() -> None:
    a = filled(5000)
    session = run(a, a.clone())
    stats = session.stats
    assert stats.round_trips == 1
    assert stats.bytes_sent + stats.bytes_received <= 256
    assert stats.complete and stats.records_sent == stats.records_received == 0


def test_only_the_differing_records_move_in_each_direction() -> None:
    a = filled(20000)
    b = a.clone()
    a.put(Record("key-5", b"newer on a", Timestamp(9000, 0, "a")))
    b.put(Record("key-77", None, Timestamp(9000, 0, "b")))
    b.put(Record("only-on-b", b"x", Timestamp(9000, 1, "b")))
    session = run(a, b)
    assert session.stats.records_sent == 1
    assert session.stats.records_received == 2
    assert a.items() == b.items()
    assert a.get("key-77") == Record("key-77", None, Timestamp(9000, 0, "b"))
    assert session.stats.bytes_sent + session.stats.bytes_received < 3 * 1500


def test_an_empty_replica_is_filled() -> None:
    a = filled(3000)
    fresh = MemoryReplica()
    session = run(fresh, a)
    assert session.stats.complete
    assert fresh.items() == a.items()


def test_a_peer_that_does_not_hold_the_partition_ends_the_session() -> None:
    session = run(filled(10), None)
    assert session.stats.error == "not_replica"
    assert not session.stats.complete


def test_a_garbled_response_ends_the_session_with_an_error() -> None:
    session = SyncSession(filled(10), 1)
    session.start()
    assert session.receive(b"\xff\x00garbage") is None
    assert session.stats.error is not None and session.stats.error.startswith("bad_response")


@pytest.mark.parametrize(
    "raw",
    [
        {"p": -1},
        {"p": 1, "r": [1]},
        {"p": 1, "r": [-1, 0]},
        {"p": 1, "n": [[17, 0, b"\x00\x00"]]},
        {"p": 1, "n": [[1, 16, b"\x00\x00"]]},
        {"p": 1, "n": [[1, 0, b"\x00\x01"]]},
        {"p": 1, "e": [[2, 0, b"123"]]},
        {"p": 1, "d": [["k", 5, 1, 0, "n"]]},
        {"p": 1, "w": b"1234567"},
        {"p": 1, "x": 5},
        [1, 2, 3],
    ],
)
def test_malformed_messages_are_rejected(raw: object) -> None:
    with pytest.raises(SyncWireError):
        decode(cbor2.dumps(raw))


@settings(max_examples=200)
@given(st.binary(max_size=200))
def test_decoding_garbage_raises_only_the_wire_error(payload: bytes) -> None:
    with contextlib.suppress(SyncWireError):
        decode(payload)


def test_messages_round_trip() -> None:
    rep = filled(50)
    msg = SyncMessage(
        9,
        root=rep.tree.root,
        expansions=[(1, 3, rep.tree.stored_children(1, 3))],
        entries=[(0, 0, [e._replace(fp=NO_FP) for e in rep.entries(0, (1 << 64) - 1)])],
        records=[rep.get("key-1"), Record("gone", None, Timestamp(5, 1, "z"))],  # type: ignore[list-item]
        wants=[0, (1 << 64) - 1],
        sender=PeerCopy("n", 5, (1 << 64) - 1),
    )
    assert decode(encode(msg)) == msg


def test_records_sharing_a_version_settle_on_the_merge_winner_both_ways() -> None:
    ts = Timestamp(50_000, 0, "b")
    values = [b"v%d" % i for i in range(6)]  # tags order either way against the tombstone's
    for mine, theirs in [(v, None) for v in values] + [(None, v) for v in values]:
        a, b = filled(300), filled(300)
        a.put(Record("key-9", mine, ts))
        b.put(Record("key-9", theirs, ts))
        run(a, b)
        assert a.get("key-9") == b.get("key-9") == Record("key-9", None, ts)


def test_a_roots_check_round_trips_and_rejects_garbage() -> None:
    roots = {0: RootInfo((5, 1), 7, 0), 63: RootInfo(((1 << 64) - 1, 10**6), 1, 99)}
    assert decode_roots(encode_roots("a", roots)) == RootsCheck("a", roots, None, None)
    assert decode_differ(encode_differ("b", [3, 1], {1: (7, 0)})) == ("b", [1, 3], {1: (7, 0)})
    for bad in (
        {"from": "a", "roots": [[1, 2]]},
        {"from": "a", "roots": [[-1, 0, 0, 0, 0]]},
        {"from": "a", "roots": 5},
        {"roots": []},
        {"from": "", "roots": []},
        [1],
    ):
        with pytest.raises(SyncWireError):
            decode_roots(cbor2.dumps(bad))
    for bad_differ in (
        {"from": "b", "differ": ["x"]},
        {"from": "b", "differ": [], "copies": [[1, -1, 0]]},
        {"differ": []},
    ):
        with pytest.raises(SyncWireError):
            decode_differ(cbor2.dumps(bad_differ))


def test_a_roots_check_carries_a_bounded_clock_reading() -> None:
    roots = {0: RootInfo((5, 1), 7, 0)}
    assert decode_roots(encode_roots("a", roots, 1_767_225_600_000)).clock_ms == 1_767_225_600_000
    assert decode_roots(encode_roots("a", roots, 5)) == RootsCheck("a", roots, None, 5)
    assert decode_roots_reply(encode_differ("b", [], {}, clock_ms=42)).clock_ms == 42
    assert decode_roots(encode_roots("a", roots)).clock_ms is None
    for bad in (-1, 1 << 47, "1", 1.5, None):
        # a bad reading is left out; the check itself still counts
        assert decode_roots(cbor2.dumps({"from": "a", "roots": [], "t": bad})).clock_ms is None
        reply: dict[str, object] = {"from": "b", "differ": [], "t": bad}
        assert decode_roots_reply(cbor2.dumps(reply)).clock_ms is None


def test_roots_checks_and_session_messages_carry_the_senders_seq() -> None:
    roots = {0: RootInfo((5, 1), 7, 0)}
    assert decode_roots(encode_roots("a", roots, seq=41)).seq == 41
    assert decode_roots(encode_roots("a", roots)).seq is None, "an older build says nothing"
    assert decode_roots_reply(encode_differ("b", [], {0: (7, 0)}, seq=9)).seq == 9
    assert decode_roots_reply(encode_differ("b", [], {0: (7, 0)})).seq is None
    with pytest.raises(SyncWireError):
        decode_roots(cbor2.dumps({"from": "a", "roots": [], "q": -1}))
    with pytest.raises(SyncWireError):
        decode_roots_reply(cbor2.dumps({"from": "b", "differ": [], "q": -1}))
    sent = SyncMessage(3, sender=PeerCopy("a", 7, 5, 88))
    assert decode(encode(sent)).sender == PeerCopy("a", 7, 5, 88)
    old = cbor2.dumps({"p": 3, "i": ["a", 7, 5]})  # an older build's sender
    assert decode(old).sender == PeerCopy("a", 7, 5, None)
    with pytest.raises(SyncWireError):
        decode(cbor2.dumps({"p": 3, "i": ["a", 7, 5, 1, 2]}))


def test_purge_floors_travel_with_roots_checks_answers_and_sessions() -> None:
    roots = {0: RootInfo((5, 1), 7, 90, floor=40, digest=123), 1: RootInfo((6, 1), 8, 0)}
    check = decode_roots(encode_roots("a", roots))
    assert check.roots == roots
    reply = decode_roots_reply(encode_differ("b", [], {0: (7, 90)}, floors={0: (40, 123)}))
    assert reply.floors == {0: (40, 123)}
    assert decode_roots_reply(encode_differ("b", [], {0: (7, 90)})).floors == {}
    sent = SyncMessage(3, sender=PeerCopy("a", 7, 90, 88, floor=40, digest=123))
    assert decode(encode(sent)).sender == PeerCopy("a", 7, 90, 88, 40, 123)
    assert decode(encode(SyncMessage(3, sender=PeerCopy("a", 7, 90, 88)))).sender == PeerCopy(
        "a", 7, 90, 88
    )
    bad_floors: list[object] = [5, [[0, 1]], [[0, -1, 0]], [["x", 1, 2]]]
    for bad in bad_floors:
        with pytest.raises(SyncWireError):
            decode_roots(cbor2.dumps({"from": "a", "roots": [], "f": bad}))
        with pytest.raises(SyncWireError):
            decode_roots_reply(cbor2.dumps({"from": "b", "differ": [], "f": bad}))
    for bad in ([1], [1, -2], "x"):
        with pytest.raises(SyncWireError):
            decode(cbor2.dumps({"p": 3, "i": ["a", 7, 5], "f": bad}))
    assert decode(encode(SyncMessage(3, judged=40))).judged == 40
    assert decode(encode(SyncMessage(3))).judged is None
    with pytest.raises(SyncWireError):
        decode(cbor2.dumps({"p": 3, "j": -1}))

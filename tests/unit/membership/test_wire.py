"""The wire format: round trips, exact sizes, and typed rejections."""

from __future__ import annotations

import cbor2
import pytest

from gossip.core.membership.config import Config
from gossip.core.membership.messages import (
    Ack,
    Alive,
    Dead,
    Kind,
    Left,
    Nack,
    Ping,
    PingReq,
    Prune,
    PushPull,
    PushPullReply,
    StateEntry,
    Suspect,
    SyncRows,
    encode_entry,
)
from gossip.core.membership.wire import (
    VERSION,
    Codec,
    alive_from_entry,
    encode_message,
    entry_from_alive,
    state_row,
    wrap,
)
from gossip.core.membership.wireschema import WireError
from gossip.core.types import MemberInfo, MemberState

CFG = Config(cluster_name="prod")
CODEC = Codec(CFG)
ENTRY = StateEntry("b", ("10.0.0.2", 7946), 3, MemberState.SUSPECT, {"dc": "x"})
ALL = [
    Ping(1, "b"),
    PingReq(2, "c", ("10.0.0.3", 7946)),
    Ack(3),
    Nack(4),
    Alive("a", 5, ("10.0.0.1", 7946), {"role": "db"}),
    Suspect("a", 5, "b"),
    Dead("a", 6, "c"),
    Left("a", 7),
    Prune("a", 7),
]


def test_every_datagram_message_round_trips_in_one_compound_packet() -> None:
    packet = CODEC.packet([wrap(encode_message(m)) for m in ALL])
    assert CODEC.decode_packet(packet) == ALL


@pytest.mark.parametrize("msg", [PushPull(True, (ENTRY,)), PushPullReply((ENTRY, ENTRY))])
def test_stream_frames_round_trip(msg: PushPull | PushPullReply) -> None:
    assert CODEC.decode_frame(CODEC.frame(msg)) == msg


def test_packet_size_is_exactly_prefix_header_and_parts() -> None:
    parts = [wrap(encode_message(Ack(i))) for i in range(30)]
    packet = CODEC.packet(parts)
    assert len(packet) == len(CODEC.prefix) + 2 + sum(map(len, parts))
    assert CODEC.room == CFG.udp_buffer_size - len(CODEC.prefix) - 3


def _reason(payload: bytes) -> str:
    with pytest.raises(WireError) as info:
        CODEC.decode_packet(payload)
    return info.value.reason


def _env(version: object, cluster: object, msgs: list[object]) -> bytes:
    """An envelope whose messages are each encoded and carried as bytes."""
    return bytes(cbor2.dumps([version, cluster, [cbor2.dumps(m) for m in msgs]]))


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "truncated"),
        (_env(VERSION, "prod", [[3, 1]])[:-1], "truncated"),
        (b"\xff", "bad_cbor"),
        (b"\x81" * 1000, "too_deep"),
        (_env(VERSION, "prod", [[[[[[[[[[[[[[[]]]]]]]]]]]]]]]), "bad_kind"),
        (_env(VERSION, "prod", [[3, 1]]) + b"\x00", "trailing_bytes"),
        (_env(VERSION, "prod", [5]), "bad_envelope"),
        (bytes(cbor2.dumps({"a": 1})), "bad_envelope"),
        (_env(2, "prod", [[3, 1]]), "bad_version"),
        (_env(True, "prod", [[3, 1]]), "bad_version"),
        (_env(VERSION, "test", [[3, 1]]), "wrong_cluster"),
        (_env(VERSION, "prod", []), "bad_envelope"),
        (_env(VERSION, "prod", [[99, 1]]), "bad_kind"),
        (_env(VERSION, "prod", [["3", 1]]), "bad_kind"),
        (_env(VERSION, "prod", [[3, -1]]), "bad_field"),
        (_env(VERSION, "prod", [[3, 2**64]]), "bad_field"),
        (_env(VERSION, "prod", [[3, 1, 2]]), "bad_field"),
        (_env(VERSION, "prod", [[1, 1, ""]]), "bad_field"),
        (_env(VERSION, "prod", [[1, 1, "x" * 200]]), "bad_field"),
        (_env(VERSION, "prod", [[5, "a", 1, "h", 70000, {}]]), "bad_field"),
        (_env(VERSION, "prod", [[5, "a", 1, "h", 1, {"k": 1}]]), "bad_field"),
        (_env(VERSION, "prod", [[5, "a", 1, "h", 1, {"k": "v" * 600}]]), "bad_field"),
        (_env(VERSION, "prod", [[3, 1]] * 1025), "too_many"),
        (bytes(cbor2.dumps([VERSION, "prod", [[3, 1]]])), "bad_envelope"),
        (bytes(cbor2.dumps([VERSION, "prod", [b"\x82\x03\x18\x01"]])), "non_canonical"),
        (bytes(cbor2.dumps([VERSION, "prod", [b"\x82\x03\x01\x00"]])), "trailing_bytes"),
        (bytes(cbor2.dumps([VERSION, "prod", [b"\x82\x03"]])), "truncated"),
        (b"\x00" * 70000, "oversized"),
    ],
)
def test_bad_input_is_rejected_with_a_stable_reason(payload: bytes, reason: str) -> None:
    assert _reason(payload) == reason


def test_a_frame_must_hold_exactly_one_message() -> None:
    with pytest.raises(WireError) as info:
        CODEC.decode_frame(_env(VERSION, "prod", [[3, 1], [3, 2]]))
    assert info.value.reason == "too_many"


def test_a_stream_frame_above_the_limit_is_refused_before_parsing() -> None:
    with pytest.raises(WireError) as info:
        CODEC.decode_frame(b"\x00" * (CFG.max_stream_bytes + 1))
    assert info.value.reason == "oversized"


def test_sync_frames_from_rows_equal_the_typed_frames() -> None:
    info = MemberInfo("b", ("10.0.0.2", 7946), MemberState.SUSPECT, 3, {"dc": "x"})
    rows = [wrap(state_row(info))]
    assert CODEC.sync_frame(True, rows) == CODEC.frame(PushPull(True, (ENTRY,)))
    assert CODEC.sync_frame(False, rows) == CODEC.frame(PushPull(False, (ENTRY,)))
    assert CODEC.sync_frame(None, rows) == CODEC.frame(PushPullReply((ENTRY,)))
    assert CODEC.sync_frame(None, []) == CODEC.frame(PushPullReply(()))


def test_an_alive_entry_and_its_alive_message_convert_by_one_byte() -> None:
    for tags in ({}, {"dc": "x", "role": "db"}):
        alive = Alive("node-7", 2**40, ("10.0.0.7", 7946), tags)
        info = MemberInfo("node-7", ("10.0.0.7", 7946), MemberState.ALIVE, 2**40, tags)
        raw = encode_message(alive)
        assert entry_from_alive(raw) == state_row(info)
        assert alive_from_entry(state_row(info)) == raw
        assert CODEC.parse(alive_from_entry(state_row(info))) == alive


def test_a_sync_frame_decodes_to_unparsed_rows_that_parse_to_the_entries() -> None:
    frame = CODEC.frame(PushPull(False, (ENTRY, ENTRY)))
    rows = CODEC.decode_sync_frame(frame)
    assert rows == SyncRows(False, (encode_entry(ENTRY), encode_entry(ENTRY)))
    assert CODEC.parse_entry(rows.rows[0]) == ENTRY
    reply = CODEC.decode_sync_frame(CODEC.frame(PushPullReply((ENTRY,))))
    assert reply == SyncRows(None, (encode_entry(ENTRY),))
    assert CODEC.decode_sync_frame(CODEC.frame(Ack(5))) == Ack(5)


@pytest.mark.parametrize(
    "row",
    [
        [],
        [1, "b", 3, "10.0.0.2", 7946],
        [4, "b", 3, "10.0.0.2", 7946, {}],
        [1, "b", 3, "10.0.0.2", 70000, {}],
        [1, "b", 3, "", 7946, {}],
        [1, "", 3, "10.0.0.2", 7946, {}],
        [1, "b", -1, "10.0.0.2", 7946, {}],
        [1, "b", 3, "10.0.0.2", 7946, []],
        [1, "b", 3, "10.0.0.2", 7946, {"k": 1}],
        "not a row",
    ],
)
def test_a_bad_entry_is_refused_as_a_bad_field(row: object) -> None:
    with pytest.raises(WireError) as info:
        CODEC.parse_entry(cbor2.dumps(row))
    assert info.value.reason == "bad_field"
    # and a frame carrying it is refused whole by the typed decoder
    body = cbor2.dumps([Kind.PUSH_PULL, False, [cbor2.dumps(row)]])
    with pytest.raises(WireError):
        CODEC.decode_frame(CODEC.prefix + b"\x81" + wrap(body))


@pytest.mark.parametrize(
    "body",
    [
        [Kind.PUSH_PULL, 1, []],
        [Kind.PUSH_PULL, True],
        [Kind.PUSH_PULL, True, [b""]],
        [Kind.PUSH_PULL, True, [["b"]]],
        [Kind.PUSH_PULL + 1],
        [Kind.PUSH_PULL + 1, "rows"],
    ],
)
def test_a_malformed_sync_frame_is_refused_before_any_entry_is_read(body: object) -> None:
    with pytest.raises(WireError) as info:
        CODEC.decode_sync_frame(CODEC.prefix + b"\x81" + wrap(cbor2.dumps(body)))
    assert info.value.reason == "bad_field"

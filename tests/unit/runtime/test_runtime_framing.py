"""Stream frames and channel envelopes: round trips and refusals."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from gossip.runtime import framing as fr


async def test_a_frame_round_trips_over_a_stream() -> None:
    a, b = trio.testing.memory_stream_pair()
    await fr.write_frame(a, b"hello")
    assert await fr.read_frame(b, 100) == b"hello"


async def test_a_frame_longer_than_the_bound_is_refused_before_reading_it() -> None:
    a, b = trio.testing.memory_stream_pair()
    await a.send_all(fr.HEADER.pack(10_000_000))  # no body follows
    with pytest.raises(fr.FrameError) as info:
        await fr.read_frame(b, 1024)
    assert info.value.reason == "oversized"


async def test_a_stream_closed_mid_frame_is_truncated() -> None:
    a, b = trio.testing.memory_stream_pair()
    await a.send_all(fr.HEADER.pack(10) + b"abc")
    await a.aclose()
    with pytest.raises(fr.FrameError) as info:
        await fr.read_frame(b, 1024)
    assert info.value.reason == "truncated"


def test_requests_responses_and_datagrams_round_trip() -> None:
    assert fr.decode_request(fr.encode_request("kv", b"body")) == ("kv", b"body")
    assert fr.decode_response(fr.encode_response(fr.STATUS_OK, b"x")) == (fr.STATUS_OK, b"x")
    assert fr.decode_datagram(fr.encode_member_datagram(b"\xa1")) == (None, b"\xa1")
    assert fr.decode_datagram(fr.encode_channel_datagram("sync", b"d")) == ("sync", b"d")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated"),
        (b"\x07", "bad_demux"),
        (b"\x01", "truncated"),
        (b"\x01\x00x", "bad_channel"),
        (b"\x01\x30" + b"a" * 48, "bad_channel"),
        (b"\x01\x05ab", "bad_channel"),
        (b"\x01\x02\xff\xfe", "bad_channel"),
    ],
)
def test_malformed_datagrams_are_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(fr.FrameError) as info:
        fr.decode_datagram(data)
    assert info.value.reason == reason


def test_channel_names_stay_below_the_sealer_magic_byte() -> None:
    assert fr.MAX_CHANNEL_LEN < 0x1C
    with pytest.raises(ValueError, match="channel name"):
        fr.encode_request("x" * (fr.MAX_CHANNEL_LEN + 1), b"")
    with pytest.raises(fr.FrameError):
        fr.decode_response(b"\x09")

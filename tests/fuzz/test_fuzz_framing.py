"""Hypothesis fuzzing of the stream framing, the channel envelopes and the sealer.

Decoders of untrusted bytes may only fail with their typed errors; a valid
frame must round-trip; a sealed packet must survive no mutation.
"""

from __future__ import annotations

import struct

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from gossip.runtime import framing
from gossip.security.keyring import Keyring
from gossip.security.sealer import AesGcmSealer, Policy, SealError

CHANNELS = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=framing.MAX_CHANNEL_LEN
)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_envelope_decoders_fail_only_with_frame_errors(data: bytes) -> None:
    for decode in (framing.decode_request, framing.decode_response, framing.decode_datagram):
        try:
            decode(data)
        except framing.FrameError as exc:
            assert exc.reason in {"truncated", "bad_channel", "bad_status", "bad_demux"}


@settings(max_examples=200, deadline=None)
@given(CHANNELS, st.binary(max_size=200))
def test_envelopes_round_trip(channel: str, body: bytes) -> None:
    assert framing.decode_request(framing.encode_request(channel, body)) == (channel, body)
    datagram = framing.encode_channel_datagram(channel, body)
    assert framing.decode_datagram(datagram) == (channel, body)
    assert framing.decode_datagram(framing.encode_member_datagram(body)) == (None, body)


def read_stream(data: bytes, max_bytes: int) -> bytes | str:
    """Feed `data` then EOF to read_frame; the frame or the FrameError reason."""

    async def main() -> bytes | str:
        send, receive = trio.testing.memory_stream_one_way_pair()
        await send.send_all(data)
        await send.aclose()
        try:
            return await framing.read_frame(receive, max_bytes)
        except framing.FrameError as exc:
            return exc.reason

    return trio.run(main)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64), st.integers(min_value=0, max_value=64))
def test_read_frame_returns_a_bounded_frame_or_a_reason(data: bytes, bound: int) -> None:
    result = read_stream(data, bound)
    if isinstance(result, bytes):
        assert len(result) <= bound
        assert data.startswith(struct.pack(">I", len(result)) + result)
    else:
        assert result in {"truncated", "oversized"}


def test_a_huge_declared_length_is_refused_before_buffering() -> None:
    assert read_stream(struct.pack(">I", 2**32 - 1), 1 << 20) == "oversized"


@pytest.mark.parametrize("cut", [0, 2, 4, 9])
def test_a_stream_closing_mid_frame_is_truncated(cut: int) -> None:
    frame = struct.pack(">I", 10) + b"0123456789"
    assert read_stream(frame[:cut], 100) == "truncated"


_KEY = bytes(range(32))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_sealer_open_fails_only_with_seal_errors(data: bytes) -> None:
    for policy in (Policy(), Policy(require_incoming=False)):
        sealer = AesGcmSealer(Keyring([_KEY]), "c", policy)
        try:
            sealer.open(data)
        except SealError as exc:
            assert sum(sealer.rejected.values()) == 1
            assert exc.reason in sealer.rejected


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=200),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(1, 255)), min_size=1, max_size=4),
)
def test_no_mutation_of_a_sealed_packet_is_accepted(
    body: bytes, flips: list[tuple[int, int]]
) -> None:
    sender = AesGcmSealer(Keyring([_KEY]), "c")
    receiver = AesGcmSealer(Keyring([_KEY]), "c")
    original = sender.seal(body)
    packet = bytearray(original)
    for position, xor in flips:
        packet[position % len(packet)] ^= xor
    if bytes(packet) == original:
        return  # the flips cancelled out
    with pytest.raises(SealError):
        receiver.open(bytes(packet))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200), st.integers(min_value=0, max_value=300))
def test_truncated_sealed_packets_are_refused(body: bytes, keep: int) -> None:
    sender = AesGcmSealer(Keyring([_KEY]), "c")
    packet = sender.seal(body)
    cut = keep % len(packet)
    with pytest.raises(SealError):
        AesGcmSealer(Keyring([_KEY]), "c").open(packet[:cut])

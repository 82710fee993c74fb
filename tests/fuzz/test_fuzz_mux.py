"""Hypothesis fuzzing of the multiplexed connection's wire and of a whole inbound connection.

The message decoder and the frame reader may only fail with their typed
errors; valid input round-trips; any bytes at all sent on a connection leave
the server standing (serve_one returns, never raises).
"""

from __future__ import annotations

import struct

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from gossip.core.types import Address
from gossip.runtime import framing as fr
from gossip.runtime import muxframes as mf
from gossip.runtime.framereader import FrameReader
from gossip.runtime.metrics import Counter
from gossip.runtime.streams import StreamChannels
from gossip.security.sealing import PlainSealer


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=64))
def test_the_message_decoder_fails_only_with_frame_errors(data: bytes) -> None:
    try:
        kind, stream_id, payload = mf.decode(data)
    except fr.FrameError as exc:
        assert exc.reason in {"truncated", "bad_kind"}
    else:
        assert mf.encode(kind, stream_id, payload) == data


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([mf.REQUEST, mf.RESPONSE]),
    st.integers(0, mf.MAX_STREAM_ID),
    st.binary(max_size=100),
)
def test_messages_round_trip(kind: int, stream_id: int, payload: bytes) -> None:
    assert mf.decode(mf.encode(kind, stream_id, payload)) == (kind, stream_id, payload)


def read_all(data: bytes, max_bytes: int) -> tuple[list[bytes], str]:
    """Every frame the reader takes from `data` then EOF, and how it stopped."""

    async def main() -> tuple[list[bytes], str]:
        send, receive = trio.testing.memory_stream_one_way_pair()
        await send.send_all(data)
        await send.aclose()
        reader = FrameReader(receive, max_bytes)
        frames: list[bytes] = []
        try:
            while (frame := await reader.next()) is not None:
                frames.append(frame)
        except fr.FrameError as exc:
            return frames, exc.reason
        return frames, "end"

    return trio.run(main)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(0, 64))
def test_the_frame_reader_returns_bounded_frames_then_an_end_or_a_reason(
    data: bytes, bound: int
) -> None:
    frames, how = read_all(data, bound)
    assert how in {"end", "truncated", "oversized"}
    assert all(len(f) <= bound for f in frames)
    consumed = b"".join(struct.pack(">I", len(f)) + f for f in frames)
    assert data.startswith(consumed)
    assert (how == "end") == (consumed == data)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=50), max_size=6))
def test_frames_written_back_to_back_read_back(payloads: list[bytes]) -> None:
    frames, how = read_all(b"".join(fr.frame(p) for p in payloads), 64)
    assert (frames, how) == (payloads, "end")


async def echo(src: Address, body: bytes) -> bytes:
    return body


def serve_bytes(data: bytes) -> tuple[bytes, float]:
    """Run serve_one on a connection that carries `data` then ends; what it
    answered and how many refusals it counted."""
    rejected = Counter("rejected_total", "Rejected.", ["reason"])

    async def main() -> bytes:
        channels = StreamChannels(
            None,  # type: ignore[arg-type]
            PlainSealer,
            {"echo": echo},
            max_bytes=1024,
            timeout=5.0,
            streams=Counter("streams_total", "Streams.", ["channel", "direction"]),
            rejected=rejected,
        )
        ours, theirs = trio.testing.memory_stream_pair()
        await ours.send_all(data)
        await ours.send_eof()
        await channels.serve_one(theirs, ("10.0.0.9", 1))
        answer = b""
        while chunk := await ours.receive_some():
            answer += chunk
        return answer

    answer = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return answer, sum(rejected._values.values())


REQUEST = mf.encode(mf.REQUEST, 1, fr.encode_request("echo", b"hi"))


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([b"", mf.PREAMBLE, mf.PREAMBLE + fr.frame(REQUEST)]), st.binary(max_size=120)
)
def test_any_bytes_on_a_connection_leave_the_server_standing(prefix: bytes, data: bytes) -> None:
    answer, refused = serve_bytes(prefix + data)
    if prefix.startswith(mf.PREAMBLE):
        assert answer.startswith(mf.PREAMBLE)
    if prefix == mf.PREAMBLE + fr.frame(REQUEST) and not data:
        assert refused == 0  # a well-formed request then the end: nothing to refuse

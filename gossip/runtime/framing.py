"""Length-prefixed frames on TCP streams, and the channel envelope.

Rules: a frame is a 4-byte big-endian length then that many bytes; a frame
longer than the caller's bound is refused before any of it is buffered, and
a stream that closes mid-frame is an error. Reading is bounded in size here
and in time by the caller (trio.fail_after / move_on_after).

Plaintext layouts (each is sealed by the agent's Sealer before it is framed):
  request frame   = u8 channel_len | channel (ascii) | body
  response frame  = u8 status | body      status 0 ok, 1 no reply, 2 error (body = reason)
  datagram        = u8 0 | core payload                               (membership)
                  | u8 1 | u8 channel_len | channel | body            (service channel)
"""

from __future__ import annotations

import struct

import trio

HEADER = struct.Struct(">I")
MAX_CHANNEL_LEN = 24
"""Kept below 0x1c so a plaintext frame never starts with the sealer's magic byte."""

STATUS_OK = 0
STATUS_NO_REPLY = 1
STATUS_ERROR = 2

DGRAM_MEMBER = 0
DGRAM_CHANNEL = 1


class FrameError(Exception):
    """A stream broke the framing rules (too long, truncated, malformed envelope)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def frame(payload: bytes) -> bytes:
    """`payload` with its length header."""
    return HEADER.pack(len(payload)) + payload


async def write_frame(stream: trio.abc.SendStream, payload: bytes) -> None:
    await stream.send_all(frame(payload))


async def _read_exactly(stream: trio.abc.ReceiveStream, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = await stream.receive_some(min(65536, n - len(buf)))
        if not chunk:
            raise FrameError("truncated")
        buf += chunk
    return bytes(buf)


async def read_frame(stream: trio.abc.ReceiveStream, max_bytes: int) -> bytes:
    (length,) = HEADER.unpack(await _read_exactly(stream, HEADER.size))
    if length > max_bytes:
        raise FrameError("oversized")
    return await _read_exactly(stream, length)


def _check_channel(channel: str) -> bytes:
    raw = channel.encode("ascii")
    if not 0 < len(raw) <= MAX_CHANNEL_LEN:
        raise ValueError(f"channel name must be 1..{MAX_CHANNEL_LEN} ascii bytes: {channel!r}")
    return raw


def _split_channel(data: bytes, offset: int) -> tuple[str, bytes]:
    if len(data) <= offset:
        raise FrameError("truncated")
    n = data[offset]
    start = offset + 1
    if n == 0 or n > MAX_CHANNEL_LEN or len(data) < start + n:
        raise FrameError("bad_channel")
    try:
        name = data[start : start + n].decode("ascii")
    except UnicodeDecodeError:
        raise FrameError("bad_channel") from None
    return name, data[start + n :]


def encode_request(channel: str, body: bytes) -> bytes:
    raw = _check_channel(channel)
    return bytes([len(raw)]) + raw + body


def decode_request(data: bytes) -> tuple[str, bytes]:
    return _split_channel(data, 0)


def encode_response(status: int, body: bytes = b"") -> bytes:
    return bytes([status]) + body


def decode_response(data: bytes) -> tuple[int, bytes]:
    if not data or data[0] not in (STATUS_OK, STATUS_NO_REPLY, STATUS_ERROR):
        raise FrameError("bad_status")
    return data[0], data[1:]


def encode_member_datagram(payload: bytes) -> bytes:
    return bytes([DGRAM_MEMBER]) + payload


def encode_channel_datagram(channel: str, body: bytes) -> bytes:
    raw = _check_channel(channel)
    return bytes([DGRAM_CHANNEL, len(raw)]) + raw + body


def decode_datagram(data: bytes) -> tuple[str | None, bytes]:
    """Return (None, core payload) for membership, (channel, body) for a service."""
    if not data:
        raise FrameError("truncated")
    if data[0] == DGRAM_MEMBER:
        return None, data[1:]
    if data[0] == DGRAM_CHANNEL:
        return _split_channel(data, 1)
    raise FrameError("bad_demux")


DATAGRAM_OVERHEAD = 1
"""Bytes the demux header adds to a membership datagram."""

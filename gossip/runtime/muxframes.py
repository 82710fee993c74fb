"""The multiplexed stream connection's wire: its preamble, its offer and its messages.

Rules:
- A multiplexed connection opens with PREAMBLE in each direction: the client
  sends it first, the server answers with it before any message. Read as a
  one-exchange length header, its first four bytes declare a frame of about
  4 GiB, which no agent sends (lengths are u32 and `max_stream_bytes` is far
  below), so a server tells the two forms apart from the first four bytes.
- After the preambles each direction carries frames (framing.py: u32 length |
  sealed bytes); the sealed plaintext is `u8 kind | u32 stream id | payload`:
  REQUEST (client to server, payload = the request envelope) or RESPONSE
  (server to client, payload = the response envelope). The stream id is chosen
  by the client and echoed by the server; it sits inside the seal, so nobody
  without the key can move an answer to another exchange. Kinds are above
  0x1c, the sealer's magic byte, so a plaintext message is never taken for a
  sealed one.
- A server that speaks this form appends one sealed OFFER frame to every
  one-exchange answer. An older client reads its answer and closes without
  reading on; a client of this build reads the offer and from then on opens a
  multiplexed connection to that address.
"""

from __future__ import annotations

import struct

from gossip.runtime.framing import FrameError

PREAMBLE = b"\xffGMX/1\r\n"
PREAMBLE_HEAD = PREAMBLE[:4]
OFFER = b"\x7fgossip-mux/1"
"""Plaintext of the frame that follows a one-exchange answer of this build."""
MAX_OFFER_FRAME = 256
"""Bound on a frame read as an offer (its sealed size is far below)."""

REQUEST = 0x40
RESPONSE = 0x41
_KINDS = frozenset({REQUEST, RESPONSE})
_HEADER = struct.Struct(">BI")
HEADER_SIZE = _HEADER.size
MAX_STREAM_ID = 2**32 - 1


def encode(kind: int, stream_id: int, payload: bytes) -> bytes:
    return _HEADER.pack(kind, stream_id) + payload


def decode(data: bytes) -> tuple[int, int, bytes]:
    """(kind, stream id, payload); FrameError("truncated" | "bad_kind") otherwise."""
    if len(data) < HEADER_SIZE:
        raise FrameError("truncated")
    kind, stream_id = _HEADER.unpack_from(data)
    if kind not in _KINDS:
        raise FrameError("bad_kind")
    return kind, stream_id, data[HEADER_SIZE:]

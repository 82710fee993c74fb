"""Hand-rolled canonical CBOR for the hottest small items on the wire.

Every probe sends a ping and gets an ack, mostly in packets of one message;
through cbor2 each costs a list, an encode, and on receipt a decode plus the
re-encode that proves the input canonical. These functions do the same for
those shapes directly.

Rules: an encoder returns exactly cbor2's canonical bytes (a property test
compares them). A decoder returns a result only when the input is exactly
the canonical encoding of it (it re-encodes and compares, as wire.py does);
for anything else it returns None and the caller takes the generic path,
which gives the precise rejection. So strictness is unchanged.
"""

from __future__ import annotations

from gossip.core.membership.messages import Kind

_MAX_UINT = 2**63 - 1
ACK_HEAD = bytes((0x82, Kind.ACK))
"""The first two bytes of every encoded ack."""
PING_HEAD = bytes((0x83, Kind.PING))
"""The first two bytes of every encoded ping."""
_UINT_WIDTH = {0x18: 1, 0x19: 2, 0x1A: 4, 0x1B: 8}


def uint_bytes(n: int) -> bytes:
    """Canonical CBOR of an unsigned integer 0 <= n < 2**64."""
    if n < 24:
        return bytes((n,))
    if n < 0x100:
        return bytes((0x18, n))
    if n < 0x10000:
        return b"\x19" + n.to_bytes(2, "big")
    if n < 0x100000000:
        return b"\x1a" + n.to_bytes(4, "big")
    return b"\x1b" + n.to_bytes(8, "big")


def _read_uint(raw: bytes, i: int) -> tuple[int, int] | None:
    """(value, next offset) of the unsigned integer at raw[i], any width."""
    if i >= len(raw):
        return None
    b = raw[i]
    if b < 24:
        return b, i + 1
    width = _UINT_WIDTH.get(b)
    if width is None or i + 1 + width > len(raw):
        return None
    return int.from_bytes(raw[i + 1 : i + 1 + width], "big"), i + 1 + width


def head(major: int, n: int) -> bytes:
    """The canonical head of a CBOR item of major type `major` (as its top
    three bits: 0x40 byte string, 0x60 text, 0x80 array) and length n < 2**32."""
    if n < 24:
        return bytes((major | n,))
    if n < 0x100:
        return bytes((major | 24, n))
    if n < 0x10000:
        return bytes((major | 25,)) + n.to_bytes(2, "big")
    return bytes((major | 26,)) + n.to_bytes(4, "big")


def text_bytes(s: str) -> bytes:
    """Canonical CBOR of a text string."""
    data = s.encode()
    return head(0x60, len(data)) + data


def encode_ack(seq: int) -> bytes:
    return ACK_HEAD + uint_bytes(seq)


def encode_ping(seq: int, target: str) -> bytes:
    return PING_HEAD + uint_bytes(seq) + text_bytes(target)


def decode_ack(raw: bytes) -> int | None:
    """The seq of a canonical ack, else None."""
    if not raw.startswith(ACK_HEAD):
        return None
    got = _read_uint(raw, 2)
    if got is None or got[0] > _MAX_UINT or raw != ACK_HEAD + uint_bytes(got[0]):
        return None
    return got[0]


def decode_ping(raw: bytes) -> tuple[int, str] | None:
    """(seq, target) of a canonical ping with a short target, else None."""
    if not raw.startswith(PING_HEAD):
        return None
    got = _read_uint(raw, 2)
    if got is None or got[0] > _MAX_UINT:
        return None
    seq, i = got
    if i >= len(raw):
        return None
    head = raw[i]
    if 0x60 <= head < 0x78:
        start, n = i + 1, head - 0x60
    elif head == 0x78 and i + 1 < len(raw):
        start, n = i + 2, raw[i + 1]
    else:
        return None
    try:
        target = raw[start : start + n].decode()
    except UnicodeDecodeError:
        return None
    if raw != PING_HEAD + uint_bytes(seq) + text_bytes(target):
        return None
    return seq, target


def split_small(payload: bytes, prefix: bytes) -> list[bytes] | None:
    """The messages of a canonical datagram `prefix` + [bstr, ...] holding 1-4
    non-empty messages, else None."""
    n = len(payload)
    p = len(prefix)
    if n <= p or not payload.startswith(prefix):
        return None
    count = payload[p] - 0x80
    if not 1 <= count <= 4:
        return None
    out = []
    i = p + 1
    for _ in range(count):
        if i >= n:
            return None
        head = payload[i]
        if 0x41 <= head < 0x58:
            start, size = i + 1, head - 0x40
        elif head == 0x58 and i + 1 < n and payload[i + 1] >= 24:
            start, size = i + 2, payload[i + 1]
        elif head == 0x59 and i + 2 < n:
            size = int.from_bytes(payload[i + 1 : i + 3], "big")
            if size < 0x100:
                return None
            start = i + 3
        else:
            return None
        end = start + size
        if end > n:
            return None
        out.append(payload[start:end])
        i = end
    return out if i == n else None

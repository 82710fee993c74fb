"""Fuzz targets: one function per decoder of untrusted bytes, plus seed inputs.

Rules: a target calls the decoder and swallows only the decoder's documented
typed errors; any other exception escapes and is a finding.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from gossip.runtime import framing
from gossip.security.keyring import Keyring
from gossip.security.sealer import AesGcmSealer, Policy, SealError

Target = Callable[[bytes], None]

_KEY = bytes(range(32))
_RING = Keyring([_KEY, bytes(16)])
_STRICT = AesGcmSealer(_RING, "fuzz")
_LENIENT = AesGcmSealer(_RING, "fuzz", Policy(require_incoming=False))
_PEER = AesGcmSealer(Keyring([_KEY]), "fuzz")


def sealer_open(data: bytes) -> None:
    for sealer in (_STRICT, _LENIENT):
        with contextlib.suppress(SealError):
            sealer.open(data)


def framing_decoders(data: bytes) -> None:
    for decode in (framing.decode_request, framing.decode_response, framing.decode_datagram):
        with contextlib.suppress(framing.FrameError):
            decode(data)


def all_targets() -> list[tuple[str, Target]]:
    return [("sealer_open", sealer_open), ("framing", framing_decoders)]


def seeds_for(index: int) -> list[bytes]:
    name = all_targets()[index][0]
    if name == "sealer_open":
        return [_PEER.seal(b""), _PEER.seal(b"\xa1ahello" * 10), b"\xa1plain"]
    if name == "framing":
        return [
            framing.encode_request("member", b"\x00body"),
            framing.encode_channel_datagram("keys", b"x"),
            framing.encode_response(framing.STATUS_OK, b"ok"),
        ]
    return [b""]

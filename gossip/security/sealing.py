"""The encryption seam: every datagram and every stream frame passes a Sealer.

Rules: `seal` never fails; `open` either returns the plaintext or raises
`SealRejected` with a short stable reason token (counted in metrics as
`rejected datagrams by reason`), never any other exception. `overhead` is the
number of bytes `seal` adds at most, so the core can keep datagrams within the
UDP budget. The default is plaintext; the security layer supplies AES-GCM.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from gossip.core.types import Address


class SealRejected(Exception):
    """An incoming packet or frame failed to open (bad key, forged, plaintext refused)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@runtime_checkable
class Sealer(Protocol):
    @property
    def overhead(self) -> int:
        """Bytes added by `seal` at most."""
        ...

    def seal(self, plaintext: bytes, peer: Address | None = None) -> bytes:
        """`peer` is where the bytes go (None if unknown): a keyring may answer a
        peer with the older key that peer still uses."""
        ...

    def open(self, sealed: bytes, peer: Address | None = None) -> bytes:
        """Return the plaintext or raise SealRejected(reason); `peer` is the source."""
        ...


class PlainSealer:
    """No encryption: what the agent uses until a keyring is configured."""

    @property
    def overhead(self) -> int:
        return 0

    def seal(self, plaintext: bytes, peer: Address | None = None) -> bytes:
        return plaintext

    def open(self, sealed: bytes, peer: Address | None = None) -> bytes:
        return sealed

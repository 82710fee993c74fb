"""Keyed fingerprints: what an entry adds to a Merkle tree's sums when the
cluster has a secret.

Rules: without a key an entry keeps the plain 64-bit hash it was made with
(record.make_entry). With one, its fingerprint is a keyed BLAKE2b of the same
packed entry, so nobody without the secret can choose records whose
fingerprints cancel out in a tree's sum and hide a difference. The keying is a
step of its own, applied wherever an entry enters a tree or a node summary;
entries on the wire carry no fingerprint, so agents compare entries alike
whatever their keys. The key is derived from the cluster secret for this use
only and is never sent.
"""

from __future__ import annotations

import hashlib

from gossip.core.store.record import Entry

_DERIVE_PERSON = b"gossip-kv-fpkey"
_FP_PERSON = b"gossip-kv-kfp"


def derive_key(secret: bytes) -> bytes:
    """The fingerprint key for a cluster secret (one-way: it reveals nothing of it)."""
    return hashlib.blake2b(secret, digest_size=32, person=_DERIVE_PERSON).digest()


class Fingerprinter:
    def __init__(self, key: bytes | None = None) -> None:
        self.key = key

    def keyed(self, e: Entry) -> Entry:
        """`e` with the fingerprint a tree should sum."""
        if self.key is None:
            return e
        digest = hashlib.blake2b(e.pack(), digest_size=8, key=self.key, person=_FP_PERSON)
        return e._replace(fp=int.from_bytes(digest.digest(), "big"))

"""When a tombstone may be purged, and what a peer's missing record means.

Rules: every row a node stores gets the next local sequence number. When two
nodes find equal roots for a partition, each records a `Proof` for the other:
the peer then held everything this node held up to `seq` (both sides' sets
were equal). A tombstone may be purged once it is `horizon` old here (judged on
the monotonic clock: every row stored up to `aged_seq`) and every current
replica of its partition has a proof that covers its seq. A purge raises the
partition's watermark, the greatest version purged there, which replicas pass
on in every sync exchange.

A record this node holds and a peer lacks (or holds older) is judged deleted,
not shipped, when either
1. a proof about the peer's same copy (`gen`) covers the record: the peer held
   it, so only a purge of a newer tombstone can have removed it; or
2. this node has no proof about the peer's copy from the last `horizon` (it was
   down, cut off, restarted, or the peer is new) and the record is not newer
   than the peer's watermark: it may be a copy of a key deleted and purged while
   this node was away, and bringing it back would undo that delete.
Everything else is shipped. Nothing here reads a clock: `now` is passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple


class Proof(NamedTuple):
    gen: int
    """The peer's data generation for the partition when the proof was made."""
    seq: int
    """This node's sequence number when its (equal) root was taken."""
    at: float
    """Monotonic time of the proof."""


class PeerCopy(NamedTuple):
    """What a peer says of its copy of a partition (sent in every sync exchange)."""

    name: str
    gen: int
    watermark: int
    """Packed version of the greatest tombstone purged in that copy (0: none)."""


def purge_bound(proofs: Mapping[str, Proof], replicas: Iterable[str], aged_seq: int) -> int:
    """The greatest seq up to which this node's tombstones in a partition may be
    purged, given its proofs about the partition's other current replicas."""
    bound = aged_seq
    for name in replicas:
        proof = proofs.get(name)
        if proof is None:
            return 0
        bound = min(bound, proof.seq)
    return bound


def judged_deleted(
    seq: int, version: int, proof: Proof | None, peer: PeerCopy, now: float, horizon: float
) -> bool:
    """Whether a record (stored here at `seq`, packed `version`) that `peer` lacks
    or holds older is one the peer deleted and purged (see the rules above)."""
    same_copy = proof is not None and proof.gen == peer.gen
    if same_copy and proof is not None and seq <= proof.seq:
        return True
    recent = same_copy and proof is not None and now - proof.at < horizon
    return not recent and version <= peer.watermark

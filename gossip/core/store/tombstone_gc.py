"""When a tombstone may be purged, and what a peer's missing record means.

Rules: every row a node stores gets the next local sequence number. When two
nodes find equal roots for a partition, each records a `Proof` for the other:
the peer then held everything this node held up to `seq` (both sides' sets
were equal), and each adopts the other's watermark (equal sets: each has, in
effect, applied the other's purges). A tombstone may be purged once it is
`horizon` old here (judged on the monotonic clock: every row stored up to
`aged_seq`), the partition's replica set holds a majority of the configured
replicas, and every other current replica has a proof that covers its seq. A
purge raises the partition's watermark, the greatest version purged there.

A record this node holds and a peer lacks (or holds older) is judged deleted,
not shipped, when either
1. a proof about the peer's same copy (`gen`) covers the record: the peer held
   it, so only a purge of a newer tombstone can have removed it (exact). The
   proof must be about a state of the peer no later than the one its message
   shows (`Proof.peer_seq` <= `PeerCopy.seq`, the peer's own sequence numbers):
   a message built before the peer received the record, and read after a newer
   proof came in (by another exchange, or a roots check answered meanwhile),
   shows a record the peer has not had yet, not one it deleted; or
2. this node is returning (no proof from the last `horizon` with any replica of
   the partition: it was down, cut off alone, or restarted) and the record is
   not newer than the peer's purge floor (its watermark, less what its purge
   log knows key by key, gossip.core.store.purgelog): it may be a copy of a key
   deleted and purged while this node was away. A record above the floor is
   shipped, and the peer, whose log knows each key it purged above its floor,
   answers a copy of a purged key with the purged tombstone again. A node
   that kept proving equal roots with some replica is never returning, so
   neither side of a healed split judges the other side's writes by this rule.
   This is a judgement, not a proof, so a removal by this rule starts a new
   data generation here: the peers' proofs about the old copy no longer apply,
   and the judgement cannot spread by rule 1 to replicas that were never away.
   Tombstones are never judged by this rule: shipped back, one costs a purge;
   dropped, it may have been the delete's only copy.
Everything else is shipped. A replica refuses a direct write (not a synced
record) for a key it does not hold that is not newer than its own watermark.
Nothing here reads a clock: `now` is passed in.
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
    peer_seq: int | None = None
    """The peer's own sequence number when its (equal) root was taken (None: a peer
    of an older build did not say)."""


class PeerCopy(NamedTuple):
    """What a peer says of its copy of a partition (sent in every sync exchange)."""

    name: str
    gen: int
    watermark: int
    """Packed version of the greatest tombstone purged in that copy (0: none)."""
    seq: int | None = None
    """The peer's sequence number when it built the message (None: an older build)."""
    floor: int | None = None
    """Up to which packed version the peer knows its purges only by the watermark
    (gossip.core.store.purgelog; None: up to the watermark, as with older builds)."""
    digest: int = 0
    """The digest of the peer's purge log (its entries above the floor)."""

    @property
    def judged_floor(self) -> int:
        """The version up to which rule 2 judges a returning record against this copy."""
        return self.watermark if self.floor is None else min(self.floor, self.watermark)


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


def away(last_proof: Proof | None, now: float, horizon: float) -> bool:
    """Whether this node is returning: no proof from the last `horizon` with any
    replica of the partition (or none at all since it started)."""
    return last_proof is None or now - last_proof.at >= horizon


def judged_deleted(
    seq: int,
    version: int,
    proof: Proof | None,
    peer: PeerCopy,
    returning: bool,
    *,
    tombstone: bool = False,
) -> tuple[bool, bool]:
    """Whether a record (stored here at `seq`, packed `version`) that `peer` lacks
    or holds older is one the peer deleted and purged, and whether that is a
    judgement by rule 2 (see the rules above) rather than a proof by rule 1.
    Rule 2 never judges a tombstone: shipping one back costs a purge, while
    dropping one that was the only record of a delete (acknowledged at `one`
    by this node while it was away) would bring the deleted value back."""
    if proof is not None and proof.gen == peer.gen and seq <= proof.seq and _before(proof, peer):
        return True, False
    if returning and not tombstone and version <= peer.judged_floor:
        return True, True
    return False, False


def _before(proof: Proof, peer: PeerCopy) -> bool:
    """Whether the proof is about a state of the peer no later than the one its
    message shows (unknown for peers of older builds: taken as before)."""
    return proof.peer_seq is None or peer.seq is None or proof.peer_seq <= peer.seq

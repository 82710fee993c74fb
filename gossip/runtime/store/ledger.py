"""Tombstone GC for the store service: proofs, purges and the screening replica.

Rules: proofs, peers' copies and age checkpoints live in memory only, so after a
restart nothing is purged until new proofs are made and `horizon` has passed in
this life, and the node is returning until it proves equal roots with a peer
(see gossip.core.store.tombstone_gc for the rules themselves). Ages are judged
on the monotonic clock (trio.current_time()), never on wall-time differences,
so a wall-clock step purges nothing early. Watermarks are persisted with the
data; a peer's is adopted only with an equal-roots proof. Proofs about a member
that was reaped are kept (it may come back with its data); what is kept about a
partition goes when this node no longer holds it. Metadata is per partition and
peer; the one thing kept per key is the storage's bounded purge log
(gossip.core.store.purgelog), which `ScreenedReplica` consults both ways: a
returning copy judges by the peer's purge floor, and a live record of a key the log
holds a newer tombstone for is stored as that tombstone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence

import structlog

from gossip.core.store.record import Record
from gossip.core.store.tombstone_gc import (
    PeerCopy,
    Proof,
    away,
    judged_deleted,
    purge_bound,
)
from gossip.runtime.store.storage import KVStorage
from gossip.runtime.store.storedreplica import StoredReplica

log = structlog.get_logger("gossip.kv")


class Ledger:
    def __init__(self, storage: KVStorage, name: str, horizon: float) -> None:
        self.storage = storage
        self.name = name
        self.horizon = horizon
        self.proofs: dict[int, dict[str, Proof]] = {}
        self.last_proof: dict[int, Proof] = {}
        """Per partition, the latest proof with any peer."""
        self._checkpoints: deque[tuple[float, int]] = deque()
        """(monotonic time, seq) noted by `tick`, the first when the service starts."""
        self.aged_seq = 0
        """Every row stored up to this seq has been here at least `horizon`."""

    def copy(self, part: int) -> PeerCopy:
        """This node's copy of a partition, as it tells peers, with its sequence number
        now: build the message it goes with before the next await."""
        s = self.storage
        mark, floor = s.watermark(part), s.purge_floor(part)
        if floor >= mark:  # the log knows nothing more: say it as older builds do
            return PeerCopy(self.name, s.generation(part), mark, s.seq)
        return PeerCopy(
            self.name, s.generation(part), mark, s.seq, floor, s.purges.digest(part, floor)
        )

    def proven(
        self, part: int, peer: PeerCopy, seq: int, now: float, *, contact: bool = True
    ) -> None:
        """Equal roots with `peer`: it held everything this node held at `seq`, and
        this copy now reflects the purges behind the peer's watermark. With `contact`
        (the peer said it is not pending for the partition) it also ends this node's
        returning: a pending peer may be as far behind as this node is."""
        proof = Proof(peer.gen, seq, now, peer.seq)
        self.proofs.setdefault(part, {})[peer.name] = proof
        if contact:
            self.last_proof[part] = proof
        self.storage.adopt_purges(part, peer.judged_floor, peer.digest, peer.watermark)

    def lost_contact(self) -> None:
        """This node was cut off from most of the cluster (and is back): it is
        returning for every partition until a peer that is not pending proves
        equal roots with it. The peers it kept proving with meanwhile were cut
        off with it."""
        self.last_proof.clear()

    def returning(self, part: int, now: float) -> bool:
        """Whether this node is returning for `part` (no recent proof with anyone)."""
        return away(self.last_proof.get(part), now, self.horizon)

    def tick(self, now: float) -> None:
        """Note how far the sequence has got, and which rows are now horizon old."""
        self._checkpoints.append((now, self.storage.seq))
        while self._checkpoints and self._checkpoints[0][0] <= now - self.horizon:
            self.aged_seq = max(self.aged_seq, self._checkpoints.popleft()[1])

    def purgeable(self, part: int, others: Iterable[str]) -> int:
        """The seq up to which tombstones of `part` may be purged, given its other
        current replicas."""
        return purge_bound(self.proofs.get(part, {}), others, self.aged_seq)

    def keep_only(self, held: set[int]) -> None:
        """Drop what is kept about partitions this node neither holds nor replicates
        (bounds the ledger)."""
        for part in [p for p in self.proofs if p not in held]:
            del self.proofs[part]
        for part in [p for p in self.last_proof if p not in held]:
            del self.last_proof[part]


class ScreenedReplica(StoredReplica):
    """A partition as one sync session sees it: incoming records pass `accept`
    (clock checks), outgoing ones are screened against the peer's copy."""

    def __init__(
        self,
        ledger: Ledger,
        part: int,
        accept: Callable[[Sequence[Record]], list[Record]],
        now: Callable[[], float],
        unsettled: Callable[[], bool] = lambda: False,
    ) -> None:
        super().__init__(ledger.storage, part)
        self.ledger = ledger
        self.accept = accept
        self.now = now
        self.unsettled = unsettled
        """Whether this copy may hold what was purged elsewhere: a former replica's
        (handed off), or one still being filled (a former replica may have handed it
        old copies)."""

    def apply(self, records: Sequence[Record], judged: int | None = None) -> int:
        return self.storage.apply(self._purged_again(self.accept(records), judged), part=self.part)

    def _purged_again(self, records: list[Record], judged: int | None) -> list[Record]:
        """A live record of a key this copy purged a newer tombstone of comes back as
        that tombstone: a returning node shipped a copy that a delete had replaced
        (it judges by the purge floor, this log knows the keys above it). The
        tombstone then replaces the copy wherever it came from. A record a returning
        sender judged by an older floor, which this copy's floor has passed since, is
        not taken now: the log no longer vouches for it, and the sender judges it
        again by the new floor in its next session."""
        purges = self.storage.purges
        floor = self.storage.purge_floor(self.part)
        out: list[Record] = []
        again = deferred = 0
        for r in records:
            version = None if r.deleted else purges.covering(self.part, r.key)
            if version is not None and version >= r.version:
                out.append(Record(r.key, None, version))
                again += 1
            elif judged is not None and not r.deleted and r.version.packed <= floor:
                deferred += 1
            else:
                out.append(r)
        if again or deferred:
            log.info(
                "kv_purged_copies_answered",
                partition=self.part,
                records=again,
                deferred=deferred,
            )
        return out

    def judging(self, peer: PeerCopy | None) -> int | None:
        if peer is None or not (self.unsettled() or self.ledger.returning(self.part, self.now())):
            return None
        return peer.judged_floor

    def screen(self, records: Sequence[Record], peer: PeerCopy | None) -> list[Record]:
        if peer is None:
            return list(records)
        proof = self.ledger.proofs.get(self.part, {}).get(peer.name)
        seqs = self.storage.seqs(self.part, [r.key for r in records])
        # An unsettled copy judges like a returning node: a former replica's stopped
        # receiving the partition's deletes when it left the replica set, and the
        # current replicas may have purged them since (they do not wait for its
        # hand-off); a copy being filled may hold what such a replica handed it.
        away = self.unsettled() or self.ledger.returning(self.part, self.now())
        keep: list[Record] = []
        gone: list[Record] = []
        guessed = False
        for r in records:
            deleted, judged = judged_deleted(
                seqs.get(r.key, 0), r.version.packed, proof, peer, away, tombstone=r.deleted
            )
            (gone if deleted else keep).append(r)
            guessed |= judged
        if gone:
            if guessed:
                self.storage.new_generation(self.part)
            # dropping a tombstone is a purge: the watermark and the purge log take it
            self.storage.note_purged(self.part, [r for r in gone if r.deleted])
            self.storage.remove(self.part, [r.key for r in gone])
            log.info(
                "kv_records_judged_deleted",
                partition=self.part,
                peer=peer.name,
                records=len(gone),
                tombstones=sum(r.deleted for r in gone),
                returning=guessed,
            )
        return keep

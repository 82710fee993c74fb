"""A replica with a purge log: rule 2 by the floor, stale copies answered with the
purged tombstone, and records judged by an older floor not taken.

Found by a fault run (`--rate 150`, seed 26): a write at `one` through an agent cut off
alone was judged deleted after the heal because the other side had purged a newer
tombstone of another key in the same partition.
"""

from __future__ import annotations

from gossip.core.store.hlc import Timestamp
from gossip.core.store.record import Record
from gossip.core.store.tombstone_gc import PeerCopy
from gossip.runtime.store.ledger import Ledger, ScreenedReplica
from gossip.runtime.store.storage import KVStorage


def at(wall: int, node: str = "b") -> Timestamp:
    return Timestamp(wall, 0, node)


def replica(returning: bool) -> tuple[KVStorage, Ledger, ScreenedReplica]:
    storage = KVStorage(None, lambda key: 0)
    ledger = Ledger(storage, "a", horizon=10.0)
    if not returning:
        ledger.proven(0, PeerCopy("c", 5, 0), 0, now=99.0)
    return storage, ledger, ScreenedReplica(ledger, 0, list, lambda: 100.0)


def test_a_returning_node_ships_a_write_the_peers_log_does_not_cover() -> None:
    storage, _, rep = replica(returning=True)
    written_alone = Record("mine", b"v", at(1_500, "a"))
    storage.put(written_alone)
    # The peer purged a newer tombstone of another key: its watermark is above the
    # write, its floor below it.
    peer = PeerCopy("b", 7, at(2_000).packed, 3, floor=0, digest=1)
    assert rep.judging(peer) == 0
    assert rep.screen([written_alone], peer) == [written_alone]
    assert storage.get("mine") == written_alone
    older_build = PeerCopy("b", 7, at(2_000).packed, 3)  # judged by the watermark
    assert rep.screen([written_alone], older_build) == []
    assert storage.get("mine") is None


def test_a_stale_copy_of_a_purged_key_is_answered_with_its_tombstone() -> None:
    storage, _, rep = replica(returning=False)
    delete = Record("doomed", None, at(2_000))
    storage.put(delete)
    storage.purge_tombstones(0, storage.seq)
    assert storage.get("doomed") is None
    assert storage.purges.covering(0, "doomed") == delete.version
    assert rep.judging(PeerCopy("n", 1, 0)) is None  # not returning: judges nothing
    stale = Record("doomed", b"old", at(1_000, "a"))
    newer = Record("doomed", b"new", at(3_000, "a"))
    unrelated = Record("other", b"x", at(1_000, "a"))
    rep.apply([stale, unrelated], judged=0)
    assert storage.get("doomed") == delete
    assert storage.get("other") == unrelated
    rep.apply([newer])
    assert storage.get("doomed") == newer  # written after the delete: it stands


def test_a_record_judged_by_a_floor_this_copy_has_passed_since_is_not_taken() -> None:
    storage, ledger, rep = replica(returning=False)
    storage.note_purged(0, [Record("gone", None, at(2_000))])
    # Equal roots with a peer whose log differs: the floor rises to its watermark and
    # the entries below go (this copy can no longer tell which keys were purged).
    ledger.proven(0, PeerCopy("p", 9, at(2_500).packed, 4, floor=0, digest=12345), 0, now=99.0)
    assert storage.purge_floor(0) == at(2_500).packed
    assert storage.purges.covering(0, "gone") is None
    stale = Record("gone", b"old", at(1_000, "a"))
    rep.apply([stale], judged=0)  # the sender judged it by the floor it saw (0)
    assert storage.get("gone") is None
    rep.apply([stale])  # a sender that was not judging: anti-entropy takes it
    assert storage.get("gone") == stale
    above = Record("fresh", b"v", at(3_000, "a"))
    rep.apply([above], judged=0)
    assert storage.get("fresh") == above

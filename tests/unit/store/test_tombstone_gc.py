"""The tombstone GC rules as pure functions: purge bounds, returning, judged deletes."""

from __future__ import annotations

from gossip.core.store.tombstone_gc import (
    PeerCopy,
    Proof,
    away,
    judged_deleted,
    purge_bound,
)

HORIZON = 10.0


def test_a_purge_waits_for_a_proof_from_every_other_replica_and_for_age() -> None:
    proofs = {"b": Proof(1, 40, 0.0), "c": Proof(2, 25, 0.0)}
    assert purge_bound(proofs, ["b", "c"], aged_seq=30) == 25
    assert purge_bound(proofs, ["b", "c"], aged_seq=20) == 20
    assert purge_bound(proofs, ["b", "c", "d"], aged_seq=30) == 0, "d has proven nothing"
    assert purge_bound(proofs, [], aged_seq=30) == 30


def test_a_node_without_a_recent_proof_with_anyone_is_returning() -> None:
    assert not away(Proof(1, 30, 95.0), now=100.0, horizon=HORIZON)
    assert away(Proof(1, 30, 50.0), now=100.0, horizon=HORIZON)
    assert away(None, now=100.0, horizon=HORIZON), "after a restart"


def test_a_record_a_peer_held_and_no_longer_holds_was_purged_there() -> None:
    peer = PeerCopy("b", 7, 0)
    assert judged_deleted(5, 100, Proof(7, 9, 0.0), peer, returning=False) == (True, False)
    assert judged_deleted(10, 100, Proof(7, 9, 0.0), peer, returning=False) == (False, False)
    emptied = PeerCopy("b", 8, 0)  # the peer's copy started again from empty
    assert judged_deleted(5, 100, Proof(7, 9, 0.0), emptied, returning=False) == (False, False)


def test_a_returning_node_judges_records_below_the_peer_watermark_deleted() -> None:
    peer = PeerCopy("b", 7, 500)
    assert judged_deleted(5, 400, None, peer, returning=True) == (True, True)
    assert judged_deleted(5, 600, None, peer, returning=True) == (False, False), "newer: shipped"
    assert judged_deleted(5, 400, None, peer, returning=False) == (False, False), "in touch"
    assert judged_deleted(5, 400, None, PeerCopy("b", 7, 0), returning=True) == (False, False)


def test_a_returning_node_ships_its_tombstones_whatever_the_peers_watermark() -> None:
    # A delete acknowledged at `one` by a node cut off alone lives only there; the
    # others may hold the deleted value and have purged newer tombstones meanwhile.
    peer = PeerCopy("b", 7, 500)
    assert judged_deleted(5, 400, None, peer, True, tombstone=True) == (False, False)
    assert judged_deleted(5, 400, Proof(7, 9, 0.0), peer, True, tombstone=True) == (True, False)


def test_a_message_older_than_the_proof_shows_a_record_not_yet_had_not_one_deleted() -> None:
    # Found by a fault run (seed 27, roots checks by datagram): a peer paused for 14 s
    # answered a session from before it received a key, then a roots check after; read
    # in that order, the newer proof turned "not had yet" into "deleted", and three
    # replicas dropped an acknowledged write.
    proof = Proof(7, 9, 0.0, peer_seq=120)
    stale = PeerCopy("b", 7, 0, seq=110)  # built before the state the proof is about
    assert judged_deleted(5, 100, proof, stale, returning=False) == (False, False)
    later = PeerCopy("b", 7, 0, seq=120)
    assert judged_deleted(5, 100, proof, later, returning=False) == (True, False)
    older_build = PeerCopy("b", 7, 0)  # says no seq: judged as before
    assert judged_deleted(5, 100, proof, older_build, returning=False) == (True, False)

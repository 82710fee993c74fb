"""A proof is weighed only against a peer's word that is no older than the proof.

Found by a fault run with roots checks by datagram: a node's session with a new replica
got the replica's reply "I lack these records" while the replica was still empty; the
replica then received them from a third node and proved equal roots with the node by a
datagram roots check, before the node read the reply. The node took the fresh proof
("the replica held them") and the stale reply ("it lacks them") for a purge there,
removed its copies, and the removal spread: an acknowledged write was lost everywhere.
Each side now tells its storage sequence number with its roots and session messages.
"""

from __future__ import annotations

from pathlib import Path

import cbor2
import pytest

from gossip.core.store.antientropy import SyncMessage
from gossip.core.store.hlc import Timestamp
from gossip.core.store.record import Record
from gossip.core.store.syncwire import (
    RootInfo,
    SyncWireError,
    decode,
    decode_seq,
    encode,
    encode_differ,
    encode_roots,
)
from gossip.core.store.tombstone_gc import PeerCopy, Proof, judged_deleted
from gossip.runtime.store.ledger import Ledger, ScreenedReplica
from gossip.runtime.store.storage import KVStorage

WRITTEN = Record("k", b"acknowledged", Timestamp(1_000, 0, "a"))


def test_a_peers_word_older_than_the_proof_does_not_count_against_it() -> None:
    proof = Proof(7, 9, 0.0, peer_seq=40)
    assert judged_deleted(5, 100, proof, PeerCopy("b", 7, 0, 39), False) == (False, False)
    assert judged_deleted(5, 100, proof, PeerCopy("b", 7, 0, 40), False) == (True, False)
    assert judged_deleted(5, 100, proof, PeerCopy("b", 7, 0, 41), False) == (True, False)
    # Not told (an older agent on either side): the proof counts as before.
    assert judged_deleted(5, 100, proof, PeerCopy("b", 7, 0), False) == (True, False)
    assert judged_deleted(5, 100, Proof(7, 9, 0.0), PeerCopy("b", 7, 0, 1), False) == (
        True,
        False,
    )


def screen_after_a_newer_proof(peer_seq_in_reply: int) -> tuple[KVStorage, list[Record]]:
    storage = KVStorage(None, lambda key: 0)
    storage.put(WRITTEN)
    ledger = Ledger(storage, "a", horizon=10.0)
    # The replica proved equal roots (it held the record) when its sequence was at 12.
    ledger.proven(0, PeerCopy("b", 5, 0, 12), storage.seq, now=99.0)
    replica = ScreenedReplica(ledger, 0, list, lambda: 100.0)
    return storage, replica.screen([WRITTEN], PeerCopy("b", 5, 0, peer_seq_in_reply))


def test_a_reply_written_before_the_peer_received_the_record_ships_it() -> None:
    storage, shipped = screen_after_a_newer_proof(peer_seq_in_reply=3)
    assert shipped == [WRITTEN]
    assert storage.get("k") == WRITTEN


def test_a_reply_written_after_the_proof_means_the_peer_purged_the_record() -> None:
    storage, shipped = screen_after_a_newer_proof(peer_seq_in_reply=12)
    assert shipped == []
    assert storage.get("k") is None


def test_sequence_numbers_travel_in_roots_checks_and_session_messages() -> None:
    roots = {0: RootInfo((5, 1), 7, 0)}
    assert decode_seq(encode_roots("a", roots, 5, seq=33)) == 33
    assert decode_seq(encode_roots("a", roots)) is None
    assert decode_seq(encode_differ("b", [], {}, seq=(1 << 64) - 1)) == (1 << 64) - 1
    msg = SyncMessage(3, sender=PeerCopy("n", 5, 9, 77))
    assert decode(encode(msg)) == msg
    # Older agents send the copy as three fields and no sequence number.
    old = cbor2.loads(encode(msg))
    assert old["i"] == ["n", 5, 9]
    del old["q"]
    assert decode(cbor2.dumps(old)).sender == PeerCopy("n", 5, 9, None)
    for bad in (-1, 1 << 64, "7", 1.5):
        with pytest.raises(SyncWireError):
            decode_seq(cbor2.dumps({"from": "a", "roots": [], "q": bad}))
        with pytest.raises(SyncWireError):
            decode(cbor2.dumps({"p": 1, "i": ["n", 5, 9], "q": bad}))


def test_the_sequence_never_goes_back_across_a_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "kv.db")
    storage = KVStorage(path, lambda key: 0)
    storage.apply([Record("live", b"v", Timestamp(1, 0, "a"))])
    storage.apply([Record("gone", None, Timestamp(2, 0, "a"))])
    told = storage.seq
    assert storage.purge_tombstones(0, told) == 1  # the row with the greatest seq
    storage.close()
    reopened = KVStorage(path, lambda key: 0)
    assert reopened.seq == told
    reopened.apply([Record("next", b"v", Timestamp(3, 0, "a"))])
    assert reopened.seq == told + 1

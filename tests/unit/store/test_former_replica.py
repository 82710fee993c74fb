"""A former replica hands off its copy; what the current replicas purged stays purged.

Found by a fault run: a node that replicated a key while its usual replica was cut
off, and missed the delete (its disk was full), was a former replica after the heal.
The current replicas purged the tombstone among themselves; the former replica then
shipped its old value to one of them, and it spread back everywhere.
"""

from __future__ import annotations

from gossip.core.store.hlc import Timestamp
from gossip.core.store.record import Record
from gossip.core.store.tombstone_gc import PeerCopy
from gossip.runtime.store.ledger import Ledger, ScreenedReplica
from gossip.runtime.store.storage import KVStorage

OLD = Record("k", b"old", Timestamp(1_000, 0, "a"))
PURGED_DELETE = Timestamp(2_000, 0, "b")


def screened(former: bool) -> tuple[KVStorage, list[Record]]:
    storage = KVStorage(None, lambda key: 0)
    storage.put(OLD)
    ledger = Ledger(storage, "a", horizon=10.0)
    # In touch with the partition's replicas a moment ago: not returning.
    ledger.proven(0, PeerCopy("c", 5, 0), storage.seq - 1, now=99.0)
    replica = ScreenedReplica(ledger, 0, list, lambda: 100.0, lambda: former)
    peer = PeerCopy("b", 7, PURGED_DELETE.packed)  # b purged a newer tombstone
    return storage, replica.screen([OLD], peer)


def test_a_former_replica_judges_copies_older_than_the_peers_purges_deleted() -> None:
    storage, shipped = screened(former=True)
    assert shipped == []
    assert storage.get("k") is None


def test_a_current_replica_in_touch_ships_them() -> None:
    # Both sides of a healed split hold writes older than the other side's purges.
    storage, shipped = screened(former=False)
    assert shipped == [OLD]
    assert storage.get("k") == OLD


def test_a_node_back_from_a_side_without_a_majority_is_returning_until_a_filled_peer_proves() -> (
    None
):
    # Found by a fault run: two replicas cut off together kept proving equal roots to
    # each other, so neither counted as returning after the heal, and a value the
    # majority had deleted and purged came back with them.
    storage = KVStorage(None, lambda key: 0)
    ledger = Ledger(storage, "a", horizon=10.0)
    ledger.proven(0, PeerCopy("b", 5, 0), 0, now=50.0)
    assert not ledger.returning(0, now=51.0)
    ledger.lost_contact()  # the majority regained
    assert ledger.returning(0, now=51.0)
    ledger.proven(0, PeerCopy("b", 5, 0), 0, now=52.0, contact=False)  # b is pending too
    assert ledger.returning(0, now=52.0)
    ledger.proven(0, PeerCopy("c", 6, 0), 0, now=53.0)
    assert not ledger.returning(0, now=53.0)


def test_a_dropped_copy_announces_no_purges() -> None:
    # Found by a fault run: a node that had just handed off and dropped a partition
    # still announced the old copy's watermark; a returning peer judged live records
    # by it (the empty copy lacked them) and an acknowledged write was removed.
    storage = KVStorage(None, lambda key: 0)
    storage.put(Record("gone", None, PURGED_DELETE))
    storage.purge_tombstones(0, storage.seq)
    ledger = Ledger(storage, "a", horizon=10.0)
    before = ledger.copy(0)
    assert before.watermark == PURGED_DELETE.packed
    storage.drop_partition(0)
    after = ledger.copy(0)
    assert after.watermark == 0 and after.gen != before.gen

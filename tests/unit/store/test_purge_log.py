"""The purge log: what it vouches for above its floor, eviction, adoption by digest."""

from __future__ import annotations

from gossip.core.store.hlc import COUNTER_BITS, Timestamp
from gossip.core.store.purgelog import PurgeLog
from gossip.core.store.tombstone_gc import PeerCopy, judged_deleted


def ts(wall: int, node: str = "n1") -> Timestamp:
    return Timestamp(wall, 0, node)


def packed(wall: int) -> int:
    return wall << COUNTER_BITS


def test_it_knows_each_purged_key_above_the_floor_it_opened_with() -> None:
    log = PurgeLog()
    log.open(0, packed(100))  # purges up to 100 happened before this process
    log.purged(0, "old", ts(90))  # at or below the floor: known only by it
    log.purged(0, "a", ts(150))
    log.purged(0, "a", ts(120))  # an older tombstone of the same key changes nothing
    assert log.floor(0) == packed(100)
    assert log.covering(0, "old") is None
    assert log.covering(0, "a") == ts(150)
    assert log.covering(0, "b") is None
    assert log.covering(1, "a") is None  # per partition


def test_eviction_takes_the_oldest_out_and_raises_the_floor_past_them() -> None:
    log = PurgeLog(cap=3)
    log.open(0, 0)
    for wall in (10, 40, 20, 30):
        log.purged(0, f"k{wall}", ts(wall))
    assert log.floor(0) == packed(10)
    assert log.covering(0, "k10") is None
    assert [log.covering(0, f"k{w}") for w in (20, 30, 40)] == [ts(20), ts(30), ts(40)]
    log.purged(0, "late-but-old", ts(5))  # below the floor now: the floor covers it
    assert log.covering(0, "late-but-old") is None
    assert len(log) == 3


def test_adopting_a_peer_with_the_same_entries_keeps_the_floor() -> None:
    mine, theirs = PurgeLog(), PurgeLog()
    for log in (mine, theirs):
        log.open(0, 0)
        log.purged(0, "a", ts(10))
        log.purged(0, "b", ts(20))
    mine.purged(0, "c", ts(30))  # purged here after the peer's message: above its watermark
    mine.adopt(0, theirs.floor(0), theirs.digest(0), packed(20))
    assert mine.floor(0) == 0
    assert mine.covering(0, "a") == ts(10)


def test_adopting_a_peer_whose_entries_differ_raises_the_floor_to_its_watermark() -> None:
    mine, theirs = PurgeLog(), PurgeLog()
    mine.open(0, 0)
    theirs.open(0, 0)
    theirs.purged(0, "gone-elsewhere", ts(25))  # never purged here: this copy never held it
    mine.purged(0, "b", ts(20))
    mine.adopt(0, theirs.floor(0), theirs.digest(0), packed(25))
    assert mine.floor(0) == packed(25)
    assert mine.covering(0, "b") is None  # below the floor now


def test_a_peer_of_an_older_build_is_adopted_up_to_its_watermark() -> None:
    mine = PurgeLog()
    mine.open(0, 0)
    mine.adopt(0, packed(40), 0, packed(40))  # no floor sent: the floor is the watermark
    assert mine.floor(0) == packed(40)


def test_a_dropped_copy_starts_from_nothing() -> None:
    log = PurgeLog()
    log.open(0, packed(50))
    log.purged(0, "a", ts(60))
    log.drop(0)
    assert (log.floor(0), log.covering(0, "a"), len(log)) == (0, None, 0)


def test_rule_2_judges_by_the_floor_and_ships_what_is_above_it() -> None:
    peer = PeerCopy("p", gen=1, watermark=packed(100), seq=5, floor=packed(60), digest=7)
    older_build = PeerCopy("p", gen=1, watermark=packed(100), seq=5)
    for version, deleted in ((packed(50), True), (packed(80), False), (packed(120), False)):
        assert judged_deleted(9, version, None, peer, returning=True) == (deleted, deleted)
    assert judged_deleted(9, packed(80), None, older_build, returning=True) == (True, True)
    assert judged_deleted(9, packed(50), None, peer, returning=False) == (False, False)


def test_the_kept_digest_is_the_digest_of_the_entries_held() -> None:
    churned, fresh = PurgeLog(cap=4), PurgeLog(cap=4)
    churned.open(0, 0)
    for wall in (10, 50, 20, 60, 30, 70):
        churned.purged(0, f"k{wall}", ts(wall))
    churned.purged(0, "k50", ts(55))  # a newer tombstone of a key held
    fresh.open(0, churned.floor(0))
    for wall, key in ((30, "k30"), (55, "k50"), (60, "k60"), (70, "k70")):
        fresh.purged(0, key, ts(wall))
    assert churned.digest(0) == fresh.digest(0) != 0
    # a range that leaves entries out is computed, not taken from the kept digest
    assert churned.digest(0, upto=packed(60)) != churned.digest(0)

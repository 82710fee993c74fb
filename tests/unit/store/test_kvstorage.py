"""sqlite storage: merge on write, durable reopen, trees in step with rows, GC."""

import os
import signal
import sqlite3
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from gossip.core.store.antientropy import SyncSession, answer
from gossip.core.store.hlc import Timestamp
from gossip.core.store.memory_replica import MemoryReplica
from gossip.core.store.merkle import MerkleTree
from gossip.core.store.record import Record, key_hash
from gossip.runtime.store.storage import KVStorage, StorageError
from gossip.runtime.store.storedreplica import StoredReplica
from gossip.testing.torture.disk import FULL, Disk


def part(key: str) -> int:
    return zlib.crc32(key.encode()) % 4


def ts(wall: int, node: str = "a") -> Timestamp:
    return Timestamp(wall, 0, node)


def scratch_root(storage: KVStorage, p: int) -> tuple[int, int]:
    entries = storage.entries(p, 0, (1 << 64) - 1)
    return MerkleTree.from_entries(entries).root


def test_a_write_wins_only_when_it_is_later(tmp_path: Path) -> None:
    s = KVStorage(tmp_path / "kv.db", part)
    assert s.put(Record("k", b"one", ts(10)))
    assert not s.put(Record("k", b"older", ts(5)))
    assert s.put(Record("k", None, ts(11, "b")))
    assert s.get("k") == Record("k", None, ts(11, "b"))
    assert s.get("missing") is None


def test_reopening_keeps_records_and_rebuilds_the_same_trees(tmp_path: Path) -> None:
    s = KVStorage(tmp_path / "kv.db", part)
    s.apply([Record(f"k{i}", b"v%d" % i, ts(i)) for i in range(300)])
    s.put(Record("k7", None, ts(1000)))
    roots = {p: s.tree(p).root for p in range(4)}
    s.close()
    again = KVStorage(tmp_path / "kv.db", part)
    assert {p: again.tree(p).root for p in range(4)} == roots
    assert again.get("k7") == Record("k7", None, ts(1000))
    assert again.count() == 300
    assert again.max_version() == (1000, 0)


def test_incremental_trees_equal_scratch_trees_after_mixed_changes(tmp_path: Path) -> None:
    s = KVStorage(None, part)
    s.apply([Record(f"k{i}", b"v", ts(i)) for i in range(200)])
    s.apply([Record(f"k{i}", None, ts(500 + i)) for i in range(0, 200, 3)])
    for p in range(4):
        s.purge_tombstones(p, s.seq - 20)
    s.drop_partition(2)
    for p in range(4):
        assert s.tree(p).root == scratch_root(s, p)


def test_tombstone_gc_removes_only_tombstones_stored_up_to_the_bound() -> None:
    s = KVStorage(None, lambda key: 0)
    s.apply([Record("first", None, ts(100)), Record("live", b"v", ts(1))])
    bound = s.seq
    s.apply([Record("later", None, ts(10))])
    assert s.purge_tombstones(0, bound) == 1
    assert s.get("first") is None
    assert s.get("later") is not None and s.get("live") is not None
    assert s.watermark(0) == ts(100).packed, "the watermark is the greatest version purged"
    assert s.tree(0).root == scratch_root(s, 0)


def test_a_dropped_partition_gets_a_new_generation() -> None:
    s = KVStorage(None, lambda key: 0)
    s.apply([Record("k", b"v", ts(1))])
    before = s.generation(0)
    assert s.generation(0) == before
    s.drop_partition(0)
    assert s.generation(0) != before


def test_a_peer_cannot_write_into_another_partition_through_sync() -> None:
    s = KVStorage(None, part)
    stray = next(f"x{i}" for i in range(100) if part(f"x{i}") != 0)
    home = next(f"x{i}" for i in range(100) if part(f"x{i}") == 0)
    assert StoredReplica(s, 0).apply([Record(stray, b"v", ts(1)), Record(home, b"v", ts(1))]) == 1
    assert s.get(stray) is None


def test_prefix_listing_is_ordered_bounded_and_pages() -> None:
    s = KVStorage(None, part)
    s.apply([Record(k, b"v", ts(1)) for k in ("app/b", "app/a", "apq", "ap", "app/c", "b")])
    assert [r.key for r in s.scan("app/", 10)] == ["app/a", "app/b", "app/c"]
    assert [r.key for r in s.scan("app/", 2)] == ["app/a", "app/b"]
    assert [r.key for r in s.scan("app/", 10, after="app/b")] == ["app/c"]
    assert len(s.scan("", 100)) == 6


def test_prefix_listing_finds_keys_with_a_nul_and_at_the_top_of_unicode() -> None:
    top = "\U0010ffff"
    keys = ("a\x00b", "a\x00", "a", "a\x01", f"x{top}", f"x{top}{top}z", "y", "\ud7ffq", "\ue000")
    s = KVStorage(None, part)
    s.apply([Record(k, b"v", ts(1)) for k in keys])
    assert [r.key for r in s.scan("a\x00", 10)] == ["a\x00", "a\x00b"]
    assert [r.key for r in s.scan(f"x{top}", 10)] == [f"x{top}", f"x{top}{top}z"]
    assert [r.key for r in s.scan(top, 10)] == []
    assert [r.key for r in s.scan("\ud7ff", 10)] == ["\ud7ffq"]


def test_a_stored_replica_syncs_with_a_memory_replica() -> None:
    s = KVStorage(None, lambda key: 0)
    s.apply([Record(f"k{i}", b"v", ts(i)) for i in range(500)])
    mem = MemoryReplica()
    mem.load(Record(f"k{i}", b"w", ts(i + 1, "b")) for i in range(250, 700))
    session = SyncSession(StoredReplica(s, 0), 0)
    request: bytes | None = session.start()
    while request is not None:
        response, _ = answer(lambda p: mem, request)
        request = session.receive(response)
    assert session.stats.complete
    assert s.tree(0).root == mem.tree.root
    assert {r.key: r for r in s.scan("", 1000)} == mem.items()


WRITER = """
import sys, zlib
from pathlib import Path
from gossip.core.store.hlc import Timestamp
from gossip.core.store.record import Record
from gossip.runtime.store.storage import KVStorage
s = KVStorage(Path(sys.argv[1]), lambda k: zlib.crc32(k.encode()) % 4)
i = 0
while True:
    s.put(Record(f"key-{i}", b"x" * 100, Timestamp(i + 1, 0, "w")))
    print(i, flush=True)  # the acknowledgement
    i += 1
"""


@pytest.mark.e2e
def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "kv.db"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[3]))
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    acked = -1
    try:
        for line in proc.stdout:
            acked = int(line)
            if acked >= 300:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()
    s = KVStorage(db, part)
    assert acked >= 300
    assert all(s.get(f"key-{i}") is not None for i in range(acked + 1))
    for p in range(4):
        assert s.tree(p).root == scratch_root(s, p)


OLD_LAYOUT = """
CREATE TABLE kv (
    part INTEGER NOT NULL, key TEXT NOT NULL, khash INTEGER NOT NULL,
    version INTEGER NOT NULL, tag INTEGER NOT NULL, fp INTEGER NOT NULL, node TEXT NOT NULL,
    value BLOB,
    PRIMARY KEY (part, key)) WITHOUT ROWID;
CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


def test_a_database_of_the_previous_layout_gets_full_entries_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "kv.db"
    db = sqlite3.connect(path)
    db.executescript(OLD_LAYOUT)
    stored_hash = key_hash("old") - (1 << 63)  # hashes are stored shifted into sqlite's range
    db.execute("INSERT INTO kv VALUES (0, 'old', ?, 655360, 7, 9, 'a', X'76')", (stored_hash,))
    db.commit()
    db.close()
    s = KVStorage(path, lambda key: 0)
    old = Record("old", b"v", Timestamp(10, 0, "a"))
    assert s.get("old") == old
    assert s.entries(0, 0, (1 << 64) - 1) == [old.entry()]
    assert s.tree(0).root == MerkleTree.from_entries([old.entry()]).root
    s.put(Record("new", b"w", ts(20)))
    assert s.seqs(0, ["old", "new"]) == {"old": 0, "new": 1}
    s.close()


def test_a_store_that_cannot_open_its_database_says_why(tmp_path: Path) -> None:
    disk = Disk()
    disk.failure = FULL  # a new database must be written before it can be used
    with pytest.raises(StorageError) as info:
        KVStorage(tmp_path / "kv.db", lambda key: 0, connect=disk.connect)
    assert info.value.reason == "no_space"
    disk.failure = None  # space is back: the same directory opens
    KVStorage(tmp_path / "kv.db", lambda key: 0, connect=disk.connect).close()


def test_the_sequence_number_never_goes_back_across_a_restart(tmp_path: Path) -> None:
    # Peers order their proofs and this node's messages by it (tombstone_gc, rule 1).
    path = tmp_path / "kv.sqlite"
    s = KVStorage(path, part)
    s.put(Record("a", b"1", ts(1)))
    s.put(Record("b", None, ts(2)))  # a tombstone, the newest row
    newest = s.seq
    assert s.purge_tombstones(part("b"), newest) == 1
    s.close()
    again = KVStorage(path, part)
    assert again.seq == newest
    again.put(Record("c", b"3", ts(3)))
    assert again.seq == newest + 1
    again.close()

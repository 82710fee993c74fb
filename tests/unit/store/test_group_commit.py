"""A group commit stores its writes together when its block ends, or none of
them (the Merkle trees stay equal to the database either way)."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from gossip.core.store.hlc import Timestamp
from gossip.core.store.record import Record
from gossip.runtime.store.storage import KVStorage, StorageError
from gossip.testing.torture.disk import FULL, IO_ERROR, Disk


def _record(key: str, wall: int = 10) -> Record:
    return Record(key, b"v", Timestamp(wall, 0, "a"))


def _rows(path: Path) -> int:
    with sqlite3.connect(path) as other:
        return int(other.execute("SELECT count(*) FROM kv").fetchone()[0])


def test_a_groups_writes_are_committed_only_when_the_group_ends(tmp_path: Path) -> None:
    s = KVStorage(tmp_path / "kv.db", lambda key: 0)
    with s.group():
        assert s.put(_record("a")) and s.put(_record("b"))
        assert s.get("a") is not None  # the group sees its own writes
        assert _rows(tmp_path / "kv.db") == 0  # nobody else does yet
    assert _rows(tmp_path / "kv.db") == 2
    s.close()


def test_a_later_write_in_the_same_group_wins_as_it_would_alone() -> None:
    s = KVStorage(None, lambda key: 0)
    with s.group():
        assert s.put(_record("k", wall=20))
        assert not s.put(_record("k", wall=10))
    got = s.get("k")
    assert got is not None and got.version.wall == 20


@pytest.mark.parametrize("at", ["commit", "write"])
def test_a_failed_group_stores_nothing_and_keeps_the_trees(tmp_path: Path, at: str) -> None:
    disk = Disk()
    s = KVStorage(tmp_path / "kv.db", lambda key: 0, connect=disk.connect)
    s.put(_record("before"))
    root = s.tree(0).root
    disk.failure, disk.at = (FULL if at == "commit" else IO_ERROR), at
    with pytest.raises(StorageError), s.group():
        for key in ("a", "b"):
            # A write that failed inside still fails the whole group.
            with contextlib.suppress(StorageError):
                s.put(_record(key))
    disk.failure = None
    assert s.get("a") is None and s.get("b") is None
    assert s.tree(0).root == root
    assert s.put(_record("after"))  # the store goes on working
    s.close()

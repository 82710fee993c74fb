"""Durable key-value storage: sqlite in WAL mode under --data-dir.

Rules: every acknowledged write is committed before the call returns (or, in
a group, before the group's block ends, and is acknowledged only then), so it
survives kill -9 of the process (WAL with synchronous=NORMAL: the data is in
the OS before we acknowledge; `synchronous="FULL"` also survives power loss,
at a cost in writes per second). One row per key holds the winning record
and its anti-entropy entry (key hash, packed version, tag), indexed by
(partition, key hash) so a tree node's entries are one range read.
The Merkle trees live in memory, are built by one scan when the store opens,
and afterwards change only by delta on each write. With a fingerprint key the
trees sum keyed fingerprints (gossip.core.store.fingerprint) while the rows
keep the plain ones, so a new key only means rebuilding the trees.
Every stored row gets the next local sequence number (`seq`): the order in which
this node came to hold its rows, which tombstone GC compares with the points
at which peers were proven to hold the same data (gossip.runtime.store.ledger).
Per partition the meta table keeps the purge watermark (the greatest version of
a tombstone purged there) and the data generation (a random id, new whenever
this node's copy of the partition starts from empty); one row per known member
keeps the store's majority rule across restarts. The purge log (which keys the
latest purges removed, gossip.core.store.purgelog) lives in memory only: after a
restart its floor is the watermark.
Calls block briefly; the store service runs them on the trio thread, which
keeps one writer and needs no locks.
A failed write (disk full, I/O error) rolls the transaction back, undoes the
trees' deltas so they stay equal to the database, and raises StorageError
naming the reason (no_space or io_error); the next write simply tries again.
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from gossip.core.store.fingerprint import Fingerprinter
from gossip.core.store.hlc import COUNTER_BITS, Timestamp
from gossip.core.store.merkle import DEFAULT_STORED_DEPTH, MerkleTree
from gossip.core.store.purgelog import PurgeLog
from gossip.core.store.record import Entry, Record, wins

_SIGN = 1 << 63
_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    part INTEGER NOT NULL, key TEXT NOT NULL, khash INTEGER NOT NULL,
    version INTEGER NOT NULL, tag INTEGER NOT NULL, fp INTEGER NOT NULL, node TEXT NOT NULL,
    value BLOB, seq INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (part, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_hash ON kv (part, khash);
CREATE INDEX IF NOT EXISTS kv_key ON kv (key);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
_COLUMNS = "key, value, version, node"
_ENTRY_COLUMNS = "khash, version, tag, fp"
SCHEMA_VERSION = 2
SEQ_FLOOR = "seq_floor"
"""Meta: the sequence number given out last before rows were removed."""
"""1: 32-bit tags and no seq column; 2: 64-bit tags (stored shifted like the hashes), seq."""
WATERMARK = "watermark:{}"
GENERATION = "generation:{}"
MEMBER = "member:"


def _to_row(part: int, r: Record, e: Entry, seq: int) -> tuple[object, ...]:
    return (
        part,
        r.key,
        e.khash - _SIGN,
        e.version,
        e.tag - _SIGN,
        e.fp - _SIGN,
        r.version.node,
        r.value,
        seq,
    )


def _entry(khash: int, version: int, tag: int, fp: int) -> Entry:
    return Entry(khash + _SIGN, version, tag + _SIGN, fp + _SIGN)


def _record(key: str, value: bytes | None, version: int, node: str) -> Record:
    ts = Timestamp(version >> COUNTER_BITS, version & ((1 << COUNTER_BITS) - 1), node)
    return Record(key, value, ts)


def _upper_bound(prefix: str) -> str | None:
    """The least string above every key that starts with `prefix`; None when none is.

    UTF-8 order is code-point order, so [prefix, bound) holds exactly the keys
    with that prefix. Found by comparison alone because sqlite's substr() and
    length() stop at a NUL inside a key.
    """
    head = prefix
    while head:
        nxt = ord(head[-1]) + 1
        if nxt == 0xD800:
            nxt = 0xE000  # surrogates cannot be stored as UTF-8
        if nxt <= 0x10FFFF:
            return head[:-1] + chr(nxt)
        head = head[:-1]
    return None


SQLITE_FULL = 13


class StorageError(Exception):
    """A write the database refused; `reason` is no_space or io_error."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason

    @classmethod
    def of(cls, exc: sqlite3.Error) -> StorageError:
        full = getattr(exc, "sqlite_errorcode", None) == SQLITE_FULL or "full" in str(exc)
        return cls("no_space" if full else "io_error", str(exc)[:200])


TreeUndo = list[tuple[int, Entry | None, Entry | None]]
"""(partition, old, new) tree updates of one transaction, to undo on failure."""


def _connect(path: str) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


class KVStorage:
    def __init__(
        self,
        path: Path | None,
        partition_of: Callable[[str], int],
        *,
        stored_depth: int = DEFAULT_STORED_DEPTH,
        synchronous: str = "NORMAL",
        connect: Callable[[str], sqlite3.Connection] | None = None,
        fingerprint_key: bytes | None = None,
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError("synchronous must be NORMAL or FULL")
        self.partition_of = partition_of
        self._fp = Fingerprinter(fingerprint_key)
        self.stored_depth = stored_depth
        # `connect` is the disk seam: fault runs pass one whose connection fails on demand.
        self._db = (connect or _connect)(":memory:" if path is None else str(path))
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.executescript(_SCHEMA)
            self._migrate()
        except sqlite3.Error as exc:  # a full disk, say: the store cannot open
            self._db.close()
            raise StorageError.of(exc) from exc
        row = self._db.execute("SELECT max(seq) FROM kv").fetchone()
        self.seq = max(int(row[0] or 0), self.get_meta(SEQ_FLOOR) or 0)
        """The greatest sequence number given out; rows stored from now on get higher ones.
        It never goes back, not even across a restart after the newest rows were removed
        (peers order their proofs and this node's messages by it: tombstone_gc)."""
        self.trees: dict[int, MerkleTree] = {}
        self._group: TreeUndo | None = None
        """The tree deltas of the open group commit (None: each write commits alone)."""
        self._group_error: StorageError | None = None
        self._reload_trees()
        self._marks: dict[int, int] = {}
        self.purges = PurgeLog()
        """Which keys' tombstones were purged lately, per partition (in memory only)."""
        self._gens: dict[int, int] = {}

    def _migrate(self) -> None:
        """Bring a database written by an older schema up to SCHEMA_VERSION."""
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version >= SCHEMA_VERSION:
            return
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(kv)")}
        self._db.execute("BEGIN IMMEDIATE")
        if "seq" not in columns:
            self._db.execute("ALTER TABLE kv ADD COLUMN seq INTEGER NOT NULL DEFAULT 0")
        rows = self._db.execute(f"SELECT part, {_COLUMNS} FROM kv").fetchall()
        for part, *fields in rows:
            r = _record(*fields)
            e = r.entry()
            self._db.execute(
                "UPDATE kv SET tag = ?, fp = ? WHERE part = ? AND key = ?",
                (e.tag - _SIGN, e.fp - _SIGN, part, r.key),
            )
        self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    @property
    def fingerprint_key(self) -> bytes | None:
        return self._fp.key

    def rekey(self, fingerprint_key: bytes | None) -> None:
        """Sum keyed fingerprints with a new key from now on (one scan)."""
        self._fp = Fingerprinter(fingerprint_key)
        self._reload_trees()

    def _tree_entry(self, khash: int, version: int, tag: int, fp: int) -> Entry:
        """A stored row's entry as the trees see it (keyed when there is a key)."""
        return self._fp.keyed(_entry(khash, version, tag, fp))

    def tree(self, part: int) -> MerkleTree:
        tree = self.trees.get(part)
        if tree is None:
            tree = self.trees[part] = MerkleTree(self.stored_depth)
        return tree

    def root(self, part: int) -> tuple[int, int]:
        """A partition's root summary, without allocating a tree for an empty one."""
        tree = self.trees.get(part)
        return (0, 0) if tree is None else tree.root

    # ---- reads -------------------------------------------------------------

    def get(self, key: str) -> Record | None:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM kv WHERE part = ? AND key = ?", (self.partition_of(key), key)
        ).fetchone()
        return None if row is None else _record(*row)

    def scan(self, prefix: str, limit: int, *, after: str = "") -> list[Record]:
        """Records (tombstones included) whose key starts with `prefix`, in key order."""
        bound = _upper_bound(prefix)
        below = "" if bound is None else " AND key < :bound"
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM kv WHERE key >= :prefix AND key > :after{below}"
            " ORDER BY key LIMIT :limit",
            {"prefix": prefix, "after": after, "bound": bound, "limit": limit},
        )
        return [_record(*row) for row in rows]

    def entries(self, part: int, lo: int, hi: int, limit: int | None = None) -> list[Entry]:
        rows = self._db.execute(
            f"SELECT {_ENTRY_COLUMNS} FROM kv WHERE part = ? AND khash BETWEEN ? AND ?"
            " ORDER BY khash, version, tag LIMIT ?",
            (part, lo - _SIGN, hi - _SIGN, -1 if limit is None else limit),
        )
        return [self._tree_entry(*row) for row in rows]

    def records_by_hash(self, part: int, khashes: Sequence[int]) -> list[Record]:
        out: list[Record] = []
        for khash in khashes:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM kv WHERE part = ? AND khash = ?", (part, khash - _SIGN)
            )
            out.extend(_record(*row) for row in rows)
        return out

    def partitions(self) -> list[int]:
        return sorted(p for p, t in self.trees.items() if t.count)

    def count(self, part: int | None = None) -> int:
        if part is None:
            return sum(t.count for t in self.trees.values())
        tree = self.trees.get(part)
        return 0 if tree is None else tree.count

    # ---- writes ------------------------------------------------------------

    def put(self, record: Record) -> bool:
        """Merge one record and commit; True if it won (changed the store)."""
        return self.apply([record]) == 1

    @contextlib.contextmanager
    def group(self) -> Iterator[None]:
        """Writes made in the block commit together when it ends, in one transaction:
        all or none (StorageError). The caller must not await inside it (no other
        write may join) and must acknowledge nothing written in it before it ends."""
        undo: TreeUndo = []
        self._group_error = None
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._group = undo
            yield
            self._group = None
            if self._group_error is not None:
                raise self._group_error
            self._db.execute("COMMIT")
        except BaseException as exc:
            self._group = None
            self._abort(undo)
            if isinstance(exc, sqlite3.Error):
                raise StorageError.of(exc) from exc
            raise

    def apply(self, records: Iterable[Record], *, part: int | None = None) -> int:
        """Merge records in one transaction (or in the open group's). With `part`,
        records of other partitions are ignored (a peer may only repair the
        partition it syncs)."""
        if self._group is not None:
            return self._apply_in_group(self._group, records, part)
        changed = 0
        undo: TreeUndo = []
        try:
            self._db.execute("BEGIN IMMEDIATE")
            for r in records:
                p = self.partition_of(r.key)
                if part is not None and p != part:
                    continue
                changed += self._merge_one(p, r, undo)
            self._db.execute("COMMIT")
        except BaseException as exc:
            self._abort(undo)
            if isinstance(exc, sqlite3.Error):
                raise StorageError.of(exc) from exc
            raise
        return changed

    def _apply_in_group(self, undo: TreeUndo, records: Iterable[Record], part: int | None) -> int:
        if self._group_error is not None:
            raise self._group_error  # the group will roll back: nothing more joins it
        changed = 0
        try:
            for r in records:
                p = self.partition_of(r.key)
                if part is None or p == part:
                    changed += self._merge_one(p, r, undo)
        except sqlite3.Error as exc:
            self._group_error = StorageError.of(exc)
            raise self._group_error from exc
        return changed

    def _abort(self, undo: TreeUndo) -> None:
        """Roll back a failed transaction (sqlite may have done so already) and
        undo its tree deltas; reload the trees if the rollback itself failed."""
        try:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
        except sqlite3.Error:
            with contextlib.suppress(sqlite3.Error):
                self._reload_trees()
            return
        for part, old, new in reversed(undo):
            self.tree(part).update(new, old)

    def _merge_one(self, part: int, r: Record, undo: TreeUndo) -> int:
        row = self._db.execute(
            f"SELECT {_COLUMNS}, {_ENTRY_COLUMNS} FROM kv WHERE part = ? AND key = ?",
            (part, r.key),
        ).fetchone()
        current = None if row is None else _record(*row[:4])
        if not wins(r, current):
            return 0
        plain = r.entry()
        self.seq += 1
        self._db.execute(
            "INSERT OR REPLACE INTO kv VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            _to_row(part, r, plain, self.seq),
        )
        new = self._fp.keyed(plain)
        old = None if row is None else self._tree_entry(*row[4:])
        self.tree(part).update(old, new)
        undo.append((part, old, new))
        return 1

    def _reload_trees(self) -> None:
        """Rebuild the in-memory trees by one scan (on open, or after a failed write)."""
        self.trees = {}
        for part, *row in self._db.execute(f"SELECT part, {_ENTRY_COLUMNS} FROM kv"):
            self.tree(part).update(None, self._tree_entry(*row))

    def _delete_where(self, where: str, args: tuple[object, ...]) -> int:
        """Remove rows entirely (no tombstone), keeping the trees in step."""
        undo: TreeUndo = []
        try:
            self._db.execute("BEGIN IMMEDIATE")
            rows = self._db.execute(
                f"SELECT part, key, {_ENTRY_COLUMNS} FROM kv WHERE {where}", args
            ).fetchall()
            for part, key, *entry in rows:
                self._db.execute("DELETE FROM kv WHERE part = ? AND key = ?", (part, key))
                old = self._tree_entry(*entry)
                self.tree(part).update(old, None)
                undo.append((part, old, None))
            if rows:  # the removed rows may have held the greatest seq
                self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (SEQ_FLOOR, self.seq))
            self._db.execute("COMMIT")
        except BaseException as exc:
            self._abort(undo)
            if isinstance(exc, sqlite3.Error):
                raise StorageError.of(exc) from exc
            raise
        return len(rows)

    def purge_tombstones(self, part: int, up_to_seq: int) -> int:
        """Garbage-collect the partition's tombstones stored at or before `up_to_seq`,
        raising its purge watermark to the greatest version purged."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM kv WHERE part = ? AND value IS NULL AND seq <= ?",
            (part, up_to_seq),
        ).fetchall()
        if not rows:
            return 0
        self.note_purged(part, [_record(*row) for row in rows])
        return self._delete_where("part = ? AND value IS NULL AND seq <= ?", (part, up_to_seq))

    def note_purged(self, part: int, tombstones: Iterable[Record]) -> None:
        """These tombstones leave this copy as purged: the watermark and the purge
        log take them in (before they are removed)."""
        self.watermark(part)  # the log starts from the watermark this process found
        newest = 0
        for r in tombstones:
            self.purges.purged(part, r.key, r.version)
            newest = max(newest, r.version.packed)
        self.raise_watermark(part, newest)  # one meta write, not one per tombstone

    def adopt_purges(self, part: int, floor: int, digest: int, watermark: int) -> None:
        """This copy proved equal to a peer's: it takes on the peer's purges."""
        self.watermark(part)
        self.purges.adopt(part, floor, digest, watermark)
        self.raise_watermark(part, watermark)

    def purge_floor(self, part: int) -> int:
        """Up to which version this copy knows its purges only by the watermark."""
        self.watermark(part)
        return self.purges.floor(part)

    def remove(self, part: int, keys: Sequence[str]) -> int:
        """Remove these keys' rows outright (records judged deleted by a purge elsewhere)."""
        n = 0
        for key in keys:
            n += self._delete_where("part = ? AND key = ?", (part, key))
        return n

    def seqs(self, part: int, keys: Sequence[str]) -> dict[str, int]:
        """The sequence number of each listed key's row (missing keys are left out)."""
        out: dict[str, int] = {}
        for key in keys:
            row = self._db.execute(
                "SELECT seq FROM kv WHERE part = ? AND key = ?", (part, key)
            ).fetchone()
            if row is not None:
                out[key] = int(row[0])
        return out

    def drop_partition(self, part: int) -> int:
        """Drop this node's copy of `part`. What is left is a new, empty copy: a new
        generation, and no purge behind it (watermark 0), so no peer judges its
        records by what the dropped copy had purged."""
        n = self._delete_where("part = ?", (part,))
        self.trees.pop(part, None)
        self.new_generation(part)
        try:
            self._db.execute("DELETE FROM meta WHERE name = ?", (WATERMARK.format(part),))
        except sqlite3.Error as exc:
            raise StorageError.of(exc) from exc
        self._marks[part] = 0
        self.purges.drop(part)
        return n

    # ---- small persistent facts ----------------------------------------------

    def get_meta(self, name: str) -> int | None:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else int(row[0])

    def set_meta(self, name: str, value: int) -> None:
        try:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, value))
        except sqlite3.Error as exc:
            raise StorageError.of(exc) from exc

    def watermark(self, part: int) -> int:
        """The greatest packed version of a tombstone purged in `part` (0: none)."""
        mark = self._marks.get(part)
        if mark is None:
            mark = self._marks[part] = self.get_meta(WATERMARK.format(part)) or 0
            self.purges.open(part, mark)
        return mark

    def raise_watermark(self, part: int, version: int) -> None:
        if version > self.watermark(part):
            self.set_meta(WATERMARK.format(part), version)
            self._marks[part] = version

    def generation(self, part: int) -> int:
        """A random id of this node's copy of `part`; a new one after it was dropped
        (or the database was lost), so peers' proofs about the old copy no longer apply."""
        gen = self._gens.get(part)
        if gen is None:
            name = GENERATION.format(part)
            gen = self.get_meta(name)
            if gen is None:
                gen = secrets.randbits(62) + 1
                self.set_meta(name, gen)
            self._gens[part] = gen
        return gen

    def new_generation(self, part: int) -> None:
        """Forget this copy's generation: the next `generation(part)` is a new one."""
        try:
            self._db.execute("DELETE FROM meta WHERE name = ?", (GENERATION.format(part),))
        except sqlite3.Error as exc:
            raise StorageError.of(exc) from exc
        self._gens.pop(part, None)

    def known_members(self) -> set[str]:
        """The members this node has known (gossip.core.store.majority), as stored."""
        rows = self._db.execute("SELECT name FROM meta WHERE name LIKE 'member:%'").fetchall()
        return {str(r[0])[len(MEMBER) :] for r in rows}

    def remember_members(self, added: Iterable[str], removed: Iterable[str]) -> None:
        try:
            self._db.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, 1)", [(MEMBER + n,) for n in added]
            )
            gone = [(MEMBER + n,) for n in removed]
            self._db.executemany("DELETE FROM meta WHERE name = ?", gone)
        except sqlite3.Error as exc:
            raise StorageError.of(exc) from exc

    def max_version(self) -> tuple[int, int]:
        """The greatest (wall, counter) stored: a restarted clock starts past it."""
        row = self._db.execute("SELECT max(version) FROM kv").fetchone()
        v = int(row[0] or 0)
        return v >> COUNTER_BITS, v & ((1 << COUNTER_BITS) - 1)

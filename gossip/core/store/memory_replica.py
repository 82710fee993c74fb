"""An in-memory replica of one partition: the reference `Replica` for tests,
the simulator and the benchmark.

Rules: records merge by last-writer-wins (`kvrecord.merge`); every change
updates the Merkle tree by delta; entries are indexed by tree bucket (the
deepest stored level) so range reads touch only the buckets they cover.
"""

from __future__ import annotations

import copy
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from operator import attrgetter

from gossip.core.store.merkle import DEFAULT_STORED_DEPTH, MerkleTree, prefix_of
from gossip.core.store.record import Entry, Record, wins
from gossip.core.store.tombstone_gc import PeerCopy

_khash = attrgetter("khash")


class MemoryReplica:
    def __init__(self, stored_depth: int = DEFAULT_STORED_DEPTH) -> None:
        self._tree = MerkleTree(stored_depth)
        self._records: dict[str, Record] = {}
        self._entries: dict[str, Entry] = {}
        self._buckets: list[dict[int, list[str]]] = [{} for _ in range(16**stored_depth)]
        self._sorted: list[list[Entry] | None] = [None] * len(self._buckets)
        """Per bucket, its entries sorted by key hash; rebuilt on the first read after a write."""

    @property
    def tree(self) -> MerkleTree:
        return self._tree

    def __len__(self) -> int:
        return len(self._records)

    def get(self, key: str) -> Record | None:
        return self._records.get(key)

    def items(self) -> dict[str, Record]:
        return dict(self._records)

    def put(self, record: Record) -> bool:
        """Merge one record in; True if it changed the replica."""
        cur = self._records.get(record.key)
        if not wins(record, cur):
            return False
        new = record.entry()
        old = self._entries.get(record.key)
        self._records[record.key] = record
        self._entries[record.key] = new
        b = prefix_of(new.khash, self._tree.stored_depth)
        self._sorted[b] = None
        if old is None:
            self._buckets[b].setdefault(new.khash, []).append(record.key)
        self._tree.update(old, new)
        return True

    def remove(self, key: str) -> None:
        """Forget a key entirely (tombstone garbage collection)."""
        if key not in self._records:
            return
        del self._records[key]
        old = self._entries.pop(key)
        b = prefix_of(old.khash, self._tree.stored_depth)
        self._sorted[b] = None
        bucket = self._buckets[b]
        keys = bucket[old.khash]
        keys.remove(key)
        if not keys:
            del bucket[old.khash]
        self._tree.update(old, None)

    def apply(self, records: Sequence[Record], judged: int | None = None) -> int:
        return sum(self.put(r) for r in records)

    def screen(self, records: Sequence[Record], peer: PeerCopy | None) -> list[Record]:
        """Everything may be sent: this reference replica keeps no GC state."""
        return list(records)

    def judging(self, peer: PeerCopy | None) -> int | None:
        return None

    def load(self, records: Iterable[Record]) -> None:
        for r in records:
            self.put(r)

    def entries(self, lo: int, hi: int, limit: int | None = None) -> list[Entry]:
        depth = self._tree.stored_depth
        out: list[Entry] = []
        for b in range(prefix_of(lo, depth), prefix_of(hi, depth) + 1):
            ordered = self._sorted[b]
            if ordered is None:
                ordered = sorted(
                    self._entries[k] for keys in self._buckets[b].values() for k in keys
                )
                self._sorted[b] = ordered
            start = bisect_left(ordered, lo, key=_khash)
            out.extend(ordered[start : bisect_right(ordered, hi, key=_khash)])
            if limit is not None and len(out) >= limit:
                return out[:limit]
        return out

    def records(self, khashes: Sequence[int]) -> list[Record]:
        depth = self._tree.stored_depth
        out: list[Record] = []
        for khash in khashes:
            for key in self._buckets[prefix_of(khash, depth)].get(khash, ()):
                out.append(self._records[key])
        return out

    def clone(self) -> MemoryReplica:
        """An independent copy (records are immutable and shared)."""
        other = MemoryReplica.__new__(MemoryReplica)
        other._tree = copy.deepcopy(self._tree)
        other._records = dict(self._records)
        other._entries = dict(self._entries)
        other._buckets = [{h: list(ks) for h, ks in b.items()} for b in self._buckets]
        other._sorted = list(self._sorted)  # the lists are never mutated, only replaced
        return other

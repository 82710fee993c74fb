"""A per-partition Merkle tree over key-hash prefixes, kept up to date on every write.

Rules: a node at `level` covers the 64-bit key hashes whose top 4*level bits
equal its `prefix`; the root is level 0 and every node has 16 children. A
node's fingerprint is the sum (mod 2**64) of its entries' fingerprints and it
also counts its entries, so a write changes one path by a delta: O(depth),
never a rescan. The sum makes the tree independent of insertion order, which
is why the incrementally kept root always equals a root built from scratch.

Levels 0..stored_depth are kept in flat arrays (4369 slots for depth 3, ~70 KB);
deeper nodes, down to the full 64-bit hash at level 16, are summarised on
demand from the entries in their key-hash range (`summarize`, `split`), which
is a bounded scan of one bucket, not of the partition.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence

from gossip.core.store.record import Entry

FANOUT_BITS = 4
FANOUT = 1 << FANOUT_BITS
KEY_BITS = 64
MAX_LEVEL = KEY_BITS // FANOUT_BITS
DEFAULT_STORED_DEPTH = 3
_MASK = (1 << 64) - 1

Summary = tuple[int, int]
"""(fingerprint, count) of one tree node; (0, 0) when empty."""

EMPTY: Summary = (0, 0)


def check_node(level: int, prefix: int) -> None:
    if not 0 <= level <= MAX_LEVEL:
        raise ValueError(f"tree level out of range: {level}")
    if not 0 <= prefix < (1 << (FANOUT_BITS * level)):
        raise ValueError(f"prefix {prefix} out of range for level {level}")


def node_range(level: int, prefix: int) -> tuple[int, int]:
    """Inclusive key-hash range [lo, hi] covered by a node."""
    shift = KEY_BITS - FANOUT_BITS * level
    lo = prefix << shift
    return lo, lo + (1 << shift) - 1


def prefix_of(khash: int, level: int) -> int:
    return khash >> (KEY_BITS - FANOUT_BITS * level)


def summarize(entries: Iterable[Entry]) -> Summary:
    fp = 0
    count = 0
    for e in entries:
        fp += e.fingerprint
        count += 1
    return fp & _MASK, count


def split(level: int, entries: Iterable[Entry]) -> list[Summary]:
    """The 16 child summaries of a node at `level`, from that node's entries."""
    fps = [0] * FANOUT
    counts = [0] * FANOUT
    shift = KEY_BITS - FANOUT_BITS * (level + 1)
    for e in entries:
        i = (e.khash >> shift) & (FANOUT - 1)
        fps[i] += e.fingerprint
        counts[i] += 1
    return [(fp & _MASK, c) for fp, c in zip(fps, counts, strict=True)]


class MerkleTree:
    def __init__(self, stored_depth: int = DEFAULT_STORED_DEPTH) -> None:
        if not 0 <= stored_depth <= 5:
            raise ValueError("stored_depth must be 0..5")
        self.stored_depth = stored_depth
        self._fps = [array("Q", bytes(8 * FANOUT**lv)) for lv in range(stored_depth + 1)]
        self._counts = [array("Q", bytes(8 * FANOUT**lv)) for lv in range(stored_depth + 1)]

    @classmethod
    def from_entries(
        cls, entries: Iterable[Entry], stored_depth: int = DEFAULT_STORED_DEPTH
    ) -> MerkleTree:
        tree = cls(stored_depth)
        for e in entries:
            tree.update(None, e)
        return tree

    def update(self, old: Entry | None, new: Entry | None) -> None:
        """Replace `old` by `new` (either may be None) under their key hash."""
        if old is not None:
            self._add(old.khash, -old.fingerprint, -1)
        if new is not None:
            self._add(new.khash, new.fingerprint, 1)

    def _add(self, khash: int, dfp: int, dcount: int) -> None:
        for level in range(self.stored_depth + 1):
            i = prefix_of(khash, level)
            fps = self._fps[level]
            fps[i] = (fps[i] + dfp) & _MASK
            self._counts[level][i] += dcount

    @property
    def root(self) -> Summary:
        return self._fps[0][0], self._counts[0][0]

    @property
    def count(self) -> int:
        return self._counts[0][0]

    def stored(self, level: int, prefix: int) -> Summary:
        """Summary of a node at level <= stored_depth."""
        return self._fps[level][prefix], self._counts[level][prefix]

    def stored_children(self, level: int, prefix: int) -> list[Summary]:
        """The 16 child summaries of a node at level < stored_depth."""
        base = prefix * FANOUT
        fps = self._fps[level + 1][base : base + FANOUT]
        counts = self._counts[level + 1][base : base + FANOUT]
        return list(zip(fps, counts, strict=True))

    def digest(self) -> bytes:
        """The root as 8 bytes (for display and digests)."""
        return self._fps[0][0].to_bytes(8, "big")

    def same_as(self, other: MerkleTree) -> bool:
        return self._fps == other._fps and self._counts == other._counts


def sorted_entries(entries: Sequence[Entry]) -> list[Entry]:
    return sorted(entries, key=lambda e: e.khash)

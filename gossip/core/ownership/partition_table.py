"""A fixed partition table of rendezvous owners: the hot-path lookup for work ownership.

Rules:
- A key maps to one of `partitions` (a power of two) fixed partitions by crc32 of its bytes
  (str keys as UTF-8): the fastest stable hash in the standard library, and the partition
  owners are chosen by a strong mix, so crc32's linearity does not bias ownership.
- Each partition's `depth` best members are ranked by rendezvous hashing
  (gossip.core.rendezvous) over the table's members; a lookup is crc32 -> index -> list item.
- A table is an immutable snapshot. `with_members` derives the next one, recomputing only the
  partitions that ranked a departed member and merging newcomers' scores into the rest, so
  the result is bit-identical to a full rebuild and only the minimum of keys move.
- owners(key, n) beyond the stored depth falls back to a direct rendezvous ranking of that
  partition, so any n is answered, just slower.
- Lazy: a table ranks nothing (and imports no numpy) until a lookup or a query over all
  partitions needs it; `materialize()` does it ahead of time (e.g. in a worker thread).
  `direct_owner(key)` answers without building: the table's answer, by scoring the key's
  partition over the members (O(members)), for the few lookups a node makes at idle.
  Materializing assigns the finished arrays last, so a racing reader sees none or all.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeAlias
from zlib import crc32

from gossip.core import rendezvous as hrw

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

DEFAULT_PARTITIONS = 1 << 20
"""Load spread is set by partitions per member: at 100 members 2^20 keeps max/mean load near
1.04 over a million keys (2^16 gives about 1.13). See docs/ownership.md."""
DEFAULT_DEPTH = 3
_CHUNK = 1 << 16  # partitions scored per numpy pass: bounds memory to members x 512 KiB
_NONE = -1

I32: TypeAlias = "npt.NDArray[np.int32]"


class PartitionTable:
    """Ranked rendezvous owners of every partition, for one set of weighted members."""

    __slots__ = (
        "_depth",
        "_first",
        "_integer_mode",
        "_mask",
        "_members",
        "_names",
        "_partitions",
        "_ranks",
        "_scores",
    )

    def __init__(
        self,
        members: Mapping[str, float],
        *,
        partitions: int = DEFAULT_PARTITIONS,
        depth: int = DEFAULT_DEPTH,
    ) -> None:
        """Build the table for `members` (name -> weight > 0) from scratch."""
        _check_shape(partitions, depth)
        _check_weights(members)
        self._partitions = partitions
        self._mask = partitions - 1
        self._depth = depth
        self._members: Mapping[str, float] = MappingProxyType(dict(members))
        self._names = sorted(members)
        self._integer_mode = hrw.uniform_weights(members)
        self._first: list[str | None] = []  # empty until materialized (partitions >= 1)

    @property
    def materialized(self) -> bool:
        return bool(self._first)

    def materialize(self) -> list[str | None]:
        """Rank every partition now (idempotent); returns the first-owner list."""
        if not self._first:
            import numpy as np

            # Row p holds partition p's best members (indexes into _names) and their scores.
            ranks = np.full((self._partitions, self._depth), _NONE, dtype=np.int32)
            scores = np.zeros((self._partitions, self._depth), dtype=np.uint64)
            if self._names:
                self._rank_columns(np.arange(self._partitions), ranks, scores)
            first = self._first_owner_list(ranks)
            self._ranks, self._scores, self._first = ranks, scores, first
        return self._first

    def direct_owner(self, key: bytes | str) -> str | None:
        """owner(key) without building the table when it is not built yet."""
        if not self._members:
            return None
        if self._first:
            return self.owner(key)
        best = hrw.rank(hrw.partition_hash(self.partition_of(key)), self._members, 1)
        return best[0]

    # ---- lookups (the hot path) -------------------------------------------

    def partition_of(self, key: bytes | str) -> int:
        if isinstance(key, str):
            key = key.encode()
        return crc32(key) & self._mask

    def owner(self, key: bytes | str) -> str | None:
        """The first-ranked member for `key`, or None when the table has no members."""
        if isinstance(key, str):
            key = key.encode()
        return (self._first or self.materialize())[crc32(key) & self._mask]

    def owners(self, key: bytes | str, n: int) -> list[str]:
        """The top `n` members for `key`, best first (fewer if there are fewer members)."""
        return self.owners_of_partition(self.partition_of(key), n)

    def owners_of_partition(self, partition: int, n: int) -> list[str]:
        if n <= self._depth:
            self.materialize()
            names = self._names
            return [names[i] for i in self._ranks[partition, :n].tolist() if i != _NONE]
        return hrw.rank(hrw.partition_hash(partition), self._members, n)

    # ---- the snapshot -----------------------------------------------------

    @property
    def members(self) -> Mapping[str, float]:
        return self._members

    @property
    def partitions(self) -> int:
        return self._partitions

    @property
    def depth(self) -> int:
        return self._depth

    def first_owners(self) -> I32:
        """Index (into sorted member names) of each partition's owner; -1 when empty."""
        self.materialize()
        first: I32 = self._ranks[:, 0].copy()
        return first

    def member_names(self) -> list[str]:
        """Members sorted by name: the indexes used by first_owners()."""
        return list(self._names)

    def partition_counts(self) -> dict[str, int]:
        """How many partitions each member owns (first rank)."""
        import numpy as np

        self.materialize()
        first = self._ranks[:, 0]
        counts = np.bincount(first[first != _NONE], minlength=len(self._names))
        return dict(zip(self._names, counts.tolist(), strict=True))

    def partitions_owned_by(self, name: str) -> Iterator[int]:
        """Partitions whose first owner is `name`."""
        import numpy as np

        if name in self._members:
            self.materialize()
            index = self._names.index(name)
            yield from np.flatnonzero(self._ranks[:, 0] == index).tolist()

    def moved_partitions(self, other: PartitionTable) -> int:
        """Partitions whose first owner differs between this table and `other`."""
        if other._partitions != self._partitions:
            raise ValueError("tables have different partition counts")
        import numpy as np

        self.materialize()
        other.materialize()
        # Translate this table's member indexes into `other`'s (-2: not a member there).
        index_of = {name: i for i, name in enumerate(other._names)}
        translate = np.array([index_of.get(n, -2) for n in self._names] + [_NONE], dtype=np.int32)
        mine = translate[self._ranks[:, 0]]  # -1 (no owner) indexes the trailing _NONE
        return int(np.count_nonzero(mine != other._ranks[:, 0]))

    # ---- derivation -------------------------------------------------------

    def with_members(self, members: Mapping[str, float]) -> PartitionTable:
        """The table for `members`, derived incrementally from this one when it is built
        (else as lazy as this one)."""
        _check_weights(members)
        if not self._first or not self._names or hrw.uniform_weights(members) != self._integer_mode:
            # Nothing to reuse, or integer and float scores that do not compare: rank afresh.
            return PartitionTable(members, partitions=self._partitions, depth=self._depth)
        gone = {n for n, w in self._members.items() if members.get(n) != w}
        new = {n: w for n, w in members.items() if self._members.get(n) != w}
        import numpy as np

        table = PartitionTable.__new__(PartitionTable)
        table._partitions, table._mask, table._depth = self._partitions, self._mask, self._depth
        table._members = MappingProxyType(dict(members))
        table._names = sorted(members)
        table._integer_mode = hrw.uniform_weights(members)
        # Re-index surviving members into the new name order; departed ones become -1.
        remap = np.full(len(self._names) + 1, _NONE, dtype=np.int32)
        index_of = {name: i for i, name in enumerate(table._names)}
        for old_index, name in enumerate(self._names):
            if name not in gone:
                remap[old_index] = index_of[name]
        table._ranks = remap[self._ranks]  # -1 indexes the trailing _NONE slot
        table._scores = self._scores.copy()
        table._scores[table._ranks == _NONE] = 0
        if gone:
            # A partition that ranked a departed member needs a full re-rank: the member that
            # rises into the last stored rank is unknown without scoring everyone.
            hit = np.flatnonzero(np.any((table._ranks == _NONE) & (self._ranks != _NONE), axis=1))
            if table._names and hit.size:
                table._rank_columns(hit, table._ranks, table._scores)
            untouched = np.ones(self._partitions, dtype=bool)
            untouched[hit] = False
        else:
            untouched = np.ones(self._partitions, dtype=bool)
        if new and table._names:
            table._merge_newcomers(sorted(new), untouched)
        table._first = table._first_owner_list(table._ranks)
        return table

    # ---- internals ----------------------------------------------------------

    def _rank_columns(self, columns: npt.NDArray[np.intp], ranks: I32, scores: hrw.U64) -> None:
        """Rank every member for the given partitions, filling `ranks` and `scores` rows."""
        import numpy as np

        hashes = [hrw.hash64(name) for name in self._names]
        weights = [self._members[name] for name in self._names]
        member_idx = np.arange(len(self._names), dtype=np.int32)
        for start in range(0, columns.size, _CHUNK):
            cols = columns[start : start + _CHUNK]
            keys = hrw.partition_hashes_of(cols)
            matrix = hrw.score_matrix(keys, hashes, weights, self._integer_mode)
            idx = np.broadcast_to(member_idx[None, :], matrix.shape)
            ranks[cols], scores[cols] = _top(matrix, idx, self._depth, sort=False)

    def _merge_newcomers(self, newcomers: list[str], where: npt.NDArray[np.bool_]) -> None:
        """Merge newcomers' scores into the stored top ranks of partitions `where`."""
        import numpy as np

        cols_all = np.flatnonzero(where)
        index_of = {name: i for i, name in enumerate(self._names)}
        hashes = [hrw.hash64(n) for n in newcomers]
        weights = [self._members[n] for n in newcomers]
        fresh_idx = np.array([index_of[n] for n in newcomers], dtype=np.int32)
        for start in range(0, cols_all.size, _CHUNK):
            cols = cols_all[start : start + _CHUNK]
            fresh = hrw.score_matrix(
                hrw.partition_hashes_of(cols), hashes, weights, self._integer_mode
            )
            scores = np.concatenate([self._scores[cols], fresh], axis=1)
            idx = np.concatenate(
                [self._ranks[cols], np.broadcast_to(fresh_idx[None, :], fresh.shape)], axis=1
            )
            self._ranks[cols], self._scores[cols] = _top(scores, idx, self._depth, sort=True)

    def _first_owner_list(self, ranks: I32) -> list[str | None]:
        import numpy as np

        lookup = np.array([*self._names, None], dtype=object)
        first: list[str | None] = lookup[ranks[:, 0]].tolist()
        return first


def _top(scores: hrw.U64, idx: I32, depth: int, *, sort: bool) -> tuple[I32, hrw.U64]:
    """Per row (partition), the `depth` highest scores and their member indexes, best first.

    Ties (equal 64-bit scores) go to the smaller member index, i.e. the smaller name, as in
    rendezvous.rank: argmax takes the first maximum, so columns must be in index order
    (`sort=True` puts them there; padding, index -1, sorts first but scores 0 and loses).
    """
    import numpy as np

    if sort:
        order = np.argsort(idx, axis=1, kind="stable")
        scores = np.take_along_axis(scores, order, axis=1)
        idx = np.take_along_axis(idx, order, axis=1)
    # Without sorting, `scores` is the caller's fresh matrix and is consumed in place.
    rows = np.arange(scores.shape[0])
    ranks = np.full((scores.shape[0], depth), _NONE, dtype=np.int32)
    best = np.zeros((scores.shape[0], depth), dtype=np.uint64)
    for r in range(min(depth, scores.shape[1])):
        top = np.argmax(scores, axis=1)
        ranks[:, r] = idx[rows, top]
        best[:, r] = scores[rows, top]
        scores[rows, top] = 0
    # A partition with fewer real members than `depth` picked padding (score 0).
    ranks[best == 0] = _NONE
    return ranks, best


def _check_shape(partitions: int, depth: int) -> None:
    if partitions < 1 or partitions & (partitions - 1):
        raise ValueError(f"partitions must be a power of two, got {partitions}")
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")


def _check_weights(members: Mapping[str, float]) -> None:
    for name, weight in members.items():
        if not weight > 0 or weight == float("inf"):
            raise ValueError(f"member {name!r} has weight {weight!r}: weights must be > 0")

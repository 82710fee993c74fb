"""A due change of the ownership table, built apart from the state machine.

Rules: a Rebuild holds the current (immutable) table and the desired members; build() only
reads immutable tables, so any thread may run it; the state machine installs the result with
Ownership.commit, in its own thread. moved_partitions is None when a table is not built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gossip.core.ownership.partition_table import PartitionTable


@dataclass(frozen=True, slots=True)
class Built:
    table: PartitionTable
    moved_partitions: int | None


@dataclass(frozen=True, slots=True)
class Rebuild:
    """A due change of the table. build() only reads immutable tables: any thread may run it."""

    old: PartitionTable
    members: Mapping[str, float]
    eager: bool = False
    """Build the whole table now (many declared items), even if `old` is not built."""

    @property
    def builds_table(self) -> bool:
        """Whether build() ranks partitions (worth a worker thread) or only notes members."""
        return self.eager or (self.old.materialized and bool(self.old.members))

    def build(self) -> Built:
        old = self.old
        new = old.with_members(self.members)
        if self.eager:
            new.materialize()
        if not old.members:  # from nobody, every partition with an owner moved
            moved: int | None = new.partitions if new.members else 0
        elif old.materialized and new.materialized:
            moved = old.moved_partitions(new)
        else:
            moved = None
        return Built(new, moved)

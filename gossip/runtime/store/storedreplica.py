"""One partition of the storage as anti-entropy's Replica (gossip.core.store.antientropy).

Rules: the replica reads the partition's tree, entries and records straight
from the storage and applies what a sync brings in one transaction; records
that arrive by sync are shown to `observe` first (the store service's clock
watches them). It screens nothing it sends: the store service's replica does
(ledger.py's ScreenedReplica).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gossip.core.store.merkle import MerkleTree
from gossip.core.store.record import Entry, Record
from gossip.core.store.tombstone_gc import PeerCopy
from gossip.runtime.store.storage import KVStorage


class StoredReplica:
    """One partition of a KVStorage, as the anti-entropy `Replica`."""

    def __init__(
        self,
        storage: KVStorage,
        part: int,
        observe: Callable[[Sequence[Record]], None] | None = None,
    ) -> None:
        self.storage = storage
        self.part = part
        self.observe = observe
        """Called with records that arrive by sync (the store service's clock watches them)."""

    @property
    def tree(self) -> MerkleTree:
        return self.storage.tree(self.part)

    def entries(self, lo: int, hi: int, limit: int | None = None) -> list[Entry]:
        return self.storage.entries(self.part, lo, hi, limit)

    def records(self, khashes: Sequence[int]) -> list[Record]:
        return self.storage.records_by_hash(self.part, khashes)

    def apply(self, records: Sequence[Record], judged: int | None = None) -> int:
        if self.observe is not None:
            self.observe(records)
        return self.storage.apply(records, part=self.part)

    def screen(self, records: Sequence[Record], peer: PeerCopy | None) -> list[Record]:
        """Everything may be sent (the store service's replica screens; see ledger.py)."""
        return list(records)

    def judging(self, peer: PeerCopy | None) -> int | None:
        return None

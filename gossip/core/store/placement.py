"""Where store keys live: fixed partitions, each on its top R members.

Rules: a key's partition is crc32(key) masked to a power-of-two partition
count (the ownership layer's `PartitionTable.partition_of`); a partition's
replicas are its best `replicas` members by rendezvous hashing over the
members given (alive and suspect ones: a member is only replaced once it is
confirmed dead or has left). `replicas=None` means every member ("all").
A Placement is an immutable snapshot; build a new one on membership change.
Partitions are few (64 by default), so each is ranked directly
(gossip.core.rendezvous.rank, the same order a PartitionTable stores) in
pure Python: no table and no numpy for partitions x members scores.
"""

from __future__ import annotations

from collections.abc import Iterable
from zlib import crc32

from gossip.core import rendezvous as hrw

DEFAULT_PARTITIONS = 64
DEFAULT_REPLICAS = 3


def partition_of(key: str, partitions: int) -> int:
    return crc32(key.encode("utf-8")) & (partitions - 1)


class Placement:
    def __init__(
        self,
        members: Iterable[str],
        *,
        partitions: int = DEFAULT_PARTITIONS,
        replicas: int | None = DEFAULT_REPLICAS,
    ) -> None:
        names = sorted(set(members))
        self.partitions = partitions
        self.members = tuple(names)
        self.replication = len(names) if replicas is None else replicas
        depth = max(1, min(self.replication, len(names)))
        weights = dict.fromkeys(names, 1.0)
        self._by_partition = [
            tuple(hrw.rank(hrw.partition_hash(p), weights, depth)) for p in range(partitions)
        ]

    def partition_of(self, key: str) -> int:
        return partition_of(key, self.partitions)

    def replicas(self, partition: int) -> tuple[str, ...]:
        """Ranked replica names (fewer than R when the cluster is smaller)."""
        return self._by_partition[partition]

    def replicas_of_key(self, key: str) -> tuple[str, ...]:
        return self._by_partition[self.partition_of(key)]

    def partitions_of(self, name: str) -> list[int]:
        return [p for p, names in enumerate(self._by_partition) if name in names]

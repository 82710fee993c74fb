"""Which partitions this replica holds in full, and which it is still being filled with.

Rules:
- When the store opens every partition is pending: a restarted or empty
  replica cannot tell what it missed while it was away.
- Entering a partition's replica set (a placement change) makes it pending.
- A pending partition becomes filled after an in-sync exchange with a fellow
  replica that is itself filled (equal roots, or a session that ended with
  nothing left to exchange), or once every fellow replica has been met that way
  while pending too: nobody holds more (a whole cluster starting together).
- Pending replicas take writes but do not count toward a read quorum.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable


class FillState:
    def __init__(self, partitions: int) -> None:
        self.pending: set[int] = set(range(partitions))
        self._met: dict[int, set[str]] = {}
        """Per pending partition, the pending fellows it was found in sync with."""

    def is_pending(self, part: int) -> bool:
        return part in self.pending

    def entered(self, parts: Iterable[int]) -> None:
        for p in parts:
            self.pending.add(p)
            self._met.pop(p, None)

    def synced(self, part: int, peer: str, peer_pending: bool, fellows: Collection[str]) -> bool:
        """Record that this replica of `part` is in sync with `peer`; True when
        that made the partition filled."""
        if part not in self.pending:
            return False
        met = self._met.setdefault(part, set())
        met.add(peer)
        if peer_pending and not set(fellows) <= met:
            return False
        self.pending.discard(part)
        self._met.pop(part, None)
        return True

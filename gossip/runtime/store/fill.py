"""Which partitions this replica holds in full, and which it is still being filled with.

Rules:
- When the store opens every partition is pending: a restarted or empty
  replica cannot tell what it missed while it was away.
- Entering a partition's replica set (a placement change) makes it pending.
- A pending partition becomes filled after in-sync exchanges (equal roots, or
  a session that ended with nothing left to exchange) with enough members that
  hold the partition and are not pending for it (fellow replicas, or former
  ones that still hold a copy they are handing off): a quorum of R, or every
  fellow replica when there are fewer. One source is not enough: a write
  acknowledged by a quorum may have missed any single replica, and a copy
  filled from that one alone would answer reads without it.
- Or, when every other member known (suspect and dead ones too, until reaped)
  was found in one round to hold nothing this node lacks (in sync with it, or
  holding no copy at all, pending or not): nobody holds more (a whole cluster
  starting or restarting together). A member cut off from this one blocks it.
- Pending replicas take writes but do not count toward a read quorum.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable


class FillState:
    def __init__(self, partitions: int) -> None:
        self.pending: set[int] = set(range(partitions))
        self._sources: dict[int, set[str]] = {}
        """Per pending partition, the members found in sync with it so far."""

    def is_pending(self, part: int) -> bool:
        return part in self.pending

    def entered(self, parts: Iterable[int]) -> None:
        for part in parts:
            self.pending.add(part)
            self._sources.pop(part, None)

    def in_sync(self, part: int, source: str, needed: int) -> bool:
        """`source` (not pending itself) was found in sync with this node's copy; the
        partition is filled once `needed` distinct sources were. True if it just was."""
        if part not in self.pending:
            return False
        seen = self._sources.setdefault(part, set())
        seen.add(source)
        if len(seen) < needed:
            return False
        return self.filled(part)

    def filled(self, part: int) -> bool:
        """Mark a partition filled; True if it was pending."""
        if part not in self.pending:
            return False
        self.pending.discard(part)
        self._sources.pop(part, None)
        return True


class FillRound:
    """What one anti-entropy round learned about this node's pending partitions."""

    def __init__(self) -> None:
        self.clear: dict[int, set[str]] = {}
        """Per partition, the members known to hold nothing this node lacks: found
        in sync with it, or holding no copy at all."""

    def holds_no_more(self, part: int, peer: str) -> None:
        self.clear.setdefault(part, set()).add(peer)

    def nobody_holds_more(self, part: int, members: Collection[str]) -> bool:
        return set(members) <= self.clear.get(part, set())

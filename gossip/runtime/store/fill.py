"""Which partitions this replica holds in full, and which it is still being filled with.

Rules:
- When the store opens every partition is pending: a restarted or empty
  replica cannot tell what it missed while it was away.
- Entering a partition's replica set (a placement change) makes it pending.
- A pending partition becomes filled after an in-sync exchange (equal roots, or
  a session that ended with nothing left to exchange) with a member that holds
  the partition and is not pending for it: a fellow replica, or a former one
  that still holds a copy it is handing off.
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

    def is_pending(self, part: int) -> bool:
        return part in self.pending

    def entered(self, parts: Iterable[int]) -> None:
        self.pending.update(parts)

    def filled(self, part: int) -> bool:
        """Mark a partition filled; True if it was pending."""
        if part not in self.pending:
            return False
        self.pending.discard(part)
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

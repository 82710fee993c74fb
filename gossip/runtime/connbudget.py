"""The bound on open multiplexed connections, inbound and outbound together.

Rules: a connection is admitted while fewer than `limit` are open; at the
limit the one idle longest (ties: the oldest admitted) is closed with reason
"evicted" to make room, and when every open connection has work in flight
the newcomer is refused. A connection leaves with `release` when it ends.
Iteration follows admission order, so a seeded run evicts the same one.
"""

from __future__ import annotations

from typing import Protocol

MAX_CONNECTIONS = 256
"""Default bound: a 128-member cluster keeps one connection each way per peer."""


class Evictable(Protocol):
    def idle_since(self) -> float | None:
        """When it last had work, or None while it has some."""
        ...

    def close(self, reason: str) -> None: ...


class ConnectionBudget:
    def __init__(self, limit: int = MAX_CONNECTIONS) -> None:
        if limit < 1:
            raise ValueError("the connection limit must be positive")
        self.limit = limit
        self._open: dict[Evictable, None] = {}

    def __len__(self) -> int:
        return len(self._open)

    def admit(self, conn: Evictable) -> bool:
        if len(self._open) >= self.limit:
            victim: Evictable | None = None
            oldest = 0.0
            for candidate in self._open:
                since = candidate.idle_since()
                if since is not None and (victim is None or since < oldest):
                    victim, oldest = candidate, since
            if victim is None:
                return False
            self.release(victim)
            victim.close("evicted")
        self._open[conn] = None
        return True

    def release(self, conn: Evictable) -> None:
        self._open.pop(conn, None)

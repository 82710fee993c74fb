"""One suspicion of one member: who accused it, and when it becomes a death.

Rules: a suspicion starts with its first accuser, who does not count as a
confirmation. Each further distinct accuser is one independent confirmation
and moves the deadline earlier (lifeguard.suspicion_timeout), always measured
from the suspicion's start. The node keeps at most one Suspicion per member;
a refutation simply drops it, and the timer that still refers to it finds it
stale (the object itself is the timer's generation token). A suspicion that
reaches its deadline with fewer than k confirmations gets a last call (one
more round of gossip and one probe interval) before it becomes a death.
A suspicion that learns another member already holds the suspect dead at
this incarnation (a push-pull carried that verdict) is settled: its timeout
is the minimum, still measured from its start, and it needs no last call.
"""

from __future__ import annotations

from gossip.core.membership.lifeguard import suspicion_timeout


class Suspicion:
    __slots__ = (
        "accusers",
        "first_accuser",
        "incarnation",
        "k",
        "last_call",
        "max_s",
        "min_s",
        "name",
        "settled",
        "start",
    )

    def __init__(
        self,
        name: str,
        incarnation: int,
        accuser: str,
        start: float,
        k: int,
        min_s: float,
        max_s: float,
    ) -> None:
        self.name = name
        self.incarnation = incarnation
        self.first_accuser = accuser
        self.accusers = {accuser}
        self.start = start
        self.k = k
        self.min_s = min_s
        self.max_s = max_s
        self.last_call = False
        """Set when an unconfirmed suspicion, at its deadline, was gossiped
        once more before it may become a death (node.py)."""
        self.settled = False
        """Set when another member's table held the suspect dead at this
        incarnation: the timeout is then the minimum (see settle())."""

    @property
    def confirmations(self) -> int:
        return len(self.accusers) - 1

    def confirm(self, accuser: str) -> bool:
        """Count `accuser` once; True when it is a new, independent confirmation
        (the caller then re-gossips the suspicion and moves the timer)."""
        if accuser in self.accusers or self.confirmations >= self.k:
            return False
        self.accusers.add(accuser)
        return True

    def settle(self) -> bool:
        """Another member already declared the suspect dead at this incarnation:
        its own suspicion ran its course, which is stronger evidence than any
        number of accusers. The timeout drops to the minimum (never below it,
        so the suspect keeps Lifeguard's shortest window to refute). True when
        this changed the deadline (the caller then moves the timer)."""
        if self.settled:
            return False
        self.settled = True
        return True

    @property
    def timeout(self) -> float:
        if self.settled:
            return self.min_s
        return suspicion_timeout(self.min_s, self.max_s, self.k, self.confirmations)

    @property
    def deadline(self) -> float:
        return self.start + self.timeout

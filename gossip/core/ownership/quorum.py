"""The ownership quorum: whether this node sees a majority of the last known membership.

Rules:
- The last known membership M is the ownership table's member set (settled members not
  confirmed gone, this node included) at the last moment this node saw a majority of M
  outside a hold. It starts empty; the first table that holds this node becomes M.
- This node sees a majority when more than half of M are alive in its view, in its table and
  not unreachable (itself counts once settled). A suspect member does not count; a returning
  member counts only once it has settled again, when the tables agree on who owns what.
- Doubt: while some member of M is not alive in the view, the shell checks M directly (one
  small request to each) and reports who answered (`reached`); members that did not answer
  the last check are unreachable until the view shows every member of M alive again. A side
  cut off from the majority suspects one member first and may not probe the others for a
  while (Lifeguard slows a node that misses acks); the check finds them all in one round.
- A hold follows every removal from the table: for min(2 x |M|, HOLD_PROBES) probe intervals
  M stays as it was and no item changes hands to this node. A node cut off from the majority
  may declare the first unreachable member dead before it has even probed the others; the
  hold gives it time to suspect one of them and check them all (below), so it never takes
  over items (or shrinks M) on the strength of members it has not checked. 2 x |M| intervals
  let it probe every member once; past HOLD_PROBES, with at least half of M unreachable,
  each probe finds one with a chance of one half or more, so all ten miss with a chance of
  at most 2^-10 per node of the cut-off side.
- Takeovers (items this node did not hold) wait while a hold lasts and while a member of M
  that is alive is not in the table yet (it is settling again after a heal): the table is
  about to change, and the other side still holds what the stale table would give this
  node. Items already held stay held while the majority is seen.
- Outside a hold, while this node sees a majority, M follows the table: settled joiners enter,
  members confirmed dead or left drop out. A member that left gracefully leaves M at once,
  hold or not (it will not come back as that member).
- Pure: the caller passes `now`, the table members and the view.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Literal

from gossip.core.types import MemberInfo, MemberState

Change = Literal["lost", "regained", "gained"]
HOLD_PROBES = 10


class Quorum:
    """Tracks M and the hold for one node, and answers whether it sees a majority of M."""

    def __init__(self, self_name: str, probe_interval: float) -> None:
        if not probe_interval > 0:
            raise ValueError("probe_interval must be > 0")
        self.name = self_name
        self.probe_interval = probe_interval
        self._known: frozenset[str] = frozenset()
        self._unreachable: frozenset[str] = frozenset()
        self.hold_until = -math.inf
        self.quorate = False
        self._lost = False

    @property
    def known(self) -> frozenset[str]:
        """M, the last known membership."""
        return self._known

    def doubt(self, view: Mapping[str, MemberInfo]) -> bool:
        """Whether some member of M is not alive in the view (then the shell checks M)."""
        return any(not self._alive(n, view) for n in self._known)

    def reached(self, asked: Collection[str], answered: Collection[str]) -> None:
        """The result of a direct check of M: who was asked and who answered."""
        self._unreachable = frozenset(asked) - frozenset(answered) - {self.name}

    def hold(self, now: float) -> None:
        """Members left the table at `now`: start (or extend) the hold."""
        span = min(2 * max(len(self._known), 1), HOLD_PROBES) * self.probe_interval
        self.hold_until = max(self.hold_until, now + span)

    def holding(self, now: float) -> bool:
        return now < self.hold_until

    def judge(
        self, now: float, table: Collection[str], view: Mapping[str, MemberInfo]
    ) -> Change | None:
        """Re-judge the quorum (see update); how the verdict changed, if it did."""
        quorate = self.update(now, table, view)
        if quorate == self.quorate:
            return None
        self.quorate = quorate
        if not quorate:
            self._lost = True
            return "lost"
        return "regained" if self._lost else "gained"

    def may_take(self, now: float, table: Collection[str], view: Mapping[str, MemberInfo]) -> bool:
        """Whether this node may take over items now (quorate, no hold, no member settling)."""
        settling = any(n not in table and self._alive(n, view) for n in self._known)
        return self.quorate and not self.holding(now) and not settling

    def update(self, now: float, table: Collection[str], view: Mapping[str, MemberInfo]) -> bool:
        """Whether this node sees a majority of M now; moves M along when it may."""
        left = {n for n in self._known if n in view and view[n].state == MemberState.LEFT}
        known = self._known - left
        if not known:
            if self.name not in table:
                return False
            known = frozenset(table)  # the first table this node is part of
        if not self.doubt(view):
            self._unreachable = frozenset()
        seen = sum(
            1 for n in known if n in table and self._alive(n, view) and n not in self._unreachable
        )
        majority = 2 * seen > len(known)
        self._known = frozenset(table) if majority and not self.holding(now) else known
        return majority

    def _alive(self, name: str, view: Mapping[str, MemberInfo]) -> bool:
        if name == self.name:
            return True
        info = view.get(name)
        return info is not None and info.state == MemberState.ALIVE

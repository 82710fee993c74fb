"""The store's majority rule: quorum reads and writes only where most known members are.

Rules:
- Known members M: this node, and every data member it has ever seen in any state but
  left. Reaping a dead member does not remove it, nor does a partition: a side cut off
  from the rest keeps counting the members it cannot see, so it can never believe
  itself the majority. A member seen left (a graceful leave, or one forced out by an
  operator) leaves M at once: it will not answer as that member again. The caller
  persists M with the data, so a restart keeps it.
- This node sees a majority when more than half of M are alive in its view (itself
  included; a suspect does not count: it missed a probe) and not doubted: the caller
  names members whose last store exchange with this node failed (a partition shows
  there seconds before the failure detector suspects every member across it).
- A node that was told to join peers and has never known one (a first start, or a data
  directory lost) does not see a majority alone: the cluster it expects is elsewhere.
- Pure: the caller passes the member list.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from gossip.core.types import MemberInfo, MemberState


@dataclass(frozen=True)
class Majority:
    seen: int
    """Members of M alive in the view, this node included."""
    known: int
    """|M|."""
    quorate: bool

    @property
    def needed(self) -> int:
        return self.known // 2 + 1

    def describe(self) -> str:
        seen, known, needed = self.seen, self.known, self.needed
        return f"this agent sees {seen} of the {known} members it knows, {needed} needed"


class KnownMembers:
    """M, the members this node has known, and the majority verdict over it."""

    def __init__(self, me: str, names: Iterable[str], *, expects_peers: bool) -> None:
        self.me = me
        self.expects_peers = expects_peers
        self._names: set[str] = set(names) | {me}

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self._names)

    def observe(
        self, members: Sequence[MemberInfo], excluded: Collection[str] = ()
    ) -> tuple[set[str], set[str]]:
        """Follow the member list: who joined M and who left it (for the caller to
        persist). Members in `excluded` (other store settings) are not data members."""
        added: set[str] = set()
        removed: set[str] = set()
        for m in members:
            if m.name == self.me:
                continue
            if m.state == MemberState.LEFT:
                if m.name in self._names:
                    removed.add(m.name)
            elif m.name not in self._names and m.name not in excluded:
                added.add(m.name)
        self._names |= added
        self._names -= removed
        return added, removed

    def verdict(self, members: Sequence[MemberInfo], doubted: Collection[str] = ()) -> Majority:
        alive = {m.name for m in members if m.state == MemberState.ALIVE} - set(doubted)
        seen = 1 + sum(1 for n in self._names if n != self.me and n in alive)
        known = len(self._names)
        alone_but_expected = known == 1 and self.expects_peers
        return Majority(seen, known, 2 * seen > known and not alone_but_expected)

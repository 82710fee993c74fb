"""The member table: what this node believes about every member, and the
SWIM precedence rule that decides whether an update replaces that belief.

Rules:
- An update (incarnation, state) supersedes the current belief when its
  incarnation is higher, or when it is equal and its state ranks higher:
  alive < suspect < dead < left. This is a join on a total order, so applying
  any set of updates in any order gives the same result.
- At equal incarnation and state, an alive update naming another address or
  other tags does not replace the belief: the node that already holds a name
  keeps it (a name conflict), and tags change only with a new incarnation.
- A member is first learned from an alive update (the only one that carries an
  address); suspect, dead and left rumours about unknown names are ignored.
- The table keeps counts by state so the cluster size estimate is O(1).
"""

from __future__ import annotations

from collections.abc import Iterator
from random import Random

from gossip.core.types import MemberInfo, MemberState

ALIVE = MemberState.ALIVE
SUSPECT = MemberState.SUSPECT
DEAD = MemberState.DEAD
LEFT = MemberState.LEFT
ALIVE_ONLY = {ALIVE}


SMALL_TABLE = 64
"""Up to this many members, random picks scan the table instead of sampling."""


def supersedes(inc: int, state: MemberState, cur_inc: int, cur_state: MemberState) -> bool:
    """True when (inc, state) wins over the current (cur_inc, cur_state)."""
    return inc > cur_inc or (inc == cur_inc and state > cur_state)


class MemberTable:
    """Name -> MemberInfo (immutable snapshots, replaced on every change), plus
    the shuffled round-robin probe order."""

    def __init__(self, rng: Random) -> None:
        self._rng = rng
        self._by_name: dict[str, MemberInfo] = {}
        self.counts = [0, 0, 0, 0]
        """Members per state (indexed by MemberState), this node included."""
        self.order: list[str] = []
        """Probe order (every member but this node); may hold reaped names,
        which are skipped and dropped at the next reshuffle."""
        self.index = 0
        self.version = 0
        """Bumped on every change: lets callers cache what they derive."""

    def __len__(self) -> int:
        return len(self._by_name)

    def __iter__(self) -> Iterator[MemberInfo]:
        return iter(self._by_name.values())

    @property
    def live(self) -> int:
        """Members alive or suspect (this node included, unless it left)."""
        return self.counts[ALIVE] + self.counts[SUSPECT]

    def get(self, name: str) -> MemberInfo | None:
        return self._by_name.get(name)

    def put(self, info: MemberInfo, *, probe: bool = True) -> MemberInfo | None:
        """Store `info`, returning the previous snapshot. A new name is inserted
        into the probe order at a random position (unless probe=False, for self)."""
        old = self._by_name.get(info.name)
        self._by_name[info.name] = info
        self.version += 1
        if old is None:
            if probe:
                pos = int(self._rng.random() * (len(self.order) + 1))
                self.order.insert(pos, info.name)
                if pos < self.index:
                    self.index += 1  # keep the current round's position
        else:
            self.counts[old.state] -= 1
        self.counts[info.state] += 1
        return old

    def remove(self, name: str) -> MemberInfo | None:
        old = self._by_name.pop(name, None)
        if old is not None:
            self.counts[old.state] -= 1
            self.version += 1
        return old

    def next_probe_target(self, me: str) -> MemberInfo | None:
        """The next alive or suspect member in round-robin order; the order is
        reshuffled (and cleaned of reaped names) at the end of every round."""
        for _ in range(2):
            order = self.order
            while self.index < len(order):
                info = self._by_name.get(order[self.index])
                self.index += 1
                if info is not None and info.state <= SUSPECT and info.name != me:
                    return info
            self.order = [n for n in order if n in self._by_name]
            self._rng.shuffle(self.order)
            self.index = 0
        return None

    def random_members(
        self, count: int, accept: set[MemberState], exclude: tuple[str, ...] = ()
    ) -> list[MemberInfo]:
        """Up to `count` distinct random members in `accept` states, by
        rejection sampling from the probe order: O(count), not O(N)."""
        order = self.order
        rng = self._rng
        if len(order) <= SMALL_TABLE:
            candidates = [
                info
                for n in order
                if (info := self._by_name.get(n)) is not None
                and info.state in accept
                and info.name not in exclude
            ]
            return rng.sample(candidates, min(count, len(candidates)))
        picked: dict[str, MemberInfo] = {}
        for _ in range(count * 4 + 4):
            info = self._by_name.get(order[int(rng.random() * len(order))])
            if info is None or info.state not in accept or info.name in exclude:
                continue
            picked[info.name] = info
            if len(picked) >= count:
                break
        return list(picked.values())

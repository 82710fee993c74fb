"""Work ownership: who owns which key, and when this node gains or loses declared items.

Rules:
- Pure: every input takes `now` (the shell's monotonic clock, for settle and coalescing) and,
  where a fencing token may be issued, `wall_ms` (wall-clock milliseconds, only for tokens).
- Ownership is a PartitionTable over the *effective* members. A member leaves the effective set
  only when confirmed dead or left (or reaped), never while merely suspect. A member (this
  node included) enters it only after being continuously alive for `settle_time`, so a
  flapping node does not make work bounce.
- Changes are applied `coalesce_time` after the first one is noticed, all together in one
  rebuild: a burst of joins or failures moves each item at most once.
- Each acquisition of a declared item gets a fencing token from `fencing`: above every token
  issued on this node and every token heard of for the item. A node that releases an item
  sends the successor a TokenNote with its token; a node that holds the item with a token
  not above a note's releases and acquires it again above it (reason token_raised), so after
  a split heals the owner's next token is above every token issued for the item meanwhile.
  `issued` restores the tokens this node issued before a restart (the shell keeps them on
  disk from ItemAcquired): its next tokens go above them, and each is passed on to the
  item's owner like a heard token, so a restart forgets no token it issued.
- With `quorum`, items are held only while this node sees a majority of the last known
  membership (see quorum); without one every item is released (quorum_lost), and taken
  back when the majority returns (quorum_regained).
- Outputs (OwnershipChanged, then per item ItemReleased before ItemAcquired, TokenNotes) are
  drained with take_outputs(), as with the membership core.
- A shell may split handle_timeout into due_rebuild / Rebuild.build / commit to build a large
  table in a worker thread; all state changes stay in the caller's thread.
- The table is lazy (see partition_table): declared items are placed by direct_owner, which
  scores only their partitions, unless there are so many (items x members > DIRECT_LIMIT) that
  building the table is cheaper; then the Rebuild builds it. A table once built stays built
  (later ones derive from it incrementally). Figures that need the whole table
  (moved_partitions, partitions_owned) are None while it is not built.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gossip.core import rendezvous as hrw
from gossip.core.ownership.fencing import Fencing
from gossip.core.ownership.partition_table import (
    DEFAULT_DEPTH,
    DEFAULT_PARTITIONS,
    PartitionTable,
)
from gossip.core.ownership.quorum import Quorum
from gossip.core.ownership.rebuild import Built, Rebuild
from gossip.core.types import MemberInfo, MemberState

WEIGHT_TAG = "weight"
MAX_WEIGHT = 1_000_000.0
DEFAULT_SETTLE_TIME = 5.0
DEFAULT_COALESCE_TIME = 0.5
DIRECT_LIMIT = 1 << 14
"""Declared items x members scored directly per change before the table is built instead."""


@dataclass(frozen=True, slots=True)
class OwnershipChanged:
    """The effective member set changed and the table was rebuilt."""

    members: tuple[str, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]
    moved_partitions: int | None
    """Partitions whose first owner changed (None: the tables are not built)."""
    partitions_owned: int | None
    """Partitions this node now owns, first rank (None: the table is not built)."""


@dataclass(frozen=True, slots=True)
class ItemAcquired:
    item: str
    token: int
    reason: str
    """initial | owner_failed | owner_left | declared | rebalanced | token_raised |
    quorum_regained"""
    previous: str | None


@dataclass(frozen=True, slots=True)
class ItemReleased:
    item: str
    token: int
    """The token this node acquired the item with."""
    reason: str
    """member_joined | leaving | undeclared | rebalanced | token_raised | quorum_lost"""
    successor: str | None


@dataclass(frozen=True, slots=True)
class TokenNote:
    """Tell member `to` that `item` was held with `token` (or that this node heard so), so its
    next token for the item goes above. The shell delivers it to `to`'s learn()."""

    to: str
    item: str
    token: int


OwnershipOutput = OwnershipChanged | ItemAcquired | ItemReleased | TokenNote


def member_weight(member: MemberInfo) -> float:
    """The member's `weight` tag as a float in (0, MAX_WEIGHT]; 1.0 when absent or invalid."""
    raw = member.tags.get(WEIGHT_TAG)
    if raw is None or len(raw) > 32:
        return 1.0
    try:
        weight = float(raw)
    except ValueError:
        return 1.0
    return weight if math.isfinite(weight) and 0 < weight <= MAX_WEIGHT else 1.0


class Ownership:
    """The ownership state machine of one node."""

    def __init__(
        self,
        self_name: str,
        *,
        settle_time: float = DEFAULT_SETTLE_TIME,
        coalesce_time: float = DEFAULT_COALESCE_TIME,
        partitions: int = DEFAULT_PARTITIONS,
        depth: int = DEFAULT_DEPTH,
        items: Iterable[str] = (),
        quorum: bool = False,
        probe_interval: float = 1.0,
        issued: Mapping[str, int] | None = None,
    ) -> None:
        if settle_time < 0 or coalesce_time < 0:
            raise ValueError("settle_time and coalesce_time must be >= 0")
        self.name = self_name
        self.settle_time = settle_time
        self.coalesce_time = coalesce_time
        self._table = PartitionTable({}, partitions=partitions, depth=depth)
        self._view: dict[str, MemberInfo] = {}
        self._alive_since: dict[str, float] = {}
        self._pending_since: float | None = None
        self._last_eval = -math.inf
        self._items: frozenset[str] = frozenset(items)
        self._held: dict[str, int] = {}
        self._fencing = Fencing()
        self._fencing.restore(issued or {})
        self._quorum = Quorum(self_name, probe_interval) if quorum else None
        self._hold_pending = False
        self._regained = False
        self._deferred: PartitionTable | None = None
        """The table before the change whose takeovers wait for the quorum (see quorum)."""
        self._leaving = False
        self._outbox: list[OwnershipOutput] = []
        self._self_info: MemberInfo | None = None
        self._fallen: set[str] = set()
        """Table members seen dead, left or reaped: out at the next apply, then must re-settle."""

    # ---- lookups -------------------------------------------------------------

    @property
    def table(self) -> PartitionTable:
        """The current immutable table; safe to keep and read from any thread."""
        return self._table

    def owner(self, key: bytes | str) -> str | None:
        """The table's owner of `key`, without building the table for it."""
        return self._table.direct_owner(key)

    def owners(self, key: bytes | str, n: int) -> list[str]:
        return self._table.owners(key, n)

    def owns(self, key: bytes | str) -> bool:
        return self._table.direct_owner(key) == self.name

    @property
    def items(self) -> frozenset[str]:
        return self._items

    def held(self) -> dict[str, int]:
        """Declared items this node owns, with the fencing token of each acquisition."""
        return dict(self._held)

    @property
    def quorate(self) -> bool:
        """Whether this node may hold items: always without quorum, else with a majority."""
        return self._quorum is None or self._quorum.quorate

    @property
    def quorum_doubt(self) -> bool:
        """Whether the shell should check the last known membership directly (see quorum)."""
        return self._quorum is not None and self._quorum.doubt(self._view)

    def reached(
        self, now: float, asked: Iterable[str], answered: Iterable[str], wall_ms: int
    ) -> None:
        """The result of a direct check of the last known membership (see quorum)."""
        if self._quorum is None:
            return
        self._quorum.reached(list(asked), list(answered))
        self._last_eval = max(self._last_eval, now)
        self._requorum(self._table, wall_ms, always=False)

    @property
    def known_members(self) -> frozenset[str]:
        """The last known membership of the quorum (empty without quorum)."""
        return frozenset() if self._quorum is None else self._quorum.known

    # ---- inputs --------------------------------------------------------------

    def observe(self, now: float, members: Iterable[MemberInfo], wall_ms: int = 0) -> None:
        """Take a full membership snapshot (e.g. node.members()) after any change. `wall_ms`
        stamps the tokens of items taken back at once when the quorum returns."""
        snapshot = list(members)
        self._self_info = next((m for m in snapshot if m.name == self.name), None)
        view = {m.name: m for m in snapshot if m.name != self.name}
        for name in list(self._alive_since):
            if name != self.name and (name not in view or view[name].state != MemberState.ALIVE):
                del self._alive_since[name]
        for name, info in view.items():
            if info.state == MemberState.ALIVE:
                self._alive_since.setdefault(name, now)
        for name in self._table.members:
            if name != self.name and (name not in view or not view[name].is_alive_or_suspect):
                self._fallen.add(name)
        self._alive_since.setdefault(self.name, now)
        self._view = view
        self._evaluate(now)
        self._requorum(self._table, wall_ms, always=False)

    def handle_timeout(self, now: float, wall_ms: int) -> None:
        """Apply a coalesced change whose time has come (due_rebuild + build + commit)."""
        rebuild = self.due_rebuild(now)
        if rebuild is not None:
            self.commit(rebuild, rebuild.build(), wall_ms)
        self.end_hold(now, wall_ms)

    def end_hold(self, now: float, wall_ms: int) -> None:
        """When the quorum's hold is over: update M and take over the items that waited."""
        if self._quorum is None or not self._hold_pending or self._quorum.holding(now):
            return
        self._hold_pending = False
        self._last_eval = now
        self._requorum(self._table, wall_ms, always=True)

    def due_rebuild(self, now: float) -> Rebuild | None:
        """The table change due at `now`, if any. Its build() may run in another thread;
        then hand the result to commit(). Nothing else may be called in between."""
        self._evaluate(now)
        if self._pending_since is None or now < self._pending_since + self.coalesce_time:
            return None
        self._pending_since = None
        desired = self._desired(now)
        if desired == dict(self._table.members):
            return None  # the change was undone within the coalesce window
        eager = len(self._items) * len(desired) > DIRECT_LIMIT
        return Rebuild(self._table, desired, eager)

    def commit(self, rebuild: Rebuild, built: Built, wall_ms: int) -> None:
        """Install a built table and emit what changed hands."""
        old, new = rebuild.old, built.table
        if old is not self._table:
            raise ValueError("commit of a rebuild that is not based on the current table")
        self._table = new
        self._fallen &= set(new.members)  # fallen members that already re-settled stay in
        self._outbox.append(
            OwnershipChanged(
                members=tuple(new.member_names()),
                added=tuple(sorted(set(new.members) - set(old.members))),
                removed=tuple(sorted(set(old.members) - set(new.members))),
                moved_partitions=built.moved_partitions,
                partitions_owned=(
                    new.partition_counts().get(self.name, 0) if new.materialized else None
                ),
            )
        )
        if self._quorum is not None and set(old.members) - set(new.members):
            self._quorum.hold(self._last_eval)
            self._hold_pending = True
        self._requorum(old, wall_ms, always=True)
        for item in self._fencing.heard_items():
            self._forward(item)

    def learn(self, item: str, token: int, wall_ms: int) -> None:
        """A TokenNote for this node: `token` was issued for `item` elsewhere. Held with a token
        not above it, the item is released and acquired again above it (token_raised); not
        held, the token is kept for the next acquisition and passed on to the item's owner in
        this node's table."""
        held = self._held.get(item)
        if held is None:
            if self._fencing.hear(item, token):
                self._forward(item)
        elif token >= held:
            self._fencing.hear(item, token)
            self._outbox.append(ItemReleased(item, held, "token_raised", self.name))
            self._held[item] = self._fencing.issue(item, wall_ms)
            self._outbox.append(ItemAcquired(item, self._held[item], "token_raised", self.name))

    def next_deadline(self) -> float | None:
        deadlines = [
            since + self.settle_time
            for name, since in self._alive_since.items()
            if name not in self._table.members and since + self.settle_time > self._last_eval
        ]
        if self._pending_since is not None:
            deadlines.append(self._pending_since + self.coalesce_time)
        if self._quorum is not None and self._hold_pending:
            deadlines.append(self._quorum.hold_until)
        return min(deadlines, default=None)

    def set_items(self, now: float, items: Iterable[str], wall_ms: int) -> None:
        """Replace the declared work items; acquires/releases at once what changed."""
        self._items = frozenset(items)
        self._reconcile(self._table, self._table, wall_ms)

    def leave(self, wall_ms: int) -> None:
        """This node is leaving: release every held item now and take no more."""
        self._leaving = True
        self._reconcile(self._table, self._table, wall_ms)

    def take_outputs(self) -> list[OwnershipOutput]:
        out, self._outbox = self._outbox, []
        return out

    # ---- internals -----------------------------------------------------------

    def _desired(self, now: float) -> dict[str, float]:
        desired: dict[str, float] = {}
        for name, info in self._view.items():
            kept = name in self._table.members and name not in self._fallen
            settled = self._settled(name, now)
            if info.is_alive_or_suspect and (kept or settled):
                desired[name] = member_weight(info)
        if not self._leaving and (
            self.name in self._table.members or self._settled(self.name, now)
        ):
            desired[self.name] = member_weight(self._self_info) if self._self_info else 1.0
        return desired

    def _settled(self, name: str, now: float) -> bool:
        # The same sum as in next_deadline, so a timer fired at that deadline sees it settled
        # (now - since >= settle can round the other way).
        return now >= self._alive_since.get(name, math.inf) + self.settle_time

    def _evaluate(self, now: float) -> None:
        self._last_eval = now
        if self._pending_since is None and self._desired(now) != dict(self._table.members):
            self._pending_since = now

    def _requorum(self, old: PartitionTable, wall_ms: int, *, always: bool) -> None:
        """Re-judge the quorum; reconcile if `always`, if the verdict changed, or if takeovers
        were waiting (then against the table they were waiting from, for their reasons)."""
        if self._quorum is None:
            if always:
                self._reconcile(old, self._table, wall_ms)
            return
        change = self._quorum.judge(self._last_eval, self._table.members, self._view)
        self._regained = self._regained or change == "regained"
        if always or change or self._deferred is not None:
            old, self._deferred = self._deferred or old, None
            self._reconcile(old, self._table, wall_ms)

    def _reconcile(self, old: PartitionTable, new: PartitionTable, wall_ms: int) -> None:
        """Release and acquire declared items so that _held matches `new`."""
        regained, quorum = self._regained, self._quorum
        if self._leaving or not self.quorate:
            mine: set[str] = set()
        else:
            mine = {i for i in self._items if new.direct_owner(i) == self.name}
            if quorum is not None and not quorum.may_take(self._last_eval, new.members, self._view):
                if mine - set(self._held):  # takeovers wait (see quorum)
                    self._deferred = self._deferred or old
                mine &= set(self._held)
        others: dict[str, float] | None = None
        for item in sorted(set(self._held) - mine):
            successor = new.direct_owner(item)
            if successor == self.name:  # given up while still ours: the next member in line
                others = others or {m: w for m, w in new.members.items() if m != self.name}
                key = hrw.partition_hash(new.partition_of(item))
                successor = hrw.rank(key, others, 1)[0] if others else None
            reason = self._release_reason(item, old, successor)
            token = self._held.pop(item)
            self._outbox.append(ItemReleased(item, token, reason, successor))
            if successor is not None and reason not in ("undeclared", "quorum_lost"):
                self._outbox.append(TokenNote(successor, item, token))
                self._fencing.handed_over(item, token, successor)
        for item in sorted(mine - set(self._held)):
            previous = old.direct_owner(item)
            self._held[item] = self._fencing.issue(item, wall_ms)
            reason = "quorum_regained" if regained else self._acquire_reason(item, old, previous)
            self._outbox.append(ItemAcquired(item, self._held[item], reason, previous))
        if self._deferred is None:
            self._regained = False

    def _forward(self, item: str) -> None:
        """Pass a heard token for an item not held here on to its owner in this node's table."""
        owner = self._table.direct_owner(item)
        if item in self._held or owner is None or owner == self.name:
            return
        token = self._fencing.to_tell(item, owner)
        if token is not None:
            self._outbox.append(TokenNote(owner, item, token))

    def _release_reason(self, item: str, old: PartitionTable, successor: str | None) -> str:
        if self._leaving:
            return "leaving"
        if not self.quorate:
            return "quorum_lost"
        if item not in self._items:
            return "undeclared"
        if successor is not None and successor not in old.members:
            return "member_joined"
        return "rebalanced"

    def _acquire_reason(self, item: str, old: PartitionTable, previous: str | None) -> str:
        if previous is None:
            return "initial"
        if previous == self.name:
            return "declared"  # we owned its partition already; the item is newly declared
        if previous not in self._table.members:
            info = self._view.get(previous)
            left = info is not None and info.state == MemberState.LEFT
            return "owner_left" if left else "owner_failed"
        return "rebalanced"

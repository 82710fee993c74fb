"""The store follows membership: placement, the known members and the majority.

Rules:
- On every member event the view's placement is rebuilt (view.py), R for
  quorums is recomputed (a death or a reap changes it too, not only
  placement), and the partitions this node has just become a replica of are
  pending until filled (fill.py).
- The most members ever placed over is kept: with replicas "all", it sizes
  the quorum a purge needs.
- The known members are persisted as they change; a storage error keeps the
  change in memory, to be stored with the next one.
- A failed store exchange makes its peer doubted (not counted toward the
  majority) until an exchange with it succeeds.
- On regaining a majority every partition this node replicates is pending
  again and the ledger forgets its contacts: while it was cut off the others
  went on writing, and its copies may lack what they acknowledged.
- Each change that should start anti-entropy at once is reported as True.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import structlog

from gossip.core.types import MemberInfo
from gossip.runtime.store.fill import FillState
from gossip.runtime.store.ledger import Ledger
from gossip.runtime.store.storage import KVStorage, StorageError
from gossip.runtime.store.view import StoreView

log = structlog.get_logger("gossip.kv")


class Following:
    def __init__(
        self,
        me: str,
        view: StoreView,
        storage: KVStorage,
        fill: FillState,
        ledger: Ledger,
        storage_failed: Callable[[StorageError, str], None],
    ) -> None:
        self._me = me
        self._view = view
        self._storage = storage
        self._fill = fill
        self._ledger = ledger
        self._storage_failed = storage_failed
        self.most_members = 1
        """The most members placement has ever been computed over."""
        self.replication = 1
        """R for quorums (view.py)."""

    def rebuild(self, members: Sequence[MemberInfo], now: float) -> bool:
        """A member event: True when anti-entropy should run now (new replicas to
        fill, hand-offs, or a majority regained)."""
        view = self._view
        entered = view.rebuild(members, now)
        regained = self._follow_known_members(members)
        # R changes with any member event (a death or a reap too), not only placement.
        self.replication = view.replication()
        if entered is None:
            return regained
        self.most_members = max(self.most_members, len(view.placement.members))
        self._fill.entered(entered)
        return True

    def reached(self, name: str, ok: bool, members: Callable[[], Sequence[MemberInfo]]) -> bool:
        """The outcome of a store exchange with `name`: a failure makes it doubted
        until an exchange succeeds. True when a majority was regained."""
        doubted = self._view.doubted
        if name == self._me or (name in doubted) != ok:
            return False
        if ok:
            doubted.discard(name)
        else:
            doubted.add(name)
        return self._follow_known_members(members())

    def _follow_known_members(self, members: Sequence[MemberInfo]) -> bool:
        """Keep the known members (persisted) and the majority verdict current;
        True on regaining a majority."""
        view = self._view
        was = view.majority.quorate
        added, removed = view.observe(members)
        if added or removed:
            try:
                self._storage.remember_members(added, removed)
            except StorageError as exc:  # kept in memory; stored with the next change
                self._storage_failed(exc, "known_members")
        now = view.majority
        if now.quorate == was:
            return False
        if not now.quorate:
            log.warning("kv_majority_lost", seen=now.seen, known=now.known)
            return False
        self._fill.entered(view.mine)
        self._ledger.lost_contact()
        log.info("kv_majority_regained", seen=now.seen, known=now.known)
        return True

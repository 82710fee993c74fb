"""This agent's view of where store data lives: placement and its recent past.

Rules:
- Placement is computed over the live (alive and suspect) members whose store
  settings hash (member tag SETTINGS_TAG) equals ours or is absent; a member
  with another hash is kept out, logged once per hash as kv_settings_mismatch.
- The previous placement is kept, with the time it was replaced: for a while a
  read also asks a key's former replicas (they keep their copy until their
  hand-off has ended).
- "Near" partitions are those this node would replicate if one member left:
  what a leaving member may hand it, so peers may sync them here.
- R for quorums is the configured replica count capped by the members this node
  has known (gossip.core.store.majority): an isolated agent keeps counting the
  members it lost, reaped or not.
- Quorum reads and writes need a majority of those known members alive here
  (`majority`); the caller persists who joins and leaves that set.
Pure bookkeeping: the caller passes the member list and the time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence

import structlog

from gossip.core.store.majority import KnownMembers, Majority
from gossip.core.store.placement import Placement
from gossip.core.types import MemberInfo, MemberState
from gossip.runtime.store.settings import StoreSettings

SETTINGS_TAG = "kv"
LIVE_STATES = (MemberState.ALIVE, MemberState.SUSPECT)

log = structlog.get_logger("gossip.kv")


def settings_hash(s: StoreSettings) -> str:
    """What must match on every agent of a cluster, hashed: where keys live."""
    text = f"partitions={s.partitions};replicas={'all' if s.replicas is None else s.replicas}"
    return hashlib.blake2b(text.encode(), digest_size=4).hexdigest()


class StoreView:
    def __init__(
        self,
        me: str,
        settings: StoreSettings,
        known: Collection[str] = (),
        *,
        expects_peers: bool = False,
    ) -> None:
        self.me = me
        self.known = KnownMembers(me, known, expects_peers=expects_peers)
        self.majority: Majority = self.known.verdict([])
        self.doubted: set[str] = set()
        """Members whose last store exchange with this node failed."""
        self.settings = settings
        self.hash = settings_hash(settings)
        self.placement = self._placement([me])
        self.peers: frozenset[str] = frozenset()
        """The placement's members but this one: a new set only when placement changes."""
        self.earlier: Placement | None = None
        self.changed_at = 0.0
        self.near = self._near([me])
        self.mine = frozenset(self.placement.partitions_of(me))
        self.mismatched: dict[str, str] = {}
        """Members kept out of placement, with their settings hash."""

    def _placement(self, names: Collection[str], extra: int = 0) -> Placement:
        s = self.settings
        r = None if s.replicas is None else s.replicas + extra
        return Placement(names, partitions=s.partitions, replicas=r)

    def _near(self, names: Collection[str]) -> Placement | None:
        return None if self.settings.replicas is None else self._placement(names, extra=1)

    def rebuild(self, members: Sequence[MemberInfo], now: float) -> frozenset[int] | None:
        """Follow a membership change: the partitions this node newly replicates,
        or None when placement did not change."""
        names = {self.me}
        for m in members:
            if m.state not in LIVE_STATES or m.name == self.me:
                continue
            theirs = m.tags.get(SETTINGS_TAG)
            if theirs is not None and theirs != self.hash:
                if self.mismatched.get(m.name) != theirs:
                    log.error(
                        "kv_settings_mismatch",
                        member=m.name,
                        theirs=theirs,
                        ours=self.hash,
                        action="kept out of data placement",
                    )
                self.mismatched[m.name] = theirs
                continue
            self.mismatched.pop(m.name, None)
            names.add(m.name)
        if tuple(sorted(names)) == self.placement.members:
            return None
        self.earlier, self.changed_at = self.placement, now
        self.placement = self._placement(names)
        self.peers = frozenset(self.placement.members) - {self.me}
        self.near = self._near(names)
        mine = frozenset(self.placement.partitions_of(self.me))
        entered, self.mine = mine - self.mine, mine
        log.info("kv_placement_changed", members=len(names))
        return entered

    def observe(self, members: Sequence[MemberInfo]) -> tuple[set[str], set[str]]:
        """Follow the member list into the known members: (joined, left), to persist.
        Call after rebuild, which finds the members with other settings."""
        changed = self.known.observe(members, excluded=self.mismatched)
        self.majority = self.known.verdict(members, self.doubted)
        return changed

    def replication(self) -> int:
        known = len(self.known.names)
        r = self.settings.replicas
        return known if r is None else min(r, known)

    def replacements(self, key: str, gone: Collection[str]) -> Sequence[str]:
        """The key's replicas once the members `gone` have left."""
        return self._placement(set(self.placement.members) - set(gone)).replicas_of_key(key)

    def earlier_replicas(self, key: str, now: float, window: float) -> Sequence[str]:
        """Live members that replicated the key before the last change (if that was
        less than `window` ago) and no longer do."""
        if self.earlier is None or now - self.changed_at > window:
            return ()
        current = set(self.placement.replicas_of_key(key))
        live = self.placement.members
        return [n for n in self.earlier.replicas_of_key(key) if n not in current and n in live]

    def is_near(self, part: int) -> bool:
        """Replicated here now, or if one member left."""
        if part in self.mine:
            return True
        return self.near is None or self.me in self.near.replicas(part)

"""How a membership update changes the member table: the merge rules.

Rules:
- Every update is merged by members.supersedes (higher incarnation wins; at
  equal incarnation alive < suspect < dead < left); what supersedes our
  belief is recorded, reported and gossiped on, anything else is dropped.
- An update about this node goes to its Identity: one that accuses it (at
  its incarnation or above) is refuted, a stale accusation is reasserted
  against, and a claim on its name from another address is reported.
- Name conflicts (one name, two live addresses): the higher incarnation
  wins; at equal incarnation the address already holding the name keeps it.
- A peer that gossips a suspicion or death older than the alive we hold is
  told the alive directly (it missed a refutation).
- A remote table (push-pull) is folded in entry by entry; a remote `dead`
  only makes us suspect, or settles a suspicion we hold at that incarnation.
- A dead or left member is reaped after dead_reap_time unless it changed.
"""

from __future__ import annotations

from collections.abc import Callable

from gossip.core.membership import forceleave
from gossip.core.membership import outputs as out
from gossip.core.membership.config import Config
from gossip.core.membership.counters import CountFn
from gossip.core.membership.dissemination import Disseminator
from gossip.core.membership.identity import Identity
from gossip.core.membership.lifeguard import Health
from gossip.core.membership.members import ALIVE, DEAD, LEFT, SUSPECT, MemberTable, supersedes
from gossip.core.membership.messages import Alive, Dead, Left, Prune, StateEntry, Suspect
from gossip.core.membership.pushpull import Syncer
from gossip.core.membership.staterows import StateRows
from gossip.core.membership.suspecting import Suspicions
from gossip.core.membership.tags import freeze_tags
from gossip.core.membership.timers import TimerHeap
from gossip.core.membership.wire import alive_from_entry, encode_message, entry_from_alive
from gossip.core.types import Address, MemberInfo, MemberState


class Updates:
    def __init__(
        self,
        me: Identity,
        cfg: Config,
        *,
        table: MemberTable,
        timers: TimerHeap,
        rows: StateRows,
        gossip: Disseminator,
        suspicions: Suspicions,
        syncer: Syncer,
        health: Health,
        emit: Callable[[out.Output], None],
        count: CountFn,
    ) -> None:
        self._me = me
        self._cfg = cfg
        self._table = table
        self._timers = timers
        self._rows = rows
        self._send = gossip.send
        self._enqueue = gossip.enqueue
        self._remember = gossip.remember
        self._suspicions = suspicions
        self._syncer = syncer
        self._health = health
        self._emit = emit
        self._count = count

    def correct_if_stale(self, src: Address, name: str, inc: int) -> None:
        """`src` gossips a suspicion or death older than the alive we hold:
        it missed a refutation, so tell it directly (a lost refutation would
        otherwise let its suspicion timer kill a live member)."""
        cur = self._table.get(name)
        if cur is not None and cur.state == ALIVE and inc < cur.incarnation:
            self._count("corrections_sent")
            self._send(src, Alive(name, cur.incarnation, cur.address, cur.tags))

    def on_alive(self, now: float, a: Alive, raw: bytes | None = None, gossip: bool = True) -> None:
        if a.name == self._me.name:
            self._alive_about_self(now, a)
            return
        cur = self._table.get(a.name)
        if cur is not None:
            self._remember(raw)
            inc = cur.incarnation
            if a.incarnation < inc or (a.incarnation == inc and cur.state != ALIVE):
                return  # stale, or loses to suspect/dead/left at this incarnation
            if a.incarnation == inc:
                if a.address != cur.address:
                    self._name_conflict(cur, a.address, winner=cur.address)
                return  # duplicate (tags change only with a new incarnation)
        info = MemberInfo(a.name, a.address, ALIVE, a.incarnation, freeze_tags(a.tags), now)
        self._table.put(info)
        if raw is not None:
            self._remember(raw)
            self._rows.note(info, entry_from_alive(raw))
        if gossip:
            self._enqueue(now, a.name, a, raw)
        if cur is None or cur.state >= DEAD:
            self._syncer.forget(a.name)
            self._emit(out.MemberJoined(info))
            return
        if cur.address != a.address:
            self._name_conflict(cur, a.address, winner=a.address)
        if cur.state == SUSPECT:
            self._suspicions.drop(a.name)
            self._emit(out.MemberRecovered(info))
        elif cur.address != a.address or dict(cur.tags) != dict(a.tags):
            self._emit(out.MemberUpdated(info))

    def _alive_about_self(self, now: float, a: Alive) -> None:
        me = self._me
        if a.address != me.address:
            # Another node claims our name: do not fight over it (each
            # refutation would provoke the other); report it.
            info = me.info(now)
            self._name_conflict(info, a.address, winner=_winner(info, a))
        elif a.incarnation > me.incarnation and not me.leaving:
            me.refute(now, "alive", a.name, a.incarnation)

    def _name_conflict(self, holder: MemberInfo, other: Address, winner: Address) -> None:
        self._count("name_conflicts")
        self._emit(out.NameConflict(holder.name, holder.address, other, winner))

    def on_suspect(self, now: float, s: Suspect, raw: bytes | None = None) -> None:
        me = self._me
        if s.name == me.name:
            if s.incarnation >= me.incarnation and not me.leaving:
                me.refute(now, "suspect", s.accuser, s.incarnation)
            else:
                me.reassert(now)
            return
        self._suspicions.suspect(now, s.name, s.incarnation, s.accuser, raw)

    def declare_dead(self, now: float, cur: MemberInfo, accuser: str, confirmations: int) -> None:
        """A suspicion of `cur` ran its course: declare it dead and gossip that."""
        self._declare(now, cur, DEAD, accuser, confirmations)
        self._enqueue(now, cur.name, Dead(cur.name, cur.incarnation, self._me.name), None)

    def on_dead(self, now: float, d: Dead, raw: bytes | None = None) -> None:
        me = self._me
        if d.name == me.name:
            if d.incarnation >= me.incarnation and not me.leaving:
                me.refute(now, "dead", d.accuser, d.incarnation)
            else:
                me.reassert(now)
            return
        cur = self._table.get(d.name)
        if cur is None:
            return
        self._remember(raw, (d.name, d.incarnation))
        if not supersedes(d.incarnation, DEAD, cur.incarnation, cur.state):
            return
        susp = self._suspicions.drop(d.name)
        cur = MemberInfo(cur.name, cur.address, cur.state, d.incarnation, cur.tags, now)
        self._declare(now, cur, DEAD, d.accuser, susp.confirmations if susp else 0)
        self._enqueue(now, d.name, d, raw)

    def on_left(self, now: float, msg: Left, raw: bytes | None = None) -> None:
        me = self._me
        if msg.name == me.name:
            if msg.incarnation >= me.incarnation and not me.leaving:
                me.refute(now, "left", msg.name, msg.incarnation)
            return
        cur = self._table.get(msg.name)
        if cur is None:
            return
        self._remember(raw)
        if not supersedes(msg.incarnation, LEFT, cur.incarnation, cur.state):
            return
        self._suspicions.drop(msg.name)
        cur = MemberInfo(cur.name, cur.address, cur.state, msg.incarnation, cur.tags, now)
        self._declare(now, cur, LEFT, msg.name, 0)
        self._enqueue(now, msg.name, msg, raw)

    def on_prune(self, now: float, msg: Prune, raw: bytes | None = None) -> None:
        me = self._me
        if msg.name == me.name:
            if msg.incarnation >= me.incarnation and not me.leaving:
                me.refute(now, "left", msg.name, msg.incarnation)
            return
        cur = self._table.get(msg.name)
        self._remember(raw)
        if not forceleave.prune_applies(cur, msg.incarnation):
            return
        self._suspicions.drop(msg.name)
        self._syncer.forget(msg.name)
        self._table.remove(msg.name)
        self._emit(out.MemberReaped(msg.name))
        self._enqueue(now, msg.name, msg, raw)

    def merge(self, now: float, entries: list[tuple[bytes, StateEntry]], gossip_new: bool) -> None:
        """Fold a remote table into ours; what is news to us is gossiped on,
        as in memberlist (this is how a healed partition spreads). A remote
        `dead` only makes us suspect (our own timers decide), or settles a
        suspicion we already hold at that incarnation."""
        me, table = self._me.name, self._table
        for raw, e in entries:
            cur = table.get(e.name)
            if (
                cur is not None
                and cur.incarnation == e.incarnation
                and cur.state == e.state
                and cur.address == e.address
            ):
                continue  # nothing new (the common case)
            # Applied with the bytes gossip carries the same update in, so
            # that its gossiped copies are then recognised unparsed.
            if e.state == ALIVE:
                alive = Alive(e.name, e.incarnation, e.address, e.tags)
                self.on_alive(now, alive, alive_from_entry(raw), gossip_new or cur is not None)
            elif e.state == LEFT:
                left = Left(e.name, e.incarnation)
                self.on_left(now, left, encode_message(left))
            elif e.name == me:
                self.on_suspect(now, Suspect(me, e.incarnation, "push_pull"))
            elif e.state == DEAD:
                self._suspicions.remote_death(now, e.name, e.incarnation)
            else:
                self._suspicions.suspect(now, e.name, e.incarnation, me, hearsay=True)

    def _declare(
        self, now: float, cur: MemberInfo, state: MemberState, accuser: str, confirmations: int
    ) -> None:
        """Record `cur` as dead or left, notify, and arrange its reaping."""
        info = MemberInfo(cur.name, cur.address, state, cur.incarnation, cur.tags, now)
        self._table.put(info)
        if state == DEAD:
            self._emit(out.MemberFailed(info, accuser, confirmations, self._health.score))
            self._syncer.member_died(now, info)
        else:
            self._syncer.forget(info.name)
            self._emit(out.MemberLeft(info))
        self._timers.add(now + self._cfg.dead_reap_time, self._reap, info)

    def _reap(self, now: float, info: MemberInfo) -> None:
        if self._table.get(info.name) is info:
            self._table.remove(info.name)
            self._emit(out.MemberReaped(info.name))


def _winner(holder: MemberInfo, claim: Alive) -> Address:
    """Name conflict rule: the higher incarnation wins; at equal incarnation the
    node that already holds the name keeps it."""
    return claim.address if claim.incarnation > holder.incarnation else holder.address

"""The suspicions a node holds: when they start, are confirmed, get their last
call, and become deaths.

Rules:
- A suspicion of a known member that supersedes our belief (members.py)
  starts one: the member becomes suspect, and its Lifeguard timeout depends
  on the cluster size (suspicion.py holds the math). At the incarnation
  already suspected, each new accuser confirms it (an earlier deadline) and
  the suspicion is gossiped again.
- At its deadline an unconfirmed suspicion gets a last call: gossiped once
  more, with one more probe interval to run, so whoever holds a newer alive
  can correct it and the suspect can refute. Then the node declares the
  member dead (`declare_dead`, which the node passes in).
- A push-pull peer's death verdict about a member we suspect at that
  incarnation settles our suspicion at its minimum timeout; about any other
  member it only makes us suspect.
- A suspicion taken on hearsay (a push-pull table held the member suspect
  or dead) is ours, not an accusation: it never confirms one, and it is told
  to the suspect alone (so it refutes) instead of gossiped. Gossiped under
  our name it would count as an independent confirmation wherever the member
  is suspected already, the original accuser included, and cut short the
  very timeout that lets the suspect refute after a partition heals.
- The node drops a suspicion when the member is heard alive at a higher
  incarnation, dead or left; a timer of a dropped suspicion is then stale.
"""

from __future__ import annotations

from collections.abc import Callable

from gossip.core.membership import outputs as out
from gossip.core.membership.config import Config
from gossip.core.membership.counters import CountFn
from gossip.core.membership.lifeguard import expected_confirmations, suspicion_min_timeout
from gossip.core.membership.members import SUSPECT, MemberTable, supersedes
from gossip.core.membership.messages import Message, Suspect
from gossip.core.membership.suspicion import Suspicion
from gossip.core.membership.timers import TimerHeap
from gossip.core.types import Address, MemberInfo

TellFn = Callable[[Address, Message], object]
"""tell(to, message): send one update to one member directly."""
EnqueueFn = Callable[[float, str, Message, bytes | None], None]
"""enqueue(now, key, update, raw): queue an update for gossip."""
RememberFn = Callable[[bytes | None, tuple[str, int] | None], None]
"""remember(raw, accused): cache an applied update's bytes."""
DeclareDeadFn = Callable[[float, MemberInfo, str, int], None]
"""declare_dead(now, member, accuser, confirmations): the node's verdict."""


class Suspicions:
    """The suspicions of one node, by member name, and their timers."""

    def __init__(
        self,
        name: str,
        cfg: Config,
        *,
        table: MemberTable,
        timers: TimerHeap,
        enqueue: EnqueueFn,
        tell: TellFn,
        remember: RememberFn,
        count: CountFn,
        emit: Callable[[out.Output], None],
        declare_dead: DeclareDeadFn,
    ) -> None:
        self._name = name
        self._cfg = cfg
        self._table = table
        self._timers = timers
        self._enqueue = enqueue
        self._tell = tell
        self._remember = remember
        self._count = count
        self._emit = emit
        self._declare_dead = declare_dead
        self._by_name: dict[str, Suspicion] = {}

    def get(self, name: str) -> Suspicion | None:
        return self._by_name.get(name)

    def drop(self, name: str) -> Suspicion | None:
        """Forget the suspicion of `name` (refuted, dead or left), if any."""
        return self._by_name.pop(name, None)

    def suspect(
        self,
        now: float,
        name: str,
        inc: int,
        accuser: str,
        raw: bytes | None = None,
        *,
        hearsay: bool = False,
    ) -> None:
        """`accuser` suspects `name` at `inc` (`raw`: the bytes it came in); with `hearsay`
        we only learned that someone does (see the rules)."""
        cur = self._table.get(name)
        if cur is None:
            return
        self._remember(raw, (name, inc))
        msg = Suspect(name, inc, accuser)
        if cur.state == SUSPECT and inc == cur.incarnation:
            if hearsay:
                return  # no independent evidence: not a confirmation
            susp = self._by_name.get(name)
            if susp is not None and susp.confirm(accuser):
                self._timers.add(susp.deadline, self._expired, susp)
                self._enqueue(now, name, msg, raw)
            return
        if not supersedes(inc, SUSPECT, cur.incarnation, cur.state):
            return
        # A new suspicion. Over a suspicion (or death) at a lower incarnation
        # it starts afresh: the member refuted that one, so its timer is void.
        info = MemberInfo(name, cur.address, SUSPECT, inc, cur.tags, now)
        self._table.put(info)
        n = len(self._table)
        cfg = self._cfg
        min_s = suspicion_min_timeout(cfg.suspicion_mult, n, cfg.probe_interval)
        susp = Suspicion(
            name,
            inc,
            accuser,
            now,
            expected_confirmations(cfg.suspicion_mult, n),
            min_s,
            min_s * cfg.suspicion_max_timeout_mult,
        )
        self._by_name[name] = susp
        self._timers.add(susp.deadline, self._expired, susp)
        if hearsay:
            self._tell(cur.address, msg)
        else:
            self._enqueue(now, name, msg, raw)
        self._count("suspicions")
        self._emit(out.MemberSuspected(info, accuser, 0, susp.timeout))

    def _expired(self, now: float, susp: Suspicion) -> None:
        if self._by_name.get(susp.name) is not susp or susp.deadline > now:
            return  # refuted, replaced, or moved later than this timer
        cur = self._table.get(susp.name)
        if cur is None or cur.state != SUSPECT:
            return
        if susp.confirmations < susp.k and not susp.last_call and not susp.settled:
            # Unconfirmed, so the timer ran long: perhaps only we missed the
            # refutation. Gossip the suspicion once more; whoever holds a newer
            # alive answers it with a correction, and the suspect refutes.
            susp.last_call = True
            self._count("suspicion_last_calls")
            self._enqueue(
                now, susp.name, Suspect(susp.name, susp.incarnation, susp.first_accuser), None
            )
            self._timers.add(now + self._cfg.probe_interval, self._expired, susp)
            return
        del self._by_name[susp.name]
        self._declare_dead(now, cur, susp.first_accuser, susp.confirmations)

    def remote_death(self, now: float, name: str, inc: int) -> None:
        """A push-pull peer holds `name` dead at `inc`. That alone only makes us
        suspect it (our own timers decide); but if we already suspect it at
        that incarnation, the peer's verdict settles our suspicion at its
        minimum timeout. Without this an observer that every copy of the death
        broadcast missed waits out its longest, unconfirmed timeout, however
        many peers' tables already hold the member dead."""
        cur = self._table.get(name)
        susp = self._by_name.get(name)
        if cur is not None and cur.state == SUSPECT and cur.incarnation == inc and susp is not None:
            if susp.settle():
                self._count("suspicions_settled")
                self._timers.add(susp.deadline, self._expired, susp)
            return
        self.suspect(now, name, inc, self._name, hearsay=True)

"""What a node says about itself: its incarnation, its alive, and its leave.

Rules:
- The incarnation only grows; each change is reported (IncarnationChanged) so
  the shell can persist it, and every announcement bumps it, so a new alive
  always outranks the cluster's memory of this node.
- The node's own alive goes into the broadcast queue without an ident: copies
  of it heard from others never cut its retransmissions short.
- A refutation answers an accusation with an incarnation above both ours and
  the accused one, and costs one point of health (Lifeguard).
- A stale accusation still circulating is answered by gossiping the current
  alive again, unless it is still queued.
- Once leaving, the node no longer refutes or reasserts; the leave completes
  (LeaveCompleted, once) when `left` has been sent its full retransmit count,
  after leave_timeout, or at once when no other member is live.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from gossip.core.membership import outputs as out
from gossip.core.membership.config import Config
from gossip.core.membership.counters import CountFn
from gossip.core.membership.dissemination import Disseminator
from gossip.core.membership.members import ALIVE, LEFT, MemberTable
from gossip.core.membership.messages import Alive, Left
from gossip.core.membership.timers import TimerHeap
from gossip.core.membership.wire import encode_message, wrap
from gossip.core.types import Address, MemberInfo, MemberState


class Identity:
    def __init__(
        self,
        name: str,
        address: Address,
        cfg: Config,
        *,
        incarnation: int,
        tags: Mapping[str, str],
        table: MemberTable,
        timers: TimerHeap,
        gossip: Disseminator,
        emit: Callable[[out.Output], None],
        count: CountFn,
        health_delta: Callable[[int, str], None],
    ) -> None:
        self.name = name
        self.address = address
        self.incarnation = incarnation
        self.tags = tags
        self.leaving = False
        self._cfg = cfg
        self._table = table
        self._timers = timers
        self._gossip = gossip
        self._emit = emit
        self._count = count
        self._health_delta = health_delta
        self._leave_done = False
        self._left_payload = b""
        self._self_payload = b""

    def info(self, now: float, state: MemberState = ALIVE) -> MemberInfo:
        return MemberInfo(self.name, self.address, state, self.incarnation, self.tags, now)

    def announce(self, now: float, incarnation: int) -> None:
        """Take `incarnation`, record ourselves alive and queue that alive."""
        if incarnation != self.incarnation:
            self.incarnation = incarnation
            self._emit(out.IncarnationChanged(incarnation))
        self._table.put(self.info(now), probe=False)
        alive = Alive(self.name, self.incarnation, self.address, self.tags)
        self._self_payload = wrap(encode_message(alive))
        self._gossip.queue.enqueue(self.name, self._self_payload)

    def refute(self, now: float, accused: str, accuser: str, accused_inc: int) -> None:
        self.announce(now, max(self.incarnation, accused_inc) + 1)
        self._gossip.schedule(now)
        self._count("refutations")
        self._emit(out.SelfRefuted(accused, accuser, self.incarnation))
        self._health_delta(1, "refuted")

    def reassert(self, now: float) -> None:
        """A stale accusation still circulates: someone missed our refutation,
        so gossip our current alive again (unless it is still queued)."""
        queue = self._gossip.queue
        if not self.leaving and not queue.pending(self.name, self._self_payload):
            queue.enqueue(self.name, self._self_payload)
            self._gossip.schedule(now)
            self._count("reassertions")

    def leave(self, now: float) -> None:
        """Record ourselves left and disseminate it."""
        self.leaving = True
        self._table.put(self.info(now, LEFT), probe=False)
        self._left_payload = wrap(encode_message(Left(self.name, self.incarnation)))
        self._gossip.queue.enqueue(self.name, self._left_payload)
        self._gossip.schedule(now)
        if self._table.live == 0:
            self._finish_leave(now, None)
        else:
            self._timers.add(now + self._cfg.leave_timeout, self._finish_leave)

    def gossip_round_done(self, now: float) -> None:
        """A leave is done once our `left` has been sent its full count."""
        if self.leaving and not self._gossip.queue.pending(self.name, self._left_payload):
            self._finish_leave(now, None)

    def _finish_leave(self, now: float, _: object) -> None:
        if not self._leave_done:
            self._leave_done = True
            self._emit(out.LeaveCompleted())

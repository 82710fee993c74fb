"""On-demand reachability checks: who answers a direct ping from here, now.

Rules: a check pings every given member once, directly (no helpers, no
stream), and records each ack's round trip (the difference of two `now`
inputs); when its timeout passes it is done and later acks are ignored. Its
pings use sequence numbers from SEQ_BASE up, a range the prober never
reaches, so their acks are told apart from probes' without a lookup in the
prober. A check changes no member state and no health score: it observes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gossip.core.membership.messages import Ping
from gossip.core.membership.timers import TimerHeap
from gossip.core.types import Address, MemberInfo

SEQ_BASE = 2**62
MAX_PENDING = 65536
"""Pings in flight across all checks; a check beyond it pings nobody more."""


@dataclass(slots=True)
class ReachCheck:
    started: float
    asked: dict[str, Address] = field(default_factory=dict)
    answered: dict[str, float] = field(default_factory=dict)
    """name -> round trip in seconds."""
    done: bool = False


class Reachability:
    def __init__(self, send: Callable[[Address, Ping], object], timers: TimerHeap) -> None:
        self._send = send
        self._timers = timers
        self._seq = 0
        self._pending: dict[int, tuple[str, ReachCheck]] = {}

    def check(self, now: float, members: Sequence[MemberInfo], timeout: float) -> ReachCheck:
        """Ping each of `members` now; the check is done after `timeout` seconds."""
        check = ReachCheck(now)
        seqs = []
        for m in members:
            if len(self._pending) >= MAX_PENDING:
                break
            self._seq += 1
            seq = SEQ_BASE + self._seq
            self._pending[seq] = (m.name, check)
            check.asked[m.name] = m.address
            seqs.append(seq)
            self._send(m.address, Ping(seq, m.name))
        self._timers.add(now + timeout, self._expire, (check, seqs))
        return check

    def on_ack(self, now: float, seq: int) -> None:
        entry = self._pending.pop(seq, None)
        if entry is not None:
            name, check = entry
            check.answered[name] = now - check.started

    def _expire(self, now: float, arg: tuple[ReachCheck, list[int]]) -> None:
        check, seqs = arg
        for seq in seqs:
            self._pending.pop(seq, None)
        check.done = True

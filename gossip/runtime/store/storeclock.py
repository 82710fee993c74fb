"""The store clock: the time the store stamps versions with and judges them by.

Rules: the store never stamps or judges by the raw wall clock. The store clock is
anchored to the wall clock once, at its first reading, and from then on advanced
by the monotonic clock (trio.current_time()), so a wall-clock step on a running
agent changes nothing. It is corrected by the lower median of the offsets
measured to live peers (gossip.core.store.clocksync): each anti-entropy roots
check carries both sides' readings. A node with no live peers uses its anchor,
except that an agent that expects peers (it was given seeds, or its data was
checked against peers before a restart) waits up to a grace period after start
for its first reading: before it has joined it knows no live peer, and its wall
clock may be an hour off. `refusal()` names why this node must not stamp or
accept writes now (its corrected clock disagrees with most of its peers, it has
live peers and has not measured any yet, or it is still in that grace period);
`ClockDisagrees` is that refusal as an error (HTTP 503); `trusted()` lets a
request wait a little for readings first. The verdict is computed again only
when it may have changed: once the readings change, with another live peer
set (the same set object means the same peers), once a kept reading may go
stale, at the end of the grace period; in between the last one is exact, so
keeping it moves no refusal in time.
"""

from __future__ import annotations

from collections.abc import Callable, Set
from dataclasses import replace

import structlog
import trio

from gossip.core.store.clocksync import ClockAgreement, ClockVerdict
from gossip.core.store.hlc import MAX_WALL_MS

RECHECK = 0.1
"""Seconds between checks while a request waits for the clock to be trusted."""
log = structlog.get_logger("gossip.kv")


class ClockDisagrees(Exception):
    """This node's store clock is not (yet) in agreement with its peers."""


class StoreClock:
    def __init__(
        self,
        wall_ms: Callable[[], int],
        live_peers: Callable[[], Set[str]],
        *,
        max_offset_ms: int,
        max_age: float,
    ) -> None:
        self._wall_ms = wall_ms
        self._live_peers = live_peers
        self.agreement = ClockAgreement(max_offset_ms, max_age)
        self._anchor: tuple[int, float] | None = None
        self._correction = 0
        self._reason: str | None = None
        self._wait_until: float | None = None
        self._measured_once = False
        self.on_first_reading: Callable[[], None] | None = None
        """Called once, at the first peer reading since start."""
        self._reading = trio.Event()
        self._verdict: ClockVerdict | None = None
        self._verdict_live: Set[str] | None = None
        self._verdict_changes = -1
        self._verdict_until = 0.0
        """The last verdict, the live set and readings it was computed from, and
        until when it holds."""

    def started(self, expect_peers: bool, grace: float) -> None:
        """At service start: an agent that expects peers stamps nothing until its first
        peer reading, for `grace` seconds at most (then it is alone and uses its anchor)."""
        self._wait_until = trio.current_time() + grace if expect_peers else None
        self._verdict = None

    def raw_ms(self) -> int:
        """The anchor plus the monotonic time since: blind to wall-clock steps."""
        mono = trio.current_time()
        if self._anchor is None:
            self._anchor = (self._wall_ms(), mono)
        wall, at = self._anchor
        return wall + round((mono - at) * 1000)

    def now_ms(self) -> int:
        """The corrected store clock (what stamps and judgements use)."""
        return min(max(self.raw_ms() + self._correction, 0), MAX_WALL_MS)

    def measured(self, peer: str, theirs_ms: int) -> None:
        """A peer's corrected reading, just received."""
        self._verdict = None
        if not self.agreement.observe(peer, theirs_ms - self.raw_ms(), trio.current_time()):
            log.warning("kv_clock_reading_ignored", peer=peer, reading=theirs_ms)
        elif not self._measured_once:
            self._measured_once = True  # of a live peer or not: the data has seen peers
            if self.on_first_reading is not None:
                self.on_first_reading()
        self.refresh()
        self._reading.set()
        self._reading = trio.Event()

    async def trusted(self, limit: float) -> None:
        """Wait, `limit` seconds at most, until this node may stamp: a request that
        arrives just after a join waits for the first readings instead of failing."""
        with trio.move_on_after(limit):
            while self.refusal() is not None:
                # A reading, or a peer becoming live (no event here), may settle it.
                with trio.move_on_after(RECHECK):
                    await self._reading.wait()

    def refresh(self) -> ClockVerdict:
        """The verdict (recomputed only when it may have changed, see the header);
        log when the correction or the verdict changes."""
        now = trio.current_time()
        live = self._live_peers()
        if (
            self._verdict is not None
            and live is self._verdict_live
            and self.agreement.changes == self._verdict_changes
            and now < self._verdict_until
        ):
            return self._verdict
        v = self.agreement.verdict(now, live)
        if self._wait_until is not None and (v.readings > 1 or now >= self._wait_until):
            self._wait_until = None
        if v.reason is None and self._wait_until is not None:
            v = replace(v, reason="no peer clock reading yet since start (the agent expects peers)")
        if v.correction_ms != self._correction:
            log.info(
                "kv_clock_corrected",
                correction_ms=v.correction_ms,
                was_ms=self._correction,
                readings=v.readings,
            )
            self._correction = v.correction_ms
        if v.reason != self._reason:
            (log.warning if v.reason else log.info)(
                "kv_clock_verdict", reason=v.reason, readings=v.readings, agreeing=v.agreeing
            )
            self._reason = v.reason
        until = self.agreement.stable_until()
        if self._wait_until is not None:
            until = min(until, self._wait_until)
        self._verdict, self._verdict_live, self._verdict_until = v, live, until
        self._verdict_changes = self.agreement.changes
        return v

    def refusal(self) -> str | None:
        return self.refresh().reason

    def check(self) -> None:
        """Raise ClockDisagrees when this node must not stamp a write now."""
        reason = self.refusal()
        if reason is not None:
            raise ClockDisagrees(f"this node's store clock is not trusted: {reason}")

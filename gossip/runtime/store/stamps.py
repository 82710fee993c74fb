"""Versions: this node's stamped by the hybrid clock over the store clock, others' judged.

Rules:
- The hybrid clock starts past every stored version, even one far ahead of the
  wall clock now: this node's new writes outrank what it wrote before a
  restart.
- A version is stamped only while the store clock is trusted (storeclock.py;
  ClockDisagrees otherwise); a stamp after a version a replica holds (or its
  purge watermark) outranks that version.
- A record stamped more than the clock's max offset ahead of the store clock
  (or of the hybrid clock, which after a restart may run ahead of it) is
  refused, counted in kv_records_refused_total and logged; the hybrid clock
  moves past every record kept.
- Once the store clock has had a peer's reading the data is marked as checked
  with peers (persisted): after a restart such a node waits for a peer's
  reading before stamping, even without seeds.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence, Set

import structlog

from gossip.core.store.hlc import HybridClock, Timestamp
from gossip.core.store.record import Record
from gossip.runtime.metrics import Counter
from gossip.runtime.store.storage import KVStorage, StorageError
from gossip.runtime.store.storeclock import StoreClock

CLOCK_READING_AGE = 60.0
"""Seconds a peer's clock reading counts at least (longer with a slow sync interval)."""
CLOCK_START_GRACE = 30.0
"""Seconds at least that an agent expecting peers waits for a first clock reading."""
CLOCK_CHECKED_META = "clock_checked_with_peers"

log = structlog.get_logger("gossip.kv")


class Stamps:
    def __init__(
        self,
        name: str,
        storage: KVStorage,
        wall_ms: Callable[[], int],
        live_peers: Callable[[], Set[str]],
        refused: Counter,
        *,
        sync_period: float,
    ) -> None:
        self._name = name
        self._storage = storage
        self._refused = refused
        self._clock = HybridClock(name)
        self._clock.advance(*storage.max_version())
        self.store_clock = StoreClock(
            wall_ms,
            live_peers,
            max_offset_ms=self._clock.max_offset_ms,
            max_age=max(CLOCK_READING_AGE, 10 * sync_period),
        )
        self.store_clock.on_first_reading = self._remember_peers

    def start(self, expects_peers: bool, sync_period: float) -> None:
        """Start the store clock: a node given seeds, or whose data was checked with
        peers before, waits a grace period for its first peer reading."""
        checked = self._storage.get_meta(CLOCK_CHECKED_META) == 1
        grace = max(CLOCK_START_GRACE, 3 * sync_period)
        self.store_clock.started(expects_peers or checked, grace)

    def stamp(self) -> Timestamp:
        """A new version; ClockDisagrees when this node's store clock is not trusted."""
        self.store_clock.check()
        return self._clock.now(self.store_clock.now_ms())

    def stamp_after(self, newer: tuple[int, int]) -> Timestamp:
        """A stamp above a version a replica holds (or its purge watermark)."""
        self.store_clock.check()
        return self._clock.now_after(self.store_clock.now_ms(), Timestamp(*newer, self._name))

    def plausible(self, wall_ms: int) -> bool:
        """Whether a version's wall time is within the max clock offset of our store
        clock (or of the hybrid clock, which after a restart may run ahead of it)."""
        now = max(self.store_clock.now_ms(), self._clock.last[0])
        return wall_ms <= now + self._clock.max_offset_ms

    def accept(self, records: Sequence[Record]) -> list[Record]:
        """The records whose stamps are plausible here (the rest are refused and
        counted); the clock moves past the ones kept."""
        now = self.store_clock.now_ms()
        kept = [r for r in records if self.plausible(r.version.wall)]
        if len(kept) < len(records):
            ahead = [r for r in records if not self.plausible(r.version.wall)]
            self._refused.inc(len(ahead), labels={"reason": "clock_ahead"})
            log.warning(
                "kv_record_refused",
                reason="clock_ahead",
                records=len(ahead),
                key=ahead[0].key,
                version=str(ahead[0].version),
                ahead_ms=ahead[0].version.wall - now,
                max_offset_ms=self._clock.max_offset_ms,
            )
        for r in kept:
            self._clock.observe(now, r.version)
        return kept

    def _remember_peers(self) -> None:
        """This data has been checked against peers' clocks: after a restart, wait for
        a peer's reading before stamping, even without seeds."""
        try:
            if self._storage.get_meta(CLOCK_CHECKED_META) != 1:
                self._storage.set_meta(CLOCK_CHECKED_META, 1)
        except (sqlite3.Error, StorageError) as exc:
            log.warning("kv_clock_meta_failed", error=str(exc))

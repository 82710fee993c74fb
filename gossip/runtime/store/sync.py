"""Periodic anti-entropy, partition hand-off and tombstone GC for the store service.

Rules:
- Every `sync_interval` seconds (jittered +-20 %, so agents do not run in step)
  each node picks, for each partition it replicates, one fellow replica at
  random (the first in one shuffled member order per round, so that partitions
  share peers); one "kv-roots" round trip per peer compares
  the roots of all partitions picked for it, and only partitions whose roots
  differ get a SyncSession over "kv-sync": every message within `max_bytes`,
  the whole session within `session_timeout`. A membership change triggers a
  round at once, which is how new replicas get filled; while a partition here
  is pending (being filled), rounds come at least every PENDING_RETRY_S.
- A partition this node holds but no longer replicates is synced with every
  current replica; only when each of them reports equal roots (a session that
  ends after one round trip) is it dropped here.
- Tombstones older than the hard horizon are purged. A node out of contact
  with its peers for longer than the horizon (down, or cut off while others
  were known) forgets every record older than the horizon before it exchanges
  data again: it cannot tell them from keys deleted meanwhile.
- A tombstone past the horizon that arrives by sync for a key not held here is
  refused (HorizonReplica): it is being purged everywhere, and storing it let two
  replicas that purge at different moments hand it back and forth for ever.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import structlog
import trio

from gossip.core.store.antientropy import SyncSession, SyncStats, answer
from gossip.core.store.record import Record
from gossip.core.store.syncwire import (
    SyncMessage,
    SyncWireError,
    decode_roots,
    decode_roots_reply,
    encode,
    encode_differ,
    encode_roots,
)
from gossip.runtime.service import StreamError
from gossip.runtime.store.fill import FillRound
from gossip.runtime.store.settings import SYNC_JITTER
from gossip.runtime.store.storage import StorageError, StoredReplica

if TYPE_CHECKING:
    from gossip.runtime.store.service import StoreService

SYNC_CHANNEL = "kv-sync"
ROOTS_CHANNEL = "kv-roots"
LAST_SEEN = "last_seen_ms"
PERSIST_EVERY_MS = 10_000
PENDING_RETRY_S = 1.0

log = structlog.get_logger("gossip.kv")


class AntiEntropy:
    def __init__(self, svc: StoreService, rng: random.Random) -> None:
        self.svc = svc
        self.rng = rng
        self.wakeup = trio.Event()
        last = svc.storage.get_meta(LAST_SEEN)
        now = self.svc.host.wall_ms()
        self.last_contact = now if last is None else last
        self.stale = last is not None and now - last > svc.settings.horizon_ms
        self._persisted = 0
        self.rounds = 0
        # Persist "last in contact" often enough that a restart is judged by it
        # to well within the horizon.
        self.persist_every_ms = min(PERSIST_EVERY_MS, svc.settings.horizon_ms // 4)
        # Messages stay well inside the agent's stream frame limit.
        self.max_bytes = min(svc.settings.sync_max_bytes, svc.host.config.max_stream_bytes // 2)

    # ---- staleness ---------------------------------------------------------

    def contact(self) -> None:
        """We exchanged data with a peer (or have none to diverge from)."""
        now = self.svc.host.wall_ms()
        self.last_contact = now
        if now - self._persisted >= self.persist_every_ms:
            try:
                self.svc.storage.set_meta(LAST_SEEN, now)
            except StorageError as exc:
                self.svc.storage_failed(exc, "meta")
                return
            self._persisted = now

    def ensure_fresh(self) -> None:
        """Before exchanging data: forget what a long absence made unsafe."""
        now = self.svc.host.wall_ms()
        horizon = self.svc.settings.horizon_ms
        if not (self.stale or now - self.last_contact > horizon):
            return
        if not self.svc.alive_peers():
            return
        n = self.svc.storage.forget_older_than(now - horizon)
        log.warning("kv_stale_replica_forgotten", records=n, away_ms=now - self.last_contact)
        self.stale = False
        self.contact()

    # ---- the loop ----------------------------------------------------------

    async def run(self) -> None:
        next_gc = trio.current_time() + self.svc.settings.gc_interval
        while True:
            period = self.svc.settings.sync_period
            if any(self.svc.is_pending(p) for p in self.svc.view.mine):
                period = min(period, PENDING_RETRY_S)  # being filled: do not wait a full period
            with trio.move_on_after(period * self.rng.uniform(1 - SYNC_JITTER, 1 + SYNC_JITTER)):
                await self.wakeup.wait()
            self.wakeup = trio.Event()
            try:
                await self.round()
                if trio.current_time() >= next_gc:
                    next_gc = trio.current_time() + self.svc.settings.gc_interval
                    self.collect_garbage()
            except StorageError as exc:  # disk full: keep running, try again next round
                self.svc.storage_failed(exc, "sync")

    def collect_garbage(self) -> int:
        n = self.svc.storage.purge_tombstones(
            self.svc.host.wall_ms() - self.svc.settings.horizon_ms
        )
        if n:
            log.info("kv_tombstones_purged", count=n)
        return n

    async def round(self) -> None:
        self.rounds += 1
        self.svc.refresh_fingerprint_key()
        await self.svc.announce_settings()
        if not self.svc.known_peers():
            self.contact()  # alone: nothing to diverge from
            return
        me = self.svc.host.name
        placement = self.svc.placement
        others = [m for m in placement.members if m != me]
        # Each partition goes to whichever of its fellow replicas comes first in a random
        # order of all members: still a uniform pick per partition, but partitions share
        # peers, so a round opens fewer connections than independent picks would. A
        # pending partition is checked with every member: its fellows, and any former
        # replica still holding a copy (gossip.runtime.store.fill).
        order = list(placement.members)
        self.rng.shuffle(order)
        rank = {name: i for i, name in enumerate(order)}
        by_peer: dict[str, list[int]] = {}
        pending: list[int] = []
        for part in placement.partitions_of(me):
            if self.svc.is_pending(part):
                pending.append(part)
                for peer in others:
                    by_peer.setdefault(peer, []).append(part)
                continue
            peers = [r for r in placement.replicas(part) if r != me]
            if peers:
                by_peer.setdefault(min(peers, key=rank.__getitem__), []).append(part)
        learned = FillRound()
        # "Every member" includes the suspect and dead ones (until reaped): a member cut
        # off from this one may hold what nobody else does.
        known = self.svc.data_members() - {me}
        for peer, parts in by_peer.items():
            await self._check_peer(peer, parts, learned)
        for part in pending:
            if me in self.svc.placement.replicas(part) and learned.nobody_holds_more(part, known):
                self.svc.mark_filled(part, "every member")
        for part in self.svc.storage.partitions():
            if me not in self.svc.placement.replicas(part):
                await self.hand_off(part)

    async def _check_peer(self, peer: str, parts: list[int], learned: FillRound) -> None:
        """Compare roots with one peer, sync the partitions that differ, and note what
        that says about this node's pending partitions."""
        checked = await self.differing(peer, parts)
        if checked is None:
            return
        differ, peer_pending, peer_holds = checked
        me = self.svc.host.name
        for part in parts:
            replicas = self.svc.placement.replicas(part)
            if me not in replicas:  # the view may have changed
                continue
            if peer not in replicas and part not in peer_holds:
                learned.holds_no_more(part, peer)  # no copy there at all
                continue
            if part in differ:
                stats = await self.sync(part, peer)
                if stats is None or not stats.complete or stats.error is not None:
                    continue
            learned.holds_no_more(part, peer)
            if part not in peer_pending:
                self.svc.mark_filled(part, peer)

    async def differing(
        self, peer: str, parts: list[int]
    ) -> tuple[set[int], set[int], set[int]] | None:
        """One round trip comparing the roots of many partitions with a peer: the
        partitions whose roots differ, those the peer is still being filled with,
        and those it holds a copy of (None if the peer cannot be asked)."""
        address = self.svc.address_of(peer)
        if address is None:
            return None
        self.ensure_fresh()
        roots = {p: self.svc.storage.root(p) for p in parts}
        try:
            with trio.fail_after(self.svc.settings.session_timeout):
                reply = await self.svc.host.request(address, ROOTS_CHANNEL, encode_roots(roots))
            differ, pending, holds = decode_roots_reply(reply or b"")
        except (StreamError, trio.TooSlowError, SyncWireError) as exc:
            log.debug("sync_roots_failed", peer=peer, reason=str(exc))
            return None
        self.contact()
        return set(differ) & roots.keys(), set(pending), set(holds)

    async def on_roots(self, body: bytes) -> bytes:
        """The responder side of a roots check: only partitions this node holds or
        replicates are compared (others answer as differing, without a tree)."""
        try:
            roots = decode_roots(body)
        except SyncWireError as exc:
            log.warning("sync_rejected", reason=str(exc))
            return encode_differ([])
        svc = self.svc
        differ = [p for p, root in roots.items() if not svc.holds(p) or svc.storage.root(p) != root]
        pending = [p for p in roots if not svc.holds(p) or not svc.counts_for_reads(p)]
        holds = [p for p in roots if svc.storage.count(p) > 0]
        return encode_differ(differ, pending, holds)

    async def hand_off(self, part: int) -> None:
        replicas = [r for r in self.svc.placement.replicas(part) if r != self.svc.host.name]
        if not replicas:
            return
        in_sync = 0
        for name in replicas:
            stats = await self.sync(part, name)
            in_sync += stats is not None and stats.complete and stats.round_trips == 1
        if in_sync == len(replicas):
            n = self.svc.storage.drop_partition(part)
            log.info("kv_partition_dropped", partition=part, records=n, held_by=replicas)

    async def sync(self, part: int, peer: str) -> SyncStats | None:
        address = self.svc.address_of(peer)
        if address is None:
            return None
        self.ensure_fresh()
        s = self.svc.settings
        session = SyncSession(self.svc.replica(part), part, max_bytes=self.max_bytes)
        request: bytes | None = session.start()
        with trio.move_on_after(s.session_timeout) as scope:
            while request is not None:
                try:
                    reply = await self.svc.host.request(address, SYNC_CHANNEL, request)
                except StreamError as exc:
                    session.fail(exc.reason)
                    break
                if reply is None:
                    session.fail("no_reply")
                    break
                try:
                    request = session.receive(reply)
                except StorageError as exc:
                    self.svc.storage_failed(exc, "sync")
                    session.fail(exc.reason)
                    break
        if scope.cancelled_caught:
            session.fail("timeout")
        st = session.stats
        if st.error is None:
            self.contact()
        moved = st.records_sent + st.records_received
        (log.info if moved else log.debug)(
            "sync_completed",
            peer=peer,
            partition=part,
            keys_sent=st.records_sent,
            keys_received=st.records_received,
            bytes=st.bytes_sent + st.bytes_received,
            round_trips=st.round_trips,
            complete=st.complete,
            error=st.error,
        )
        return st

    async def on_request(self, body: bytes) -> bytes:
        """The responder side of a session started by a peer."""
        try:
            self.ensure_fresh()
            reply, _ = answer(self.svc.replica_if_held, body, max_bytes=self.max_bytes)
        except SyncWireError as exc:
            log.warning("sync_rejected", reason=str(exc))
            return encode(SyncMessage(0, error="bad_request"))
        except StorageError as exc:
            self.svc.storage_failed(exc, "sync")
            return encode(SyncMessage(0, error=exc.reason))
        self.contact()
        return reply


class HorizonReplica(StoredReplica):
    """A replica that refuses tombstones past the horizon for keys it does not hold.

    Such a tombstone is due for purging everywhere; storing it would only let two
    replicas that purge at different moments hand it back and forth (a copy this node
    purged returns from a peer that has not yet). A tombstone that deletes a live copy
    held here is still applied.
    """

    def __init__(
        self, *args: Any, horizon_ms: int, wall_ms: Callable[[], int], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.horizon_ms = horizon_ms
        self.wall_ms = wall_ms

    def apply(self, records: Sequence[Record]) -> int:
        cutoff = self.wall_ms() - self.horizon_ms
        kept = [
            r
            for r in records
            if not (r.deleted and r.version.wall < cutoff and self.storage.get(r.key) is None)
        ]
        return super().apply(kept)

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
- Equal roots, found by a roots check or a session, are proofs (both sides
  record one): the peer held everything this node held when its root was
  taken. A tombstone is purged once it has been here `tombstone_horizon` (on
  the monotonic clock), the partition's replica set holds a majority of the
  configured replicas, and proofs cover it for every current replica of the
  partition (gossip.runtime.store.ledger); time alone never removes a record.
  While a partition is pending (being filled) here, or a fellow replica's last
  roots reply said it is pending there, nothing of it is purged.
- Every roots check and its answer carry the sender's store-clock reading,
  from which each side measures its offset to the other (the store clock,
  gossip.runtime.store.storeclock). Each round also sends one roots check with
  no roots to a random member it shares nothing with this round, so readings
  flow even where replica sets do not overlap.
- Every roots check and session message carries the sender's copy (its data
  generation and purge watermark), so that records a peer deleted and purged
  are not shipped back to it (gossip.core.store.tombstone_gc).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog
import trio

from gossip.core.store.antientropy import SyncSession, SyncStats, reply_to
from gossip.core.store.placement import Placement
from gossip.core.store.syncwire import (
    RootInfo,
    SyncMessage,
    SyncWireError,
    decode,
    decode_roots,
    decode_roots_reply,
    encode,
    encode_differ,
    encode_roots,
)
from gossip.core.store.tombstone_gc import PeerCopy
from gossip.core.types import Address, MemberState
from gossip.runtime.service import ServiceHost, StreamError
from gossip.runtime.store.fill import FillRound
from gossip.runtime.store.ledger import Ledger, ScreenedReplica
from gossip.runtime.store.rootsdatagram import RootsByDatagram
from gossip.runtime.store.settings import SYNC_JITTER, StoreSettings
from gossip.runtime.store.stamps import Stamps
from gossip.runtime.store.storage import KVStorage, StorageError
from gossip.runtime.store.view import StoreView


class SyncedStore(Protocol):
    """What anti-entropy needs of the store service."""

    @property
    def host(self) -> ServiceHost: ...
    @property
    def settings(self) -> StoreSettings: ...
    @property
    def storage(self) -> KVStorage: ...
    @property
    def placement(self) -> Placement: ...
    @property
    def ledger(self) -> Ledger: ...
    @property
    def view(self) -> StoreView: ...
    @property
    def stamps(self) -> Stamps: ...

    def purge_quorum(self) -> int: ...
    def address_of(self, name: str) -> Address | None: ...
    def replica(self, part: int) -> ScreenedReplica: ...
    def replica_if_held(self, part: int) -> ScreenedReplica | None: ...
    def known_peers(self) -> bool: ...
    def data_members(self) -> set[str]: ...
    def refresh_fingerprint_key(self) -> None: ...
    async def announce_settings(self) -> None: ...
    def is_pending(self, part: int) -> bool: ...
    def holds(self, part: int) -> bool: ...
    def counts_for_reads(self, part: int) -> bool: ...
    def mark_filled(self, part: int, source: str) -> None: ...
    def drop_copy(self, part: int) -> int: ...
    def found_in_sync(self, part: int, source: str) -> None: ...
    def reached(self, name: str, ok: bool) -> None: ...
    def storage_failed(self, exc: StorageError, op: str) -> None: ...
    def spawn(self, fn: Callable[[], Awaitable[None]]) -> None: ...


SYNC_CHANNEL = "kv-sync"
ROOTS_CHANNEL = "kv-roots"
PENDING_RETRY_S = 1.0

log = structlog.get_logger("gossip.kv")


class AntiEntropy:
    def __init__(self, svc: SyncedStore, rng: random.Random) -> None:
        self.svc = svc
        self.rng = rng
        self.wakeup = trio.Event()
        self.rounds = 0
        self.peer_pending: set[tuple[int, str]] = set()
        """(partition, peer) pairs whose last roots reply said the peer is being filled."""
        self.by_datagram = RootsByDatagram(svc.host, self.answer_roots, svc.spawn)
        # Messages stay well inside the agent's stream frame limit.
        self.max_bytes = min(svc.settings.sync_max_bytes, svc.host.config.max_stream_bytes // 2)

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
        """Purge the tombstones that every current replica is proven to hold."""
        svc = self.svc
        me = svc.host.name
        ledger = svc.ledger
        ledger.tick(trio.current_time())
        ledger.keep_only(set(svc.storage.partitions()) | set(svc.placement.partitions_of(me)))
        n = 0
        for part in svc.storage.partitions():
            replicas = svc.placement.replicas(part)
            # A side holding fewer than a majority of the configured replicas (an agent
            # alone, say) purges nothing: its peers may be elsewhere, holding old copies.
            # Nor does a partition being filled, here or (by its last roots reply) at
            # a fellow replica: a former replica may still hand over an old live copy
            # that the purged tombstone would have deleted.
            if me not in replicas or len(replicas) < svc.purge_quorum():
                continue
            if svc.is_pending(part) or any((part, r) in self.peer_pending for r in replicas):
                continue
            bound = ledger.purgeable(part, [r for r in replicas if r != me])
            if bound:
                n += svc.storage.purge_tombstones(part, bound)
        if n:
            log.info("kv_tombstones_purged", count=n)
        return n

    async def round(self) -> None:
        self.rounds += 1
        self.svc.refresh_fingerprint_key()
        await self.svc.announce_settings()
        if not self.svc.known_peers():
            return  # alone: nothing to compare with
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
        # One more peer, which shares no partition picked this round, gets a roots check
        # with no roots: clock readings must flow even where replica sets do not overlap
        # (R = 1, say), or a node would never measure its peers' clocks.
        extra = next((n for n in order if n != me and n not in by_peer), None)
        if extra is not None:
            by_peer[extra] = []
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
                self.svc.found_in_sync(part, peer)

    async def differing(
        self, peer: str, parts: list[int]
    ) -> tuple[set[int], set[int], set[int]] | None:
        """One round trip comparing the roots of many partitions with a peer: the
        partitions whose roots differ, those the peer is still being filled with,
        and those it holds a copy of (None if the peer cannot be asked). Equal
        roots are recorded as proofs, and the peer's pending partitions noted."""
        address = self.svc.address_of(peer)
        if address is None:
            return None
        ledger = self.svc.ledger
        storage = self.svc.storage
        seq = storage.seq
        roots = {}
        for p in parts:
            mine = ledger.copy(p)
            roots[p] = RootInfo(storage.root(p), mine.gen, mine.watermark, mine.floor, mine.digest)
        try:
            # One small round trip: a peer that cannot answer within a request timeout
            # is doubted at once (the majority rule), not after a whole session's.
            with trio.fail_after(self.svc.settings.request_timeout):
                body = encode_roots(
                    self.svc.host.name, roots, self.svc.stamps.store_clock.now_ms(), seq
                )
                reply = None
                # A suspect or dead peer would cost a datagram wait for nothing.
                if self.svc.settings.roots_by_datagram and self._alive(peer):
                    reply = await self.by_datagram.ask(address, body)
                if reply is None:  # a fresh clock reading: the datagram wait may have passed
                    body = encode_roots(
                        self.svc.host.name, roots, self.svc.stamps.store_clock.now_ms(), seq
                    )
                    reply = await self.svc.host.request(address, ROOTS_CHANNEL, body)
            answer = decode_roots_reply(reply or b"")
            self._measured(answer.name, answer.clock_ms)
        except (StreamError, trio.TooSlowError, SyncWireError) as exc:
            log.debug("sync_roots_failed", peer=peer, reason=str(exc))
            self.svc.reached(peer, not isinstance(exc, (StreamError, trio.TooSlowError)))
            return None
        self.svc.reached(peer, True)
        now = trio.current_time()
        differ = set(answer.differ) & roots.keys()
        pending = set(answer.pending)
        for p in roots:
            if p in pending:
                self.peer_pending.add((p, peer))
            else:
                self.peer_pending.discard((p, peer))
        for p, (gen, mark) in answer.copies.items():
            if p in roots and p not in differ:
                floor, digest = answer.floors.get(p, (None, 0))
                copy = PeerCopy(answer.name, gen, mark, answer.seq, floor, digest)
                ledger.proven(p, copy, seq, now, contact=p not in pending)
        return differ, pending, set(answer.holds)

    def _alive(self, peer: str) -> bool:
        member = self.svc.host.member(peer)
        return member is not None and member.state == MemberState.ALIVE

    async def on_roots(self, body: bytes) -> bytes:
        """The responder side of a roots check by stream: only partitions this node
        holds or replicates are compared (others answer as differing and pending,
        without a tree); equal roots are recorded as proofs."""
        return self.answer_roots(body)

    def answer_roots(self, body: bytes) -> bytes:
        """Compare the roots of a check, by stream or by datagram, with ours: equal
        roots become proofs and the sender's clock reading is taken."""
        me = self.svc.host.name
        try:
            name, roots, peer_seq, reading = decode_roots(body)
        except SyncWireError as exc:
            log.warning("sync_rejected", reason=str(exc))
            return encode_differ(me, [], {})
        self._measured(name, reading)
        svc = self.svc
        storage = svc.storage
        ledger = svc.ledger
        now = trio.current_time()
        differ: list[int] = []
        pending: list[int] = []
        holds: list[int] = []
        copies: dict[int, tuple[int, int]] = {}
        floors: dict[int, tuple[int, int]] = {}
        for p, info in roots.items():
            if not svc.holds(p):
                differ.append(p)
                pending.append(p)
                continue
            if storage.root(p) == info.root:
                copy = PeerCopy(name, info.gen, info.watermark, peer_seq, info.floor, info.digest)
                ledger.proven(p, copy, storage.seq, now, contact=False)  # its pending is unknown
            else:
                differ.append(p)
            if not svc.counts_for_reads(p):
                pending.append(p)
            if storage.count(p) > 0:
                holds.append(p)
            mine = ledger.copy(p)
            copies[p] = (mine.gen, mine.watermark)
            if mine.floor is not None:
                floors[p] = (mine.floor, mine.digest)
        return encode_differ(
            me,
            differ,
            copies,
            pending,
            holds,
            clock_ms=self.svc.stamps.store_clock.now_ms(),
            seq=storage.seq,
            floors=floors,
        )

    def _measured(self, peer: str, reading: int | None) -> None:
        """Feed a peer's store-clock reading, if its message carried one, to our clock."""
        if reading is not None and peer != self.svc.host.name:
            self.svc.stamps.store_clock.measured(peer, reading)

    async def hand_off(self, part: int) -> None:
        replicas = [r for r in self.svc.placement.replicas(part) if r != self.svc.host.name]
        if not replicas:
            return
        in_sync = 0
        for name in replicas:
            stats = await self.sync(part, name)
            in_sync += stats is not None and stats.complete and stats.round_trips == 1
        if in_sync == len(replicas):
            n = self.svc.drop_copy(part)
            log.info("kv_partition_dropped", partition=part, records=n, held_by=replicas)

    async def sync(self, part: int, peer: str) -> SyncStats | None:
        address = self.svc.address_of(peer)
        if address is None:
            return None
        s = self.svc.settings
        ledger = self.svc.ledger
        seq = self.svc.storage.seq
        session = SyncSession(
            self.svc.replica(part), part, max_bytes=self.max_bytes, sender=ledger.copy(part)
        )
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
                    # This side's copy as of now: the message built from the reply shows
                    # this state (proofs about it are judged against its seq).
                    session.sender = ledger.copy(part)
                    request = session.receive(reply)
                except StorageError as exc:
                    self.svc.storage_failed(exc, "sync")
                    session.fail(exc.reason)
                    break
        if scope.cancelled_caught:
            session.fail("timeout")
        st = session.stats
        equal = st.error is None and st.complete and st.round_trips == 1
        if session.peer is not None and equal:
            contact = (part, peer) not in self.peer_pending
            ledger.proven(part, session.peer, seq, trio.current_time(), contact=contact)
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
            msg = decode(body)
        except SyncWireError as exc:
            log.warning("sync_rejected", reason=str(exc))
            return encode(SyncMessage(0, error="bad_request"))
        rep = self.svc.replica_if_held(msg.partition)
        if rep is None:
            return encode(SyncMessage(msg.partition, error="not_replica"))
        ledger = self.svc.ledger
        try:
            if msg.sender is not None and msg.root is not None and msg.root == rep.tree.root:
                now = trio.current_time()
                seq = self.svc.storage.seq
                ledger.proven(msg.partition, msg.sender, seq, now, contact=False)
            out, _ = reply_to(rep, msg, max_bytes=self.max_bytes, sender=ledger.copy(msg.partition))
        except StorageError as exc:
            self.svc.storage_failed(exc, "sync")
            return encode(SyncMessage(msg.partition, error=exc.reason))
        return encode(out)

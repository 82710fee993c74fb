"""The replicated key-value store as an agent service.

Rules: keys live in fixed partitions, each on its top R members by
rendezvous hashing over alive and suspect members (gossip.core.store.placement);
the view is rebuilt on every membership change. Any agent coordinates any
request (gossip.runtime.store.coordinator); replicas talk over two stream channels:
"kv" for single-record operations and "kv-sync" for anti-entropy sessions
(gossip.runtime.store.sync). Data lives in sqlite under --data-dir (in memory
without one). The HTTP routes are thin wrappers over the library methods
`put`, `get`, `delete`, `list`, `get_local` and `digest` (gossip.runtime.store.routes).
Versions are stamped with the store clock (gossip.runtime.store.storeclock: the
wall clock read once, advanced by the monotonic clock, corrected by the median
offset to the live peers), never with the raw wall clock. A replica refuses a
record stamped more than the clock's max offset ahead of its store clock (counted
in kv_records_refused_total and logged), and answers a put that a newer version
(or the partition's purge watermark) would hide with that version, so the
coordinator can stamp above it. A node whose store clock disagrees with most of
its peers (or that has not measured any live peer yet) neither stamps writes nor
accepts puts.
Each agent gossips a hash of the settings that decide placement (member tag
"kv"); a member whose hash differs is kept out of placement, with a log line and
a metric. A replica reports the partitions it is still being filled with
(gossip.runtime.store.fill) and refuses writes once it is leaving; storage
errors are answered as refusals with their reason, never raised into a task.
"""

from __future__ import annotations

import argparse
import random
import secrets
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

import structlog
import trio

from gossip.core.store.batch_wire import BatchError, decode_batch, encode_batch
from gossip.core.store.fingerprint import derive_key
from gossip.core.store.hlc import COUNTER_BITS, MAX_COUNTER, HybridClock, Timestamp
from gossip.core.store.majority import Majority
from gossip.core.store.placement import Placement
from gossip.core.store.record import Record, wins
from gossip.core.store.replica_ops import (
    LEAVING,
    MAX_SCAN,
    KvOp,
    KvOpError,
    Listed,
    decode_op,
    decode_scan_result,
    encode_listing,
    encode_op,
    encode_result,
)
from gossip.core.types import Address, MemberInfo, MemberState
from gossip.runtime.http import Handler, RouteKey
from gossip.runtime.service import (
    DatagramHandler,
    MemberEvent,
    PluginHost,
    Service,
    ServiceHost,
    StreamHandler,
)
from gossip.runtime.store import settings as kvsettings
from gossip.runtime.store.batching import ReplicaBatcher
from gossip.runtime.store.coordinator import Coordinator, fan_out, parse_consistency
from gossip.runtime.store.ephemeral import EphemeralReaper, hide_internal, put_ephemeral
from gossip.runtime.store.fill import FillState
from gossip.runtime.store.ledger import Ledger, ScreenedReplica
from gossip.runtime.store.routes import store_routes
from gossip.runtime.store.settings import StoreSettings, check_frame_limit
from gossip.runtime.store.storage import KVStorage, StorageError
from gossip.runtime.store.storeclock import StoreClock
from gossip.runtime.store.sync import ROOTS_CHANNEL, SYNC_CHANNEL, AntiEntropy
from gossip.runtime.store.view import LIVE_STATES, SETTINGS_TAG, StoreView
from gossip.runtime.store.watch import follow_prefix

T = TypeVar("T")
KV_CHANNEL = "kv"
KV_BATCH_CHANNEL = "kv-batch"
DB_FILE = "kv.sqlite"
CLOCK_READING_AGE = 60.0
"""Seconds a peer's clock reading counts at least (longer with a slow sync interval)."""
CLOCK_START_GRACE = 30.0
"""Seconds at least that an agent expecting peers waits for a first clock reading."""
CLOCK_CHECKED_META = "clock_checked_with_peers"

log = structlog.get_logger("gossip.kv")


class StoreService(Service):
    name = "store"

    def __init__(
        self,
        settings: StoreSettings | None = None,
        rng: random.Random | None = None,
        *,
        connect: Callable[[str], sqlite3.Connection] | None = None,
        fingerprint_secret: Callable[[], bytes | None] | None = None,
    ) -> None:
        """`fingerprint_secret` returns the cluster secret (or None) that keys the
        Merkle fingerprints; it is read again every sync round, as keys rotate."""
        self._given = settings
        self._connect = connect
        self._secret = fingerprint_secret
        self.rng = rng or random.Random(secrets.randbits(64))
        self._nursery: trio.Nursery | None = None
        self._batcher = ReplicaBatcher(
            lambda to, channel, body: self.host.request(to, channel, body),  # host comes later
            self.spawn,
            KV_CHANNEL,
            KV_BATCH_CHANNEL,
        )
        self.leaving = False

    # ---- wiring ----------------------------------------------------------------

    def attach(self, host: ServiceHost) -> None:
        super().attach(host)
        settings = self._given or kvsettings.from_sources(host.settings_section("store"), None)
        if settings.sync_interval is None:
            settings = settings.for_profile(host.config.profile)
        self.settings = settings
        s = self.settings
        check_frame_limit(s, host.config.max_stream_bytes)
        path = None if host.data_dir is None else host.data_dir / DB_FILE
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.storage = KVStorage(
            path,
            self._partition_of,
            synchronous=s.synchronous,
            connect=self._connect,
            fingerprint_key=self._fingerprint_key(),
        )
        self.clock = HybridClock(host.name)
        # Past every stored version, even one far ahead of the wall clock now: this
        # node's new writes must outrank what it wrote before a restart.
        self.clock.advance(*self.storage.max_version())
        self.store_clock = StoreClock(
            host.wall_ms,
            lambda: set(self.placement.members) - {host.name},
            max_offset_ms=self.clock.max_offset_ms,
            max_age=max(CLOCK_READING_AGE, 10 * s.sync_period),
        )
        self.store_clock.on_first_reading = self._remember_peers
        self.ledger = Ledger(self.storage, host.name, s.tombstone_horizon)
        self._refused = host.metrics.counter(
            "kv_records_refused_total", "Records this replica refused, by reason", ("reason",)
        )
        self.fill = FillState(s.partitions)
        self.leave_timeout = s.handover_timeout
        self.view = StoreView(
            host.name, s, self.storage.known_members(), expects_peers=bool(host.seeds)
        )
        self._most_members = 1
        self._replication = 1
        self.coordinator = Coordinator(self, s.request_timeout)
        self.sync = AntiEntropy(self, self.rng)
        self._requests = host.metrics.counter(
            "kv_requests_total", "Store requests coordinated here", ("op", "result")
        )
        self._storage_errors = host.metrics.counter(
            "kv_storage_errors_total", "Store writes the database refused", ("reason",)
        )
        host.metrics.gauge(
            "kv_settings_mismatched_members",
            "Members kept out of placement: their store settings hash differs from ours",
            read=lambda: {(): float(len(self.view.mismatched))},
        )
        host.metrics.gauge(
            "kv_records",
            "Records (tombstones included) stored on this node",
            read=lambda: {(): float(self.storage.count())},
        )

    def _fingerprint_key(self) -> bytes | None:
        secret = None if self._secret is None else self._secret()
        return None if secret is None else derive_key(secret)

    def refresh_fingerprint_key(self) -> None:
        """Follow a rotated cluster secret: rebuild the trees with the new key."""
        key = self._fingerprint_key()
        if key != self.storage.fingerprint_key:
            self.storage.rekey(key)
            log.info("kv_fingerprint_key_changed", keyed=key is not None)

    @property
    def placement(self) -> Placement:
        return self.view.placement

    def _remember_peers(self) -> None:
        """This data has been checked against peers' clocks: after a restart, wait for
        a peer's reading before stamping, even without seeds."""
        try:
            if self.storage.get_meta(CLOCK_CHECKED_META) != 1:
                self.storage.set_meta(CLOCK_CHECKED_META, 1)
        except (sqlite3.Error, StorageError) as exc:
            log.warning("kv_clock_meta_failed", error=str(exc))

    def _partition_of(self, key: str) -> int:
        return self.placement.partition_of(key)

    def routes(self) -> Mapping[RouteKey, Handler]:
        return store_routes(self)

    def stream_channels(self) -> Mapping[str, StreamHandler]:
        return {
            KV_CHANNEL: self._on_kv,
            KV_BATCH_CHANNEL: self._on_kv_batch,
            SYNC_CHANNEL: self._on_sync,
            ROOTS_CHANNEL: self._on_roots,
        }

    def datagram_channels(self) -> Mapping[str, DatagramHandler]:
        return self.sync.by_datagram.channels()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self.ledger.tick(trio.current_time())
                await self.announce_settings()
                checked = self.storage.get_meta(CLOCK_CHECKED_META) == 1
                grace = max(CLOCK_START_GRACE, 3 * self.settings.sync_period)
                self.store_clock.started(bool(self.host.seeds) or checked, grace)
                self._rebuild_placement()
                nursery.start_soon(self.sync.run)
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            self.storage.close()

    async def announce_settings(self) -> None:
        """Tag this member with the settings hash (again, if a tag change dropped it)."""
        me = self.host.member(self.host.name)
        tags = dict(me.tags) if me is not None else {}
        if tags.get(SETTINGS_TAG) != self.view.hash:
            try:
                await self.host.set_tags({**tags, SETTINGS_TAG: self.view.hash})
            except ValueError as exc:  # the member's tags are full: run without the check
                log.warning("kv_settings_tag_failed", reason=str(exc))

    async def before_leave(self) -> None:
        """Leaving gracefully: refuse writes as a replica from now on (coordinators
        send them to the members that replace this one), then hand each partition
        to those members, until each session ends in sync (bounded by
        `handover_timeout`, which the agent applies to this hook)."""
        self.leaving = True
        me = self.host.name
        rest = set(self.placement.members) - {me}
        if not rest:
            return
        s = self.settings
        after = Placement(rest, partitions=s.partitions, replicas=s.replicas)
        todo = [
            (part, name)
            for part in self.storage.partitions()
            for name in after.replicas(part)
            if name not in self.placement.replicas(part)
        ]
        log.info("kv_handover_started", pairs=len(todo), records=self.storage.count())
        done = sent = 0
        for part, name in todo:
            complete = False
            while not complete:
                stats = await self.sync.sync(part, name)
                if stats is None or stats.error is not None:
                    break
                sent += stats.records_sent
                complete = stats.complete
            done += complete
            log.info(
                "kv_partition_handed_over",
                partition=part,
                to=name,
                complete=complete,
                progress=f"{done}/{len(todo)}",
                records_sent=sent,
            )
        (log.info if done == len(todo) else log.warning)(
            "kv_handover_finished", complete=done, pairs=len(todo), records_sent=sent
        )

    def member_event(self, event: MemberEvent) -> None:
        if self._rebuild_placement():
            self.sync.wakeup.set()  # fill new replicas and hand off without waiting

    def _rebuild_placement(self) -> bool:
        members = self.host.members()
        entered = self.view.rebuild(members, trio.current_time())
        regained = self._follow_known_members(members)
        # R changes with any member event (a death or a reap too), not only placement.
        self._replication = self.view.replication()
        if entered is None:
            return regained
        self._most_members = max(self._most_members, len(self.placement.members))
        self.fill.entered(entered)
        return True

    def _follow_known_members(self, members: Sequence[MemberInfo]) -> bool:
        """Keep the known members (persisted) and the majority verdict current. On
        regaining a majority every partition it replicates is pending again (True then:
        anti-entropy should run now): while it was cut off the others went on writing,
        and its copies may lack what they acknowledged."""
        was = self.view.majority.quorate
        added, removed = self.view.observe(members)
        if added or removed:
            try:
                self.storage.remember_members(added, removed)
            except StorageError as exc:  # kept in memory; stored with the next change
                self.storage_failed(exc, "known_members")
        now = self.view.majority
        if now.quorate == was:
            return False
        if not now.quorate:
            log.warning("kv_majority_lost", seen=now.seen, known=now.known)
            return False
        self.fill.entered(self.view.mine)
        self.ledger.lost_contact()
        log.info("kv_majority_regained", seen=now.seen, known=now.known)
        return True

    # ---- what the coordinator and anti-entropy need -------------------------------

    def reached(self, name: str, ok: bool) -> None:
        """The outcome of a store exchange with `name`: a failure makes it doubted
        (not counted toward the majority) until an exchange succeeds."""
        if name == self.host.name or (name in self.view.doubted) != ok:
            return
        if ok:
            self.view.doubted.discard(name)
        else:
            self.view.doubted.add(name)
        if self._follow_known_members(self.host.members()):
            self.sync.wakeup.set()

    def majority(self) -> Majority:
        """Whether this node sees most of the members it knows (quorum operations need it)."""
        return self.view.majority

    def purge_quorum(self) -> int:
        """Replicas a partition's set must hold before its tombstones may be purged: a
        majority of the configured count (of the most members seen, for "all")."""
        configured = self.settings.replicas or self._most_members
        return configured // 2 + 1

    def replicas_of_key(self, key: str) -> Sequence[str]:
        return self.placement.replicas_of_key(key)

    def data_members(self) -> set[str]:
        """Every member this node has known and not seen leave (reaped ones too),
        minus those with other settings."""
        return set(self.view.known.names) - set(self.view.mismatched)

    def replication(self) -> int:
        return self._replication

    def replacements(self, key: str, gone: Collection[str]) -> Sequence[str]:
        return self.view.replacements(key, gone)

    def earlier_replicas(self, key: str) -> Sequence[str]:
        s = self.settings
        window = 3 * s.sync_period + s.session_timeout
        return self.view.earlier_replicas(key, trio.current_time(), window)

    def fill_soon(self) -> None:
        self.sync.wakeup.set()

    def is_pending(self, part: int) -> bool:
        """Still being filled with the partition's data (never when alone), or cut off
        from most of the members: then no copy here can vouch for being complete."""
        if not self.known_peers():
            return False
        return self.fill.is_pending(part) or not self.view.majority.quorate

    def holds(self, part: int) -> bool:
        """A partition a peer may sync with here: one this node stores, replicates,
        or would replicate if one member left. Others never get a tree."""
        if not 0 <= part < self.settings.partitions:
            return False
        return self.storage.count(part) > 0 or self.view.is_near(part)

    def mark_filled(self, part: int, source: str) -> None:
        """Every member was found to hold nothing more: the partition is filled."""
        if self.fill.filled(part):
            log.info("kv_partition_filled", partition=part, source=source)

    def found_in_sync(self, part: int, source: str) -> None:
        """A member not pending for `part` holds what this node holds of it."""
        fellows = [r for r in self.placement.replicas(part) if r != self.host.name]
        needed = max(1, min(self._replication // 2 + 1, len(fellows)))
        if self.fill.in_sync(part, source, needed):
            log.info("kv_partition_filled", partition=part, source=source, sources=needed)

    def counts_for_reads(self, part: int) -> bool:
        """Whether this node's copy of a partition may count toward a read quorum:
        not while it is being filled or leaving, and not for a partition it neither
        replicates nor holds."""
        if self.leaving or self.is_pending(part):
            return False
        return part in self.view.mine or self.storage.count(part) > 0

    def storage_failed(self, exc: StorageError, op: str) -> None:
        self._storage_errors.inc(labels={"reason": exc.reason})
        log.error("kv_storage_failed", op=op, reason=exc.reason, error=str(exc))

    def stamp(self) -> Timestamp:
        """A new version; ClockDisagrees when this node's store clock is not trusted."""
        self.store_clock.check()
        return self.clock.now(self.store_clock.now_ms())

    def stamp_after(self, newer: tuple[int, int]) -> Timestamp:
        """A stamp above a version a replica holds (or its purge watermark)."""
        self.store_clock.check()
        return self.clock.now_after(self.store_clock.now_ms(), Timestamp(*newer, self.host.name))

    def spawn(self, fn: Callable[[], Awaitable[None]]) -> None:
        if self._nursery is None:
            raise RuntimeError("the store service is not running")
        self._nursery.start_soon(fn)

    def address_of(self, name: str) -> Address | None:
        member = self.host.member(name)
        return member.address if member is not None and member.state in LIVE_STATES else None

    def known_peers(self) -> bool:
        return any(m.name != self.host.name for m in self.host.members())

    def plausible(self, wall_ms: int) -> bool:
        """Whether a version's wall time is within the max clock offset of our store
        clock (or of the hybrid clock, which after a restart may run ahead of it)."""
        now = max(self.store_clock.now_ms(), self.clock.last[0])
        return wall_ms <= now + self.clock.max_offset_ms

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
                max_offset_ms=self.clock.max_offset_ms,
            )
        for r in kept:
            self.clock.observe(now, r.version)
        return kept

    def _below_watermark(self, record: Record) -> int | None:
        """The partition's purge watermark if `record`, for a key not held here, is no
        newer than it: it may be a copy of a key deleted and purged here, so a replica
        refuses it as a direct write (counted), and a coordinator stamps a fresh write
        above the mark. Anti-entropy does not refuse such records: after a split both
        sides hold writes older than the other side's purges, and the senders screen."""
        mark = self.storage.watermark(self.placement.partition_of(record.key))
        if record.version.packed > mark:
            return None
        self._refused.inc(labels={"reason": "below_watermark"})
        log.info("kv_record_refused", reason="below_watermark", key=record.key)
        return mark

    def replica(self, part: int) -> ScreenedReplica:
        def unsettled() -> bool:
            return self.host.name not in self.placement.replicas(part) or self.is_pending(part)

        return ScreenedReplica(self.ledger, part, self.accept, trio.current_time, unsettled)

    def replica_if_held(self, part: int) -> ScreenedReplica | None:
        """The replica a peer may sync with (see `holds`); None is a clean refusal.
        A copy this node should not keep is handed off and dropped by the sync loop."""
        return self.replica(part) if self.holds(part) else None

    async def call(self, replica: str, op: KvOp) -> bytes:
        if replica == self.host.name:
            return self.handle_op(op)
        address = self.address_of(replica)
        if address is None:
            raise KvOpError(f"{replica} is not alive")
        reply = await self._batcher.request(address, encode_op(op))
        if reply is None:
            raise KvOpError("no reply")
        return reply

    # ---- the replica side ----------------------------------------------------------

    def handle_op(self, op: KvOp) -> bytes:
        try:
            if op.op == "put":
                assert op.record is not None
                if self.leaving:
                    return encode_result(err=LEAVING)
                return self._put(op.record)
        except StorageError as exc:
            self.storage_failed(exc, op.op)
            return encode_result(err=str(exc))
        if op.op == "get":
            pending = not self.counts_for_reads(self.placement.partition_of(op.key))
            return encode_result(r=self.storage.get(op.key), pend=pending, lv=self.leaving)
        return encode_listing(
            [Listed.of(r) for r in self.storage.scan(op.key, op.limit, after=op.after)]
        )

    def _put(self, record: Record) -> bytes:
        untrusted = self.store_clock.refusal()
        if untrusted is not None:
            return encode_result(err=f"clock_disagrees: {untrusted}")
        if not self.accept([record]):
            ahead = record.version.wall - self.store_clock.now_ms()
            return encode_result(err=f"clock_ahead: version is {ahead} ms ahead of this replica")
        current = self.storage.get(record.key)
        if current is not None and not wins(record, current):
            if current.version > record.version:
                return encode_result(ok=True, changed=False, newer=_packed(current.version))
            return encode_result(ok=True, changed=False)
        mark = None if current is not None else self._below_watermark(record)
        if mark is not None:
            return encode_result(
                ok=True, changed=False, newer=[mark >> COUNTER_BITS, mark & MAX_COUNTER]
            )
        return encode_result(ok=True, changed=self.storage.put(record))

    async def _on_kv(self, src: Address, body: bytes) -> bytes | None:
        return self._answer(body)

    async def _on_kv_batch(self, src: Address, body: bytes) -> bytes | None:
        """Each operation of a batch is answered as if it came alone, in order; the
        batch's writes commit together (group commit) before any answer goes."""
        try:
            items = decode_batch(body)
        except BatchError as exc:
            return encode_result(err=str(exc))
        try:
            with self.storage.group():
                answers = [self._answer(item) for item in items]
        except StorageError as exc:  # nothing of the batch was stored
            self.storage_failed(exc, "put")
            answers = [encode_result(err=str(exc))] * len(items)
        return encode_batch(answers)

    def _answer(self, body: bytes) -> bytes:
        try:
            op = decode_op(body)
        except KvOpError as exc:
            return encode_result(err=str(exc))
        return self.handle_op(op)

    async def _on_sync(self, src: Address, body: bytes) -> bytes | None:
        return await self.sync.on_request(body)

    async def _on_roots(self, src: Address, body: bytes) -> bytes | None:
        return await self.sync.on_roots(body)

    # ---- library API -----------------------------------------------------------------

    async def put(self, key: str, value: bytes, consistency: str = "quorum") -> Record:
        await self.store_clock.trusted(self.settings.request_timeout)
        return await self._count("put", self.coordinator.write(key, value, _c(consistency)))

    async def delete(self, key: str, consistency: str = "quorum") -> Record:
        await self.store_clock.trusted(self.settings.request_timeout)
        return await self._count("delete", self.coordinator.write(key, None, _c(consistency)))

    async def get(self, key: str, consistency: str = "quorum") -> bytes | None:
        record = await self._count("get", self.coordinator.read(key, _c(consistency)))
        return None if record is None else record.value

    async def put_ephemeral(self, key: str, value: bytes, consistency: str = "quorum") -> Record:
        """A put deleted when this agent fails or leaves (ephemeral.py)."""
        return await put_ephemeral(self, self.host.name, key, value, consistency)

    def watch(self, prefix: str = "") -> AsyncIterator[list[Listed]]:
        """Each new state of the live keys under `prefix`, the current one first (watch.py)."""

        async def visible(p: str, limit: int) -> tuple[list[Listed], bool]:
            records, truncated = await self.list(p, limit)
            return hide_internal(p, records), truncated

        return follow_prefix(visible, prefix)

    async def get_record(self, key: str, consistency: str = "quorum") -> Record | None:
        """The winning record, a tombstone for a deleted key (watches compare its version)."""
        return await self._count("get", self.coordinator.read(key, _c(consistency)))

    def get_local(self, key: str) -> Record | None:
        """This node's own copy, tombstones included (for inspection and tests)."""
        return self.storage.get(key)

    async def list_page(
        self, prefix: str, limit: int = MAX_SCAN, after: str = ""
    ) -> tuple[list[Listed], str | None]:
        """One page of the live keys above `after` that start with `prefix`, from every alive
        member, merged; and the key to pass as `after` for the next page (None: no more).
        A member that filled its page may hold more keys, so the page stops at the lowest
        last key of such members: everything up to it is complete."""
        members = [m.name for m in self.host.members() if m.state == MemberState.ALIVE]
        names = sorted(set(members) | {self.host.name})
        op = KvOp("scan", key=prefix, limit=limit, after=after)
        answers = await fan_out(self, names, op, len(names), self.settings.request_timeout)
        merged: dict[str, Listed] = {}
        stop: str | None = None
        for a in answers:
            try:
                found = decode_scan_result(a.payload) if a.payload is not None else []
            except KvOpError as exc:
                log.warning("kv_scan_refused", replica=a.replica, reason=str(exc))
                continue
            if found and found[0].key <= after:
                log.warning("kv_scan_refused", replica=a.replica, reason="page start ignored")
                continue
            if len(found) >= limit:
                stop = found[-1].key if stop is None else min(stop, found[-1].key)
            for item in found:
                seen = merged.get(item.key)
                if seen is None or item.order_key() > seen.order_key():
                    merged[item.key] = item
        page = (i for i in merged.values() if not i.deleted and (stop is None or i.key <= stop))
        return sorted(page, key=lambda i: i.key), stop

    async def list(self, prefix: str, limit: int = 1000) -> tuple[list[Listed], bool]:
        """Live keys that start with `prefix`, from every alive member, merged
        (last writer wins); and whether the listing was cut at `limit`."""
        members = [m.name for m in self.host.members() if m.state == MemberState.ALIVE]
        names = sorted(set(members) | {self.host.name})
        op = KvOp("scan", key=prefix, limit=limit)
        answers = await fan_out(self, names, op, len(names), self.settings.request_timeout)
        merged: dict[str, Listed] = {}
        cut = False
        for a in answers:
            if a.payload is None:
                continue
            try:
                found = decode_scan_result(a.payload)
            except KvOpError as exc:
                log.warning("kv_scan_refused", replica=a.replica, reason=str(exc))
                continue
            cut |= len(found) >= limit  # that member may hold more
            for item in found:
                seen = merged.get(item.key)
                if seen is None or item.order_key() > seen.order_key():
                    merged[item.key] = item
        live = sorted((i for i in merged.values() if not i.deleted), key=lambda i: i.key)
        return live[:limit], cut or len(live) > limit

    def digest(self) -> dict[str, Any]:
        me = self.host.name
        mine = set(self.placement.partitions_of(me))
        parts = sorted(mine | set(self.storage.partitions()))
        return {
            "node": me,
            "partitions": {
                str(p): {
                    "root": self.storage.tree(p).digest().hex(),
                    "count": self.storage.count(p),
                    "replica": p in mine,
                }
                for p in parts
            },
            "sync_rounds": self.sync.rounds,
        }

    async def _count(self, op: str, work: Awaitable[T]) -> T:
        try:
            result = await work
        except Exception:
            self._requests.inc(labels={"op": op, "result": "error"})
            raise
        self._requests.inc(labels={"op": op, "result": "ok"})
        return result


def _packed(ts: Timestamp) -> list[int]:
    return [ts.wall, ts.counter]


def _c(consistency: str) -> str:
    return parse_consistency(consistency)


# ---- plugin hooks (gossip/runtime/plugins.py) ----------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    kvsettings.add_arguments(parser)


def setup(agent: PluginHost, args: argparse.Namespace | None) -> None:
    settings = kvsettings.from_sources(agent.settings_section("store"), args)
    store = StoreService(settings, fingerprint_secret=lambda: cluster_secret(agent))
    agent.add_service(store)
    agent.add_service(EphemeralReaper(store))


def cluster_secret(agent: object) -> bytes | None:
    """The primary key of the agent's keyring (gossip.runtime.keys), if it has one."""
    keyring = getattr(getattr(agent, "sealer", None), "keyring", None)
    primary = getattr(keyring, "primary", None)
    return primary if isinstance(primary, bytes) else None

"""The replicated key-value store as an agent service: its parts, wired.

Rules: keys live in fixed partitions, each on its top R members by rendezvous
hashing over alive and suspect members (gossip.core.store.placement); the view
is rebuilt on every membership change (following.py). Any agent coordinates any
request (coordinator.py); replicas talk over two stream channels: "kv" for
single-record operations (replicaside.py) and "kv-sync" for anti-entropy
sessions (sync.py). Data lives in sqlite under --data-dir (in memory without
one). The HTTP routes (routes.py) are thin wrappers over the library methods
`put`, `get`, `delete`, `list` (listing.py), `get_local` and `digest`.
Versions are stamped with the store clock (storeclock.py: the wall clock read
once, advanced by the monotonic clock, corrected by the median offset to the
live peers), never with the raw wall clock; a node whose store clock disagrees
with most of its peers (or that has not measured any live peer yet) neither
stamps writes nor accepts puts.
Each agent gossips a hash of the settings that decide placement (member tag
"kv"); a member whose hash differs is kept out of placement. A replica reports
the partitions it is still being filled with (fill.py) and refuses writes once
it is leaving (then it hands its partitions over: handover.py); storage errors
are answered as refusals with their reason, never raised into a task.
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

from gossip.core.store.fingerprint import derive_key
from gossip.core.store.hlc import Timestamp
from gossip.core.store.majority import Majority
from gossip.core.store.placement import Placement
from gossip.core.store.record import Record
from gossip.core.store.replica_ops import MAX_SCAN, KvOp, KvOpError, Listed, encode_op
from gossip.core.types import Address
from gossip.runtime.duetimers import DueTimers
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
from gossip.runtime.store.batching import Outcome, ReplicaBatcher
from gossip.runtime.store.coordinator import Coordinator, parse_consistency
from gossip.runtime.store.ephemeral import EphemeralReaper, hide_internal, put_ephemeral
from gossip.runtime.store.fill import FillState
from gossip.runtime.store.following import Following
from gossip.runtime.store.handover import hand_over
from gossip.runtime.store.ledger import Ledger, ScreenedReplica
from gossip.runtime.store.listing import list_all, list_page, scanned
from gossip.runtime.store.replicaside import ReplicaSide
from gossip.runtime.store.routes import store_routes
from gossip.runtime.store.settings import StoreSettings, check_frame_limit
from gossip.runtime.store.stamps import Stamps
from gossip.runtime.store.storage import KVStorage, StorageError
from gossip.runtime.store.sync import ROOTS_CHANNEL, SYNC_CHANNEL, AntiEntropy
from gossip.runtime.store.view import LIVE_STATES, SETTINGS_TAG, StoreView
from gossip.runtime.store.watch import follow_prefix

T = TypeVar("T")
KV_CHANNEL = "kv"
KV_BATCH_CHANNEL = "kv-batch"
DB_FILE = "kv.sqlite"

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
        self._timers = DueTimers()
        self._batcher = ReplicaBatcher(
            lambda to, channel, body: self.host.request(to, channel, body),  # host comes later
            self.spawn,
            KV_CHANNEL,
            KV_BATCH_CHANNEL,
        )
        self.leaving = False
        self._sent_op: KvOp | None = None
        self._sent_payload = b""

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
        refused = host.metrics.counter(
            "kv_records_refused_total", "Records this replica refused, by reason", ("reason",)
        )
        self.stamps = Stamps(
            host.name,
            self.storage,
            host.wall_ms,
            lambda: self.view.peers,
            refused,
            sync_period=s.sync_period,
        )
        self.ledger = Ledger(self.storage, host.name, s.tombstone_horizon)
        self.replica_side = ReplicaSide(self, self.storage, self.stamps, refused)
        self.fill = FillState(s.partitions)
        self.leave_timeout = s.handover_timeout
        self.view = StoreView(
            host.name, s, self.storage.known_members(), expects_peers=bool(host.seeds)
        )
        self.following = Following(
            host.name, self.view, self.storage, self.fill, self.ledger, self.storage_failed
        )
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

    def _partition_of(self, key: str) -> int:
        return self.placement.partition_of(key)

    def routes(self) -> Mapping[RouteKey, Handler]:
        return store_routes(self)

    def stream_channels(self) -> Mapping[str, StreamHandler]:
        return {
            KV_CHANNEL: self.replica_side.on_kv,
            KV_BATCH_CHANNEL: self.replica_side.on_kv_batch,
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
                self.stamps.start(bool(self.host.seeds), self.settings.sync_period)
                self.following.rebuild(self.host.members(), trio.current_time())
                nursery.start_soon(self.sync.run)
                nursery.start_soon(self._timers.run)
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
        await hand_over(self.host.name, self.placement, self.settings, self.storage, self.sync)

    def member_event(self, event: MemberEvent) -> None:
        if self.following.rebuild(self.host.members(), trio.current_time()):
            self.sync.wakeup.set()  # fill new replicas and hand off without waiting

    # ---- what the coordinator and anti-entropy need -------------------------------

    def reached(self, name: str, ok: bool) -> None:
        """The outcome of a store exchange with `name`: a failure makes it doubted
        (not counted toward the majority) until an exchange succeeds."""
        if self.following.reached(name, ok, self.host.members):
            self.sync.wakeup.set()

    def majority(self) -> Majority:
        """Whether this node sees most of the members it knows (quorum operations need it)."""
        return self.view.majority

    def purge_quorum(self) -> int:
        """Replicas a partition's set must hold before its tombstones may be purged: a
        majority of the configured count (of the most members seen, for "all")."""
        configured = self.settings.replicas or self.following.most_members
        return configured // 2 + 1

    def replicas_of_key(self, key: str) -> Sequence[str]:
        return self.placement.replicas_of_key(key)

    def data_members(self) -> set[str]:
        """Every member this node has known and not seen leave (reaped ones too),
        minus those with other settings."""
        return set(self.view.known.names) - set(self.view.mismatched)

    def replication(self) -> int:
        return self.following.replication

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

    def drop_copy(self, part: int) -> int:
        """Drop this node's copy of a partition it no longer replicates (handed off):
        what it may hold of it later (a peer that already counts it as a replica sends
        records before this node's view agrees) is no full copy, so the partition is
        pending again and counts for no read until it is filled. Found by a fault run
        (seed 225): a dropped copy, refilled in part that way, still said it was
        filled, answered a quorum read with a stale value and filled another replica."""
        n = self.storage.drop_partition(part)
        self.fill.entered([part])
        return n

    def mark_filled(self, part: int, source: str) -> None:
        """Every member was found to hold nothing more: the partition is filled."""
        if self.fill.filled(part):
            log.info("kv_partition_filled", partition=part, source=source)

    def found_in_sync(self, part: int, source: str) -> None:
        """A member not pending for `part` holds what this node holds of it."""
        fellows = [r for r in self.placement.replicas(part) if r != self.host.name]
        needed = max(1, min(self.following.replication // 2 + 1, len(fellows)))
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
        return self.stamps.stamp()

    def stamp_after(self, newer: tuple[int, int]) -> Timestamp:
        return self.stamps.stamp_after(newer)

    def spawn(self, fn: Callable[[], Awaitable[None]]) -> None:
        if self._nursery is None:
            raise RuntimeError("the store service is not running")
        self._nursery.start_soon(fn)

    def after(self, when: float, fn: Callable[[], None]) -> None:
        self._timers.at(when, fn)

    def address_of(self, name: str) -> Address | None:
        member = self.host.member(name)
        return member.address if member is not None and member.state in LIVE_STATES else None

    def known_peers(self) -> bool:
        return any(m.name != self.host.name for m in self.host.members())

    def plausible(self, wall_ms: int) -> bool:
        return self.stamps.plausible(wall_ms)

    def replica(self, part: int) -> ScreenedReplica:
        def unsettled() -> bool:
            return self.host.name not in self.placement.replicas(part) or self.is_pending(part)

        accept = self.stamps.accept
        return ScreenedReplica(self.ledger, part, accept, trio.current_time, unsettled)

    def replica_if_held(self, part: int) -> ScreenedReplica | None:
        """The replica a peer may sync with (see `holds`); None is a clean refusal.
        A copy this node should not keep is handed off and dropped by the sync loop."""
        return self.replica(part) if self.holds(part) else None

    def local(self, replica: str, op: KvOp) -> bytes | None:
        return self.replica_side.handle_op(op) if replica == self.host.name else None

    def send(self, replica: str, op: KvOp, outcome: Outcome) -> None:
        address = self.address_of(replica)
        if address is None:
            raise KvOpError(f"{replica} is not alive")
        if op is not self._sent_op:  # a fan-out sends one op to several replicas
            self._sent_op, self._sent_payload = op, encode_op(op)
        self._batcher.post(address, self._sent_payload, outcome)

    # ---- stream channels ----------------------------------------------------------

    async def _on_sync(self, src: Address, body: bytes) -> bytes | None:
        return await self.sync.on_request(body)

    async def _on_roots(self, src: Address, body: bytes) -> bytes | None:
        return await self.sync.on_roots(body)

    # ---- library API -----------------------------------------------------------------

    async def put(
        self, key: str, value: bytes, consistency: str = "quorum", after: Session = None
    ) -> Record:
        """`after`: the greatest version this client has seen (its session); the write is
        stamped above it (docs/store.md, "Sessions")."""
        await self.stamps.store_clock.trusted(self.settings.request_timeout)
        write = self.coordinator.write(key, value, _c(consistency), _after(after))
        return await self._count("put", write)

    async def delete(self, key: str, consistency: str = "quorum", after: Session = None) -> Record:
        await self.stamps.store_clock.trusted(self.settings.request_timeout)
        write = self.coordinator.write(key, None, _c(consistency), _after(after))
        return await self._count("delete", write)

    async def get(self, key: str, consistency: str = "quorum") -> bytes | None:
        record = await self._count("get", self.coordinator.read(key, _c(consistency)))
        return None if record is None else record.value

    async def put_ephemeral(
        self, key: str, value: bytes, consistency: str = "quorum", after: Session = None
    ) -> Record:
        """A put deleted when this agent fails or leaves (ephemeral.py)."""
        return await put_ephemeral(self, self.host.name, key, value, consistency, after)

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
        member, merged; and the key to pass as `after` for the next page (None: no more)."""
        names = scanned(self.host.name, self.host.members())
        return await list_page(self, names, self.settings.request_timeout, prefix, limit, after)

    async def list(self, prefix: str, limit: int = 1000) -> tuple[list[Listed], bool]:
        """Live keys that start with `prefix`, from every alive member, merged
        (last writer wins); and whether the listing was cut at `limit`."""
        names = scanned(self.host.name, self.host.members())
        return await list_all(self, names, self.settings.request_timeout, prefix, limit)

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


def _c(consistency: str) -> str:
    return parse_consistency(consistency)


Session = Timestamp | None
"""The greatest version a client has seen (gossip.core.store.session), or None."""


def _after(seen: Session) -> tuple[int, int] | None:
    return None if seen is None else (seen.wall, seen.counter)


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

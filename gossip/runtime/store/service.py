"""The replicated key-value store as an agent service.

Rules: keys live in fixed partitions, each on its top R members by
rendezvous hashing over alive and suspect members (gossip.core.store.placement);
the view is rebuilt on every membership change. Any agent coordinates any
request (gossip.runtime.store.coordinator); replicas talk over two stream channels:
"kv" for single-record operations and "kv-sync" for anti-entropy sessions
(gossip.runtime.store.sync). Data lives in sqlite under --data-dir (in memory
without one). The HTTP routes are thin wrappers over the library methods
`put`, `get`, `delete`, `list`, `get_local` and `digest` (gossip.runtime.store.routes).
Each agent gossips a hash of the settings that decide placement (member tag
"kv"); a member whose hash differs is kept out of placement, with a log line and
a metric. A replica reports the partitions it is still being filled with
(gossip.runtime.store.fill) and refuses writes once it is leaving; storage
errors are answered as refusals with their reason, never raised into a task.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import secrets
import sqlite3
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
import trio

from gossip.core.store.fingerprint import derive_key
from gossip.core.store.hlc import HybridClock, Timestamp
from gossip.core.store.placement import Placement
from gossip.core.store.record import MAX_KEY_BYTES, MAX_NODE_BYTES, MAX_VALUE_BYTES, Record
from gossip.core.store.replica_ops import (
    LEAVING,
    KvOp,
    KvOpError,
    Listed,
    decode_op,
    decode_scan_result,
    encode_listing,
    encode_op,
    encode_result,
)
from gossip.core.types import Address, MemberState
from gossip.runtime.http import Handler, RouteKey
from gossip.runtime.service import MemberEvent, Service, StreamHandler
from gossip.runtime.settings import SettingsError
from gossip.runtime.store import settings as kvsettings
from gossip.runtime.store.coordinator import Coordinator, fan_out, parse_consistency
from gossip.runtime.store.fill import FillState
from gossip.runtime.store.settings import StoreSettings
from gossip.runtime.store.storage import KVStorage, StorageError, StoredReplica
from gossip.runtime.store.sync import (
    ROOTS_CHANNEL,
    SYNC_CHANNEL,
    AntiEntropy,
    HorizonReplica,
)
from gossip.security.keyring import Keyring

if TYPE_CHECKING:
    from gossip.runtime.agent import Agent

T = TypeVar("T")
KV_CHANNEL = "kv"
DB_FILE = "kv.sqlite"
LIVE_STATES = (MemberState.ALIVE, MemberState.SUSPECT)
SETTINGS_TAG = "kv"
BIGGEST_RECORD = MAX_KEY_BYTES + MAX_VALUE_BYTES + MAX_NODE_BYTES + 1024
"""Bytes of the largest record on the wire, with room for its encoding."""

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
        self.leaving = False
        self._mismatched: dict[str, str] = {}

    # ---- wiring ----------------------------------------------------------------

    def attach(self, host: Any) -> None:
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
        self.clock.observe(self.host.wall_ms(), Timestamp(*self.storage.max_version(), host.name))
        self.settings_hash = settings_hash(s)
        self.fill = FillState(s.partitions)
        self.leave_timeout = s.handover_timeout
        self.placement = Placement([host.name], partitions=s.partitions, replicas=s.replicas)
        self._earlier: Placement | None = None
        self._changed_at = 0.0
        self._near = self._near_placement(self.placement.members)
        self._mine = frozenset(self.placement.partitions_of(host.name))
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
            read=lambda: {(): float(len(self._mismatched))},
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

    def _partition_of(self, key: str) -> int:
        return self.placement.partition_of(key)

    def routes(self) -> Mapping[RouteKey, Handler]:
        from gossip.runtime.store.routes import store_routes

        return store_routes(self)

    def stream_channels(self) -> Mapping[str, StreamHandler]:
        return {
            KV_CHANNEL: self._on_kv,
            SYNC_CHANNEL: self._on_sync,
            ROOTS_CHANNEL: self._on_roots,
        }

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await self._announce_settings()
                self._rebuild_placement()
                nursery.start_soon(self.sync.run)
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            self.storage.close()

    async def _announce_settings(self) -> None:
        me = self.host.member(self.host.name)
        tags = dict(me.tags) if me is not None else {}
        if tags.get(SETTINGS_TAG) != self.settings_hash:
            await self.host.set_tags({**tags, SETTINGS_TAG: self.settings_hash})

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
        names = {self.host.name}
        for m in self.host.members():
            if m.state not in LIVE_STATES or m.name == self.host.name:
                continue
            theirs = m.tags.get(SETTINGS_TAG)
            if theirs is not None and theirs != self.settings_hash:
                if self._mismatched.get(m.name) != theirs:
                    log.error(
                        "kv_settings_mismatch",
                        member=m.name,
                        theirs=theirs,
                        ours=self.settings_hash,
                        action="kept out of data placement",
                    )
                self._mismatched[m.name] = theirs
                continue
            self._mismatched.pop(m.name, None)
            names.add(m.name)
        if tuple(sorted(names)) == self.placement.members:
            return False
        s = self.settings
        me = self.host.name
        self._earlier, self._changed_at = self.placement, trio.current_time()
        self.placement = Placement(names, partitions=s.partitions, replicas=s.replicas)
        self._near = self._near_placement(self.placement.members)
        mine = frozenset(self.placement.partitions_of(me))
        self.fill.entered(mine - self._mine)
        self._mine = mine
        log.info("kv_placement_changed", members=len(names))
        return True

    def _near_placement(self, names: Sequence[str]) -> Placement | None:
        """Placement one rank deeper: the partitions this node would replicate if
        one member left (what a leaving member hands over). None for "all"."""
        s = self.settings
        if s.replicas is None:
            return None
        return Placement(names, partitions=s.partitions, replicas=s.replicas + 1)

    # ---- what the coordinator and anti-entropy need -------------------------------

    def replicas_of_key(self, key: str) -> Sequence[str]:
        return self.placement.replicas_of_key(key)

    def replication(self) -> int:
        """R for quorums: the configured count, capped by the members known in any
        state but left (so an isolated agent still counts the ones it lost)."""
        known = sum(
            m.state != MemberState.LEFT for m in self.host.members() if m.name != self.host.name
        )
        r = self.settings.replicas
        return known + 1 if r is None else min(r, known + 1)

    def replacements(self, key: str, gone: Collection[str]) -> Sequence[str]:
        s = self.settings
        rest = set(self.placement.members) - set(gone)
        return Placement(rest, partitions=s.partitions, replicas=s.replicas).replicas_of_key(key)

    def earlier_replicas(self, key: str) -> Sequence[str]:
        """The key's replicas before the last placement change that no longer are
        (and are still live), for a while after it: they hold its data until their
        hand-off to the new replicas has ended."""
        s = self.settings
        window = 3 * s.sync_period + s.session_timeout
        if self._earlier is None or trio.current_time() - self._changed_at > window:
            return ()
        now = set(self.placement.replicas_of_key(key))
        return [
            n
            for n in self._earlier.replicas_of_key(key)
            if n not in now and n in self.placement.members
        ]

    def fill_soon(self) -> None:
        self.sync.wakeup.set()

    def is_pending(self, part: int) -> bool:
        """Still being filled with the partition's data (never when alone)."""
        return self.fill.is_pending(part) and self.known_peers()

    def holds(self, part: int) -> bool:
        """A partition a peer may sync with here: one this node stores, replicates,
        or would replicate if one member left. Others never get a tree."""
        if not 0 <= part < self.settings.partitions:
            return False
        if part in self._mine or self.storage.count(part):
            return True
        return self._near is None or self.host.name in self._near.replicas(part)

    def mark_filled(self, part: int, source: str) -> None:
        if self.fill.filled(part):
            log.info("kv_partition_filled", partition=part, source=source)

    def counts_for_reads(self, part: int) -> bool:
        """Whether this node's copy of a partition may count toward a read quorum:
        not while it is being filled or leaving, and not for a partition it neither
        replicates nor holds."""
        if self.leaving or self.is_pending(part):
            return False
        return part in self._mine or self.storage.count(part) > 0

    def storage_failed(self, exc: StorageError, op: str) -> None:
        self._storage_errors.inc(labels={"reason": exc.reason})
        log.error("kv_storage_failed", op=op, reason=exc.reason, error=str(exc))

    def stamp(self) -> Timestamp:
        return self.clock.now(self.host.wall_ms())

    def spawn(self, fn: Callable[[], Awaitable[None]]) -> None:
        if self._nursery is None:
            raise RuntimeError("the store service is not running")
        self._nursery.start_soon(fn)

    def address_of(self, name: str) -> Address | None:
        member = self.host.member(name)
        return member.address if member is not None and member.state in LIVE_STATES else None

    def known_peers(self) -> bool:
        return any(m.name != self.host.name for m in self.host.members())

    def alive_peers(self) -> bool:
        return any(m.name != self.host.name and m.state in LIVE_STATES for m in self.host.members())

    def _observe(self, records: Sequence[Record]) -> None:
        now = self.host.wall_ms()
        for r in records:
            self.clock.observe(now, r.version)

    def replica(self, part: int) -> StoredReplica:
        horizon = self.settings.horizon_ms
        return HorizonReplica(
            self.storage, part, self._observe, horizon_ms=horizon, wall_ms=self.host.wall_ms
        )

    def replica_if_held(self, part: int) -> StoredReplica | None:
        """The replica a peer may sync with (see `holds`); None is a clean refusal."""
        return self.replica(part) if self.holds(part) else None

    async def call(self, replica: str, op: KvOp) -> bytes:
        if replica == self.host.name:
            return self.handle_op(op)
        address = self.address_of(replica)
        if address is None:
            raise KvOpError(f"{replica} is not alive")
        reply = await self.host.request(address, KV_CHANNEL, encode_op(op))
        if reply is None:
            raise KvOpError("no reply")
        return reply

    # ---- the replica side ----------------------------------------------------------

    def handle_op(self, op: KvOp) -> bytes:
        try:
            self.sync.ensure_fresh()
            if op.op == "put":
                assert op.record is not None
                if self.leaving:
                    return encode_result(err=LEAVING)
                self._observe([op.record])
                return encode_result(ok=True, changed=self.storage.put(op.record))
        except StorageError as exc:
            self.storage_failed(exc, op.op)
            return encode_result(err=str(exc))
        if op.op == "get":
            pending = not self.counts_for_reads(self.placement.partition_of(op.key))
            return encode_result(r=self.storage.get(op.key), pend=pending, lv=self.leaving)
        return encode_listing([Listed.of(r) for r in self.storage.scan(op.key, op.limit)])

    async def _on_kv(self, src: Address, body: bytes) -> bytes | None:
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
        return await self._count("put", self.coordinator.write(key, value, _c(consistency)))

    async def delete(self, key: str, consistency: str = "quorum") -> Record:
        return await self._count("delete", self.coordinator.write(key, None, _c(consistency)))

    async def get(self, key: str, consistency: str = "quorum") -> bytes | None:
        record = await self._count("get", self.coordinator.read(key, _c(consistency)))
        return None if record is None else record.value

    def get_local(self, key: str) -> Record | None:
        """This node's own copy, tombstones included (for inspection and tests)."""
        return self.storage.get(key)

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


def _c(consistency: str) -> str:
    return parse_consistency(consistency)


def check_frame_limit(s: StoreSettings, max_stream_bytes: int) -> None:
    """The biggest record must fit one stream message beside a full sync budget
    (it then travels alone: gossip.core.store.antientropy)."""
    need = min(s.sync_max_bytes, max_stream_bytes // 2) + BIGGEST_RECORD
    if max_stream_bytes < need:
        raise SettingsError(
            "max_stream_bytes",
            f"must be at least {need} with these store settings, so that the biggest"
            f" record ({MAX_VALUE_BYTES} byte value) fits in one stream message",
        )


def settings_hash(s: StoreSettings) -> str:
    """What must match on every agent of a cluster, hashed: where keys live."""
    text = f"partitions={s.partitions};replicas={'all' if s.replicas is None else s.replicas}"
    return hashlib.blake2b(text.encode(), digest_size=4).hexdigest()


# ---- plugin hooks (gossip/runtime/plugins.py) ----------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    kvsettings.add_arguments(parser)


def setup(agent: Agent, args: argparse.Namespace | None) -> None:
    settings = kvsettings.from_sources(agent.settings_section("store"), args)
    agent.add_service(StoreService(settings, fingerprint_secret=lambda: cluster_secret(agent)))


def cluster_secret(agent: Agent) -> bytes | None:
    """The primary key of the agent's keyring (gossip.runtime.keys), if it has one."""
    keyring = getattr(agent.sealer, "keyring", None)
    return keyring.primary if isinstance(keyring, Keyring) else None

"""The replica side of the store: the answer to a coordinator's single-record ops.

Rules:
- A put is refused while this node's store clock disagrees with most peers,
  when it is stamped implausibly far ahead (stamps.py), and once this node is
  leaving (coordinators send it to the replacing members).
- A put that a newer version would hide, or that is no newer than the
  partition's purge watermark for a key not held here (counted as refused), is
  answered with that version, so the coordinator can stamp above it.
- A get says whether this copy may count toward a read quorum (`pend`) and
  whether this node is leaving; a scan answers one page of keys.
- Storage errors are answered as refusals with their reason, never raised.
- A batch (kv-batch, from a coordinator's batcher) is answered op by op as if
  each came alone; its writes commit in one transaction before any answer
  goes, and a failed commit stores none and answers each with the error.
"""

from __future__ import annotations

from typing import Protocol

import structlog

from gossip.core.store.batch_wire import BatchError, decode_batch, encode_batch
from gossip.core.store.hlc import COUNTER_BITS, MAX_COUNTER, Timestamp
from gossip.core.store.placement import Placement
from gossip.core.store.record import Record, wins
from gossip.core.store.replica_ops import (
    LEAVING,
    KvOp,
    KvOpError,
    Listed,
    decode_op,
    encode_listing,
    encode_result,
)
from gossip.core.types import Address
from gossip.runtime.metrics import Counter
from gossip.runtime.store.stamps import Stamps
from gossip.runtime.store.storage import KVStorage, StorageError

log = structlog.get_logger("gossip.kv")


class ReplicaHost(Protocol):
    """What the replica side reads of the store it serves."""

    @property
    def leaving(self) -> bool: ...
    @property
    def placement(self) -> Placement: ...
    def counts_for_reads(self, part: int) -> bool: ...
    def storage_failed(self, exc: StorageError, op: str) -> None: ...


class ReplicaSide:
    def __init__(
        self,
        store: ReplicaHost,
        storage: KVStorage,
        stamps: Stamps,
        refused: Counter,
    ) -> None:
        self._store = store
        self._storage = storage
        self._stamps = stamps
        self._refused = refused

    def handle_op(self, op: KvOp) -> bytes:
        store, storage = self._store, self._storage
        try:
            if op.op == "put":
                assert op.record is not None
                if store.leaving:
                    return encode_result(err=LEAVING)
                return self._put(op.record)
        except StorageError as exc:
            store.storage_failed(exc, op.op)
            return encode_result(err=str(exc))
        if op.op == "get":
            pending = not store.counts_for_reads(store.placement.partition_of(op.key))
            return encode_result(r=storage.get(op.key), pend=pending, lv=store.leaving)
        return encode_listing(
            [Listed.of(r) for r in storage.scan(op.key, op.limit, after=op.after)]
        )

    async def on_kv(self, src: Address, body: bytes) -> bytes | None:
        return self._answer(body)

    async def on_kv_batch(self, src: Address, body: bytes) -> bytes | None:
        """Each operation of a batch is answered as if it came alone, in order; the
        batch's writes commit together (group commit) before any answer goes."""
        try:
            items = decode_batch(body)
        except BatchError as exc:
            return encode_result(err=str(exc))
        try:
            with self._storage.group():
                answers = [self._answer(item) for item in items]
        except StorageError as exc:  # nothing of the batch was stored
            self._store.storage_failed(exc, "put")
            answers = [encode_result(err=str(exc))] * len(items)
        return encode_batch(answers)

    def _answer(self, body: bytes) -> bytes:
        try:
            op = decode_op(body)
        except KvOpError as exc:
            return encode_result(err=str(exc))
        return self.handle_op(op)

    def _put(self, record: Record) -> bytes:
        untrusted = self._stamps.store_clock.refusal()
        if untrusted is not None:
            return encode_result(err=f"clock_disagrees: {untrusted}")
        if not self._stamps.accept([record]):
            ahead = record.version.wall - self._stamps.store_clock.now_ms()
            return encode_result(err=f"clock_ahead: version is {ahead} ms ahead of this replica")
        current = self._storage.get(record.key)
        if current is not None and not wins(record, current):
            if current.version > record.version:
                return encode_result(ok=True, changed=False, newer=_packed(current.version))
            return encode_result(ok=True, changed=False)
        mark = None if current is not None else self._below_watermark(record)
        if mark is not None:
            return encode_result(
                ok=True, changed=False, newer=[mark >> COUNTER_BITS, mark & MAX_COUNTER]
            )
        return encode_result(ok=True, changed=self._storage.put(record))

    def _below_watermark(self, record: Record) -> int | None:
        """The partition's purge watermark if `record`, for a key not held here, is no
        newer than it: it may be a copy of a key deleted and purged here, so a replica
        refuses it as a direct write (counted), and a coordinator stamps a fresh write
        above the mark. Anti-entropy does not refuse such records: after a split both
        sides hold writes older than the other side's purges, and the senders screen."""
        mark = self._storage.watermark(self._store.placement.partition_of(record.key))
        if record.version.packed > mark:
            return None
        self._refused.inc(labels={"reason": "below_watermark"})
        log.info("kv_record_refused", reason="below_watermark", key=record.key)
        return mark


def _packed(ts: Timestamp) -> list[int]:
    return [ts.wall, ts.counter]

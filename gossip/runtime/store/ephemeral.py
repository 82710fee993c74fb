"""Ephemeral keys: keys deleted when the agent that wrote them leaves or is declared dead.

Rules: an ephemeral put first records the key in an index under INDEX_PREFIX + writer + "/"
(a normal replicated key), then writes the value, so no crash leaves an ephemeral key
unindexed. When membership reports a member failed or left, every live agent that sees it
reaps that member's index: each indexed key whose winning version was still stamped by that
member is deleted with a normal quorum delete (a tombstone, so the store's delete rules
apply), then the index entry. Reaping is idempotent, so several agents acting at once is
harmless, and it retries while a quorum is missing. The guarantee is tied to the member's
name: a false death deletes the keys (the writer writes them again after it refutes), and a
writer that restarts under its name before it is declared dead keeps them.
"""

from __future__ import annotations

from typing import Protocol

import structlog
import trio

from gossip.core.store.hlc import Timestamp
from gossip.core.store.record import Record
from gossip.core.store.replica_ops import Listed
from gossip.runtime.service import MemberEvent, Service

INDEX_PREFIX = "_gossip/ephemeral/"  # a reserved namespace, hidden from user listings
REAP_EVENTS = ("failed", "left")
REAP_ATTEMPTS = 30
REAP_RETRY_S = 1.0
REAP_PAGE = 1000
REAP_ROUNDS = 100  # pages per reap: bounds a reap that keeps finding entries

log = structlog.get_logger(__name__)


class EphemeralStore(Protocol):
    """What ephemeral keys need of the store service."""

    async def put(
        self, key: str, value: bytes, consistency: str, after: Timestamp | None = None
    ) -> Record: ...
    async def delete(self, key: str, consistency: str) -> Record: ...
    async def get_record(self, key: str, consistency: str) -> Record | None: ...
    async def list(self, prefix: str, limit: int) -> tuple[list[Listed], bool]: ...


def index_prefix(writer: str) -> str:
    return f"{INDEX_PREFIX}{writer}/"


def is_internal(key: str) -> bool:
    """Index entries are bookkeeping, hidden from user listings."""
    return key.startswith(INDEX_PREFIX)


def hide_internal(prefix: str, records: list[Listed]) -> list[Listed]:
    """A user listing: the index entries only when the prefix asks for them."""
    return records if is_internal(prefix) else [r for r in records if not is_internal(r.key)]


async def put_ephemeral(
    store: EphemeralStore,
    writer: str,
    key: str,
    value: bytes,
    consistency: str,
    after: Timestamp | None = None,
) -> Record:
    await store.put(index_prefix(writer) + key, b"", consistency)
    return await store.put(key, value, consistency, after)


async def reap(store: EphemeralStore, writer: str) -> int:
    """Delete the ephemeral keys `writer` still holds; how many were deleted."""
    prefix, deleted = index_prefix(writer), 0
    for _ in range(REAP_ROUNDS):
        entries, _ = await store.list(prefix, REAP_PAGE)
        if not entries:
            break
        for entry in entries:
            key = entry.key[len(prefix) :]
            record = await store.get_record(key, "quorum")
            if record is not None and not record.deleted and record.version.node == writer:
                await store.delete(key, "quorum")
                deleted += 1
            await store.delete(entry.key, "quorum")
    return deleted


class EphemeralReaper(Service):
    """Reaps the ephemeral keys of members that fail or leave."""

    name = "ephemeral"

    def __init__(self, store: EphemeralStore) -> None:
        self.store = store
        self._send: trio.MemorySendChannel[str] | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        send, receive = trio.open_memory_channel[str](1024)
        self._send = send
        async with trio.open_nursery() as nursery:
            task_status.started()
            async for writer in receive:
                nursery.start_soon(self._reap_with_retries, writer)

    def member_event(self, event: MemberEvent) -> None:
        if event.kind in REAP_EVENTS and event.name != self.host.name and self._send is not None:
            try:
                self._send.send_nowait(event.name)
            except trio.WouldBlock:
                log.warning("ephemeral_reap_dropped", writer=event.name)

    async def _reap_with_retries(self, writer: str) -> None:
        for attempt in range(1, REAP_ATTEMPTS + 1):
            try:
                deleted = await reap(self.store, writer)
            except Exception as exc:  # a missing quorum, a full disk: try again later
                log.info("ephemeral_reap_retried", writer=writer, attempt=attempt, error=str(exc))
                await trio.sleep(REAP_RETRY_S)
                continue
            log.info("ephemeral_keys_reaped", writer=writer, deleted=deleted)
            return
        log.warning("ephemeral_reap_abandoned", writer=writer, attempts=REAP_ATTEMPTS)

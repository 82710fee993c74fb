"""Replica requests to one peer, sent together as one stream request.

Rules: operations for the same peer that are queued while fewer than
MAX_IN_FLIGHT requests to it are outstanding go at the next scheduler turn;
the others wait until one of those answers, and then go together, at most
MAX_BATCH_OPS operations and MAX_BATCH_BYTES per request. So a lone operation
waits for nothing, and a busy peer gets fewer, larger requests (no timer: the
batch is what piled up while the wire was busy). A batch of one travels as a
plain operation on its own channel; a bigger one on the batch channel, whose
answer carries one answer per operation. When a batch request fails, each of
its operations whose caller still waits is sent once more on its own: a peer
that does not know the batch channel still serves it, and resending a replica
operation is harmless (a put merges the same record again). An operation is
either awaited (`request`) or posted with a function that takes its outcome
(`post`): that one is called once, in the task that delivered the batch, and
saves the caller a task of its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial

import structlog
import trio

from gossip.core.store.batch_wire import MAX_BATCH_OPS, decode_batch, encode_batch
from gossip.core.types import Address

MAX_IN_FLIGHT = 4
MAX_BATCH_BYTES = 256 * 1024
log = structlog.get_logger("gossip.kv")

Send = Callable[[Address, str, bytes], Awaitable[bytes | None]]
Spawn = Callable[[Callable[[], Awaitable[None]]], None]
Outcome = Callable[[bytes | None, Exception | None], None]
"""Takes an operation's reply (None: no reply) or the error that stopped it."""


@dataclass
class _Slot:
    payload: bytes
    outcome: Outcome
    waiting: bool = True
    """False once the caller gave up (cancelled): nothing is resent for it."""
    settled: bool = False

    def settle(self, reply: bytes | None, error: Exception | None = None) -> None:
        if self.settled:
            return
        self.settled = True
        try:
            self.outcome(reply, error)
        except Exception:  # a caller's bug must not stop the batch's other answers
            log.exception("kv_outcome_failed")


@dataclass
class _Peer:
    queue: list[_Slot] = field(default_factory=list)
    in_flight: int = 0
    scheduled: bool = False


class ReplicaBatcher:
    def __init__(self, send: Send, spawn: Spawn, channel: str, batch_channel: str) -> None:
        self._send = send
        self._spawn = spawn
        self._channel = channel
        self._batch_channel = batch_channel
        self._peers: dict[Address, _Peer] = {}
        """An entry per peer with operations queued or in flight."""

    def peers_tracked(self) -> int:
        return len(self._peers)

    async def request(self, to: Address, payload: bytes) -> bytes | None:
        """Send one encoded operation to `to`; its answer (None: no reply)."""
        if len(payload) > MAX_BATCH_BYTES:
            return await self._send(to, self._channel, payload)
        done = trio.Event()
        got: list[tuple[bytes | None, Exception | None]] = []

        def outcome(reply: bytes | None, error: Exception | None) -> None:
            got.append((reply, error))
            done.set()

        slot = self._queue(to, payload, outcome)
        try:
            await done.wait()
        finally:
            slot.waiting = False
        reply, error = got[0]
        if error is not None:
            raise error
        return reply

    def post(self, to: Address, payload: bytes, outcome: Outcome) -> None:
        """Send one encoded operation to `to`; `outcome` takes its answer or error."""
        if len(payload) > MAX_BATCH_BYTES:
            self._spawn(partial(self._send_alone, to, _Slot(payload, outcome)))
            return
        self._queue(to, payload, outcome)

    def _queue(self, to: Address, payload: bytes, outcome: Outcome) -> _Slot:
        slot = _Slot(payload, outcome)
        peer = self._peers.setdefault(to, _Peer())
        peer.queue.append(slot)
        self._schedule(to, peer)
        return slot

    def _schedule(self, to: Address, peer: _Peer) -> None:
        if not peer.scheduled and peer.in_flight < MAX_IN_FLIGHT:
            self._spawn(lambda: self._flush(to, peer))  # raises once the store has stopped
            peer.scheduled = True

    async def _flush(self, to: Address, peer: _Peer) -> None:
        await trio.lowlevel.checkpoint()  # operations queued in this turn go together
        peer.scheduled = False
        while peer.queue and peer.in_flight < MAX_IN_FLIGHT:
            batch = _take(peer.queue)
            try:
                self._spawn(partial(self._deliver, to, peer, batch))
            except RuntimeError as exc:  # the store has stopped: nothing goes out
                for slot in batch:
                    slot.settle(None, exc)
                continue
            peer.in_flight += 1

    async def _deliver(self, to: Address, peer: _Peer, batch: list[_Slot]) -> None:
        try:
            await self._send_batch(to, batch)
        finally:
            peer.in_flight -= 1
            if peer.queue:
                self._schedule(to, peer)
            elif not peer.in_flight and not peer.scheduled and self._peers.get(to) is peer:
                del self._peers[to]  # nothing left for it: departed peers leave no entry

    async def _send_batch(self, to: Address, batch: list[_Slot]) -> None:
        if len(batch) == 1:
            await self._send_alone(to, batch[0])
            return
        try:
            reply = await self._send(
                to, self._batch_channel, encode_batch([s.payload for s in batch])
            )
            answers = decode_batch(reply or b"", expected=len(batch))
        except Exception:  # any failure: each operation once more on its own
            async with trio.open_nursery() as nursery:
                for slot in batch:
                    if slot.waiting:
                        nursery.start_soon(self._send_alone, to, slot)
            return
        for slot, answer in zip(batch, answers, strict=True):
            slot.settle(answer)

    async def _send_alone(self, to: Address, slot: _Slot) -> None:
        try:
            reply = await self._send(to, self._channel, slot.payload)
        except Exception as exc:  # the caller sees the failure of its own operation
            slot.settle(None, exc)
        else:
            slot.settle(reply)


def _take(queue: list[_Slot]) -> list[_Slot]:
    """The first operations of `queue`, as many as one batch holds (at least one)."""
    size, n = 0, 0
    for slot in queue:
        if n and (n == MAX_BATCH_OPS or size + len(slot.payload) > MAX_BATCH_BYTES):
            break
        size += len(slot.payload)
        n += 1
    batch = queue[:n]
    del queue[:n]
    return batch
